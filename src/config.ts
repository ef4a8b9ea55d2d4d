import { checkTimer, type DurationInput, toNanoseconds } from "./duration.js";
import { ConfigError, quote, safeUrl } from "./errors.js";

export { safeUrl } from "./errors.js";

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** A table, schema or collection name: letters, digits and underscores, not starting with a digit. */
export function checkIdentifier(field: string, value: string): string {
  if (!IDENTIFIER.test(value)) {
    throw new ConfigError(
      field,
      `invalid ${field} ${quote(value)}: use letters, digits and underscores (at most 63), not starting with a digit`,
    );
  }
  return value;
}

/** A TCP port as a URL gives it: digits, from 1 to 65535. */
export function validPort(text: string): boolean {
  return /^\d{1,5}$/.test(text) && Number(text) >= 1 && Number(text) <= 65535;
}

/** A duration option in milliseconds (whole or fractional), validated, and short enough for a timer. */
export function durationMs(field: string, value: DurationInput): number {
  return Number(checkTimer(field, toNanoseconds(value, field))) / 1e6;
}

/**
 * Reads `?key=value` options from a store URL, refusing any key the store does not know,
 * so that a typo is an error rather than a silently ignored setting.
 */
export function urlOptions(
  kind: string,
  params: URLSearchParams,
  known: readonly string[],
): Map<string, string> {
  const out = new Map<string, string>();
  for (const [key, value] of params) {
    if (!known.includes(key)) {
      const list = known.length ? known.join(", ") : "none";
      throw new ConfigError(
        "store",
        `unknown ${kind} store option ${quote(key, 40)} (known: ${list})`,
      );
    }
    out.set(key, value);
  }
  return out;
}

/** `scheme:PATH?query` for URLs with no authority (memory:, sqlite:). */
export function splitOpaqueUrl(
  url: string,
  prefix: string,
): { path: string; params: URLSearchParams } {
  const rest = url.slice(prefix.length);
  const q = rest.indexOf("?");
  const path = q < 0 ? rest : rest.slice(0, q);
  try {
    return {
      path: decodeURIComponent(path),
      params: new URLSearchParams(q < 0 ? "" : rest.slice(q + 1)),
    };
  } catch {
    throw new ConfigError("store", `malformed store URL ${quote(safeUrl(url))}`);
  }
}

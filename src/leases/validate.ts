import { ConfigError, quote } from "../errors.js";

const MAX_LENGTH = 256;

/**
 * A lease name, holder or pinning entity: 1 to 256 characters (a prefix may be empty),
 * none of them control or invisible characters: they end up in logs, environment
 * variables and store keys.
 */
export function checkLeaseText(
  field: "name" | "holder" | "entity" | "prefix",
  value: unknown,
): string {
  const min = field === "prefix" ? 0 : 1;
  if (
    typeof value !== "string" ||
    value.length < min ||
    value.length > MAX_LENGTH ||
    // control and invisible characters, and lone surrogates (which UTF-8 cannot carry)
    /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/u.test(value)
  ) {
    const shown = typeof value === "string" ? quote(value, 60) : String(value);
    throw new ConfigError(
      field,
      `invalid lease ${field} ${shown}: use ${min} to ${MAX_LENGTH} printable characters`,
    );
  }
  return value;
}

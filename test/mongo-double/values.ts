/**
 * BSON value semantics for the test double, as far as a clock record needs them: BSON
 * type names, MongoDB's cross-type numeric equality (a Long 5 equals a Double 5.0 in a
 * query), and the per-type identity that decides whether an update changed anything.
 * Values are as `bson` decodes them with promoteValues off: Int32, Long and Double
 * wrappers, never bare JS numbers.
 */
import { BSON, type Decimal128, type Document, Double, Int32, Long } from "bson";
import { DECODE } from "./wire.js";

/** A failed command as mongod reports it: `{ ok: 0, code, codeName, errmsg }`. */
export class CommandError extends Error {
  override name = "CommandError";
  readonly code: number;
  readonly codeName: string;
  constructor(code: number, codeName: string, message: string) {
    super(message);
    this.code = code;
    this.codeName = codeName;
  }
}

export const badValue = (message: string) => new CommandError(2, "BadValue", message);

type Tagged = { _bsontype?: string };
const tag = (v: unknown): string | undefined =>
  v !== null && typeof v === "object" ? (v as Tagged)._bsontype : undefined;

/** The BSON type alias mongod uses in `$type` and in messages. */
export function typeName(v: unknown): string {
  if (v === undefined) return "missing";
  if (v === null) return "null";
  if (typeof v === "string") return "string";
  if (typeof v === "boolean") return "bool";
  if (typeof v === "number") return Number.isInteger(v) ? "int" : "double"; // only from our own code
  if (v instanceof Date) return "date";
  if (Array.isArray(v)) return "array";
  const names: Record<string, string> = {
    Int32: "int",
    Long: "long",
    Double: "double",
    Decimal128: "decimal",
    ObjectId: "objectId",
    Binary: "binData",
    Timestamp: "timestamp",
    BSONRegExp: "regex",
    MinKey: "minKey",
    MaxKey: "maxKey",
  };
  const t = tag(v);
  if (t) return names[t] ?? t;
  return "object";
}

const TYPE_CODES: Record<number, string> = {
  1: "double",
  2: "string",
  3: "object",
  4: "array",
  5: "binData",
  7: "objectId",
  8: "bool",
  9: "date",
  10: "null",
  16: "int",
  17: "timestamp",
  18: "long",
  19: "decimal",
};

/** Whether `v` has the `$type` named by `alias` (a name, a code, or "number"). */
export function hasType(v: unknown, alias: unknown): boolean {
  const wanted = typeof alias === "string" ? alias : TYPE_CODES[toNumber(alias) ?? -1];
  if (!wanted) throw badValue(`unknown $type ${String(alias)}`);
  const actual = typeName(v);
  return wanted === "number" ? isNumeric(v) : actual === wanted;
}

/**
 * The BSON number types. Decimal128 is one of them: mongod compares numbers by value across
 * all four ("Comparison/Sort Order": numeric types are converted before comparison), so in
 * a query a Decimal128 5 equals a Long 5, as a Double 5.0 does.
 */
export const isNumeric = (v: unknown): boolean =>
  ["int", "long", "double", "decimal"].includes(typeName(v));

/** A numeric BSON value as a JS number (for command arguments such as `limit`). */
export function toNumber(v: unknown): number | undefined {
  if (typeof v === "number") return v;
  const t = tag(v);
  if (t === "Int32" || t === "Double") return (v as Int32 | Double).value;
  if (t === "Long") return (v as Long).toNumber();
  if (t === "Decimal128") return Number((v as Decimal128).toString());
  return undefined;
}

/** A finite number as an exact fraction `num / den` (den > 0); undefined for NaN and ±Infinity. */
function exact(v: unknown): { num: bigint; den: bigint } | undefined {
  const integer = toBigInt(v);
  if (integer !== undefined) return { num: integer, den: 1n };
  if (tag(v) === "Decimal128") {
    // Decimal128 prints as [-]digits[.digits][E[+-]exp], or NaN / Infinity.
    const m = /^(-?)(\d+)(?:\.(\d+))?(?:E([+-]?\d+))?$/i.exec((v as Decimal128).toString());
    if (!m) return undefined;
    const [, sign = "", whole = "0", fraction = "", exp = "0"] = m;
    const scale = Number(exp) - fraction.length;
    const digits = BigInt(`${sign}${whole}${fraction}`);
    return scale >= 0
      ? { num: digits * 10n ** BigInt(scale), den: 1n }
      : { num: digits, den: 10n ** BigInt(-scale) };
  }
  const d = toNumber(v);
  if (d === undefined || !Number.isFinite(d)) return undefined;
  // A double is an integer times a power of two: scale it up until it is an integer.
  let den = 1n;
  let x = d;
  while (!Number.isInteger(x)) {
    x *= 2;
    den *= 2n;
  }
  return { num: BigInt(x), den };
}

/** Exact value of an integer BSON number; undefined for doubles and non-numbers. */
function toBigInt(v: unknown): bigint | undefined {
  const t = tag(v);
  if (t === "Int32") return BigInt((v as Int32).value);
  if (t === "Long") return (v as Long).toBigInt();
  if (typeof v === "number" && Number.isInteger(v)) return BigInt(v);
  return undefined;
}

/** Orders two numbers of any BSON numeric types exactly (NaN sorts first, as in mongod). */
export function compareNumbers(a: unknown, b: unknown): number {
  const ea = exact(a);
  const eb = exact(b);
  if (ea && eb) {
    const l = ea.num * eb.den;
    const r = eb.num * ea.den;
    return l < r ? -1 : l > r ? 1 : 0;
  }
  const da = toNumber(a) as number;
  const db = toNumber(b) as number;
  if (Number.isNaN(da)) return Number.isNaN(db) ? 0 : -1;
  if (Number.isNaN(db)) return 1;
  return da < db ? -1 : da > db ? 1 : 0; // at least one is ±Infinity
}

/**
 * Orders two strings as mongod's simple collation (the default) does: a binary comparison of
 * their UTF-8 bytes, which is code point order. JavaScript's `<` compares UTF-16 code units,
 * which puts U+10000 and above before U+E000 to U+FFFF.
 */
export function compareStrings(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** Query equality: numbers compare by value across types, everything else by type and value. */
export function valuesEqual(a: unknown, b: unknown): boolean {
  if (isNumeric(a) && isNumeric(b)) return compareNumbers(a, b) === 0;
  const ta = typeName(a);
  if (ta !== typeName(b)) return false;
  switch (ta) {
    case "missing":
    case "null":
      return true;
    case "string":
    case "bool":
      return a === b;
    case "date":
      return (a as Date).getTime() === (b as Date).getTime();
    case "array": {
      const x = a as unknown[];
      const y = b as unknown[];
      return x.length === y.length && x.every((v, i) => valuesEqual(v, y[i]));
    }
    case "object": {
      const x = Object.entries(a as Document);
      const y = Object.entries(b as Document);
      return (
        x.length === y.length &&
        x.every(([k, v], i) => k === y[i]?.[0] && valuesEqual(v, y[i]?.[1]))
      );
    }
    default:
      return sameBson(a, b);
  }
}

/** Identical in type and value, as stored: Int32 5 and Long 5 differ here. */
export function sameBson(a: unknown, b: unknown): boolean {
  return Buffer.from(BSON.serialize({ v: a })).equals(BSON.serialize({ v: b }));
}

/** A deep copy that keeps every BSON type. */
export function clone<T extends Document>(doc: T): T {
  return BSON.deserialize(BSON.serialize(doc), DECODE) as T;
}

/** The key under which a collection keeps a document: equal `_id`s give equal keys. */
export function idKey(id: unknown): string {
  if (typeof id === "string") return `s:${id}`;
  if (isNumeric(id)) {
    const e = exact(id);
    if (!e) return `n:${toNumber(id)}`;
    return e.den === 1n ? `n:${e.num}` : `n:${e.num}/${e.den}`;
  }
  return `x:${Buffer.from(BSON.serialize({ v: id })).toString("hex")}`;
}

/** `a + b` with mongod's result type: any double gives a double, any long a long. */
export function addNumbers(a: unknown, b: unknown): Int32 | Long | Double {
  const ta = typeName(a);
  const tb = typeName(b);
  if (ta === "decimal" || tb === "decimal") {
    throw badValue("the test double does not do Decimal128 arithmetic");
  }
  if (ta === "double" || tb === "double") {
    return new Double((toNumber(a) as number) + (toNumber(b) as number));
  }
  const sum = (toBigInt(a) as bigint) + (toBigInt(b) as bigint);
  if (ta === "int" && tb === "int" && sum >= -(2n ** 31n) && sum < 2n ** 31n) {
    return new Int32(Number(sum));
  }
  if (sum < -(2n ** 63n) || sum >= 2n ** 63n) {
    throw badValue(`Failed to apply $inc: the result overflows a 64-bit integer`);
  }
  return Long.fromBigInt(sum);
}

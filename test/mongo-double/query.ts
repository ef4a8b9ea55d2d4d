/**
 * Filters, update operators and projections for the test double: the subset a clock
 * record uses (equality, $eq/$ne/$gt/$gte/$lt/$lte on numbers and strings, $in/$nin/$exists/$type, $and/$or;
 * $set, $unset, $inc, $setOnInsert, replacement). Anything else is refused with the
 * error mongod would give, so a store that strays beyond the subset fails loudly here.
 */
import type { Document } from "bson";
import {
  addNumbers,
  badValue,
  CommandError,
  compareNumbers,
  compareStrings,
  hasType,
  isNumeric,
  typeName,
  valuesEqual,
} from "./values.js";

const isOperatorObject = (v: unknown): v is Document =>
  typeName(v) === "object" &&
  Object.keys(v as Document).length > 0 &&
  Object.keys(v as Document).every((k) => k.startsWith("$"));

function getPath(doc: Document, path: string): unknown {
  let value: unknown = doc;
  for (const part of path.split(".")) {
    if (typeName(value) !== "object") return undefined;
    value = (value as Document)[part];
  }
  return value;
}

function setPath(doc: Document, path: string, value: unknown): void {
  const parts = path.split(".");
  let target = doc;
  for (const part of parts.slice(0, -1)) {
    if (target[part] === undefined) target[part] = {};
    if (typeName(target[part]) !== "object") {
      throw new CommandError(28, "PathNotViable", `Cannot create field in element ${part}`);
    }
    target = target[part] as Document;
  }
  target[parts.at(-1) as string] = value;
}

function unsetPath(doc: Document, path: string): void {
  const parts = path.split(".");
  const parent = parts.length > 1 ? getPath(doc, parts.slice(0, -1).join(".")) : doc;
  if (typeName(parent) === "object") delete (parent as Document)[parts.at(-1) as string];
}

/** Whether `doc` matches the query `filter`. */
export function matches(doc: Document, filter: Document): boolean {
  return Object.entries(filter).every(([key, condition]) => {
    if (key === "$and") return list(key, condition).every((f) => matches(doc, f));
    if (key === "$or") return list(key, condition).some((f) => matches(doc, f));
    if (key.startsWith("$")) throw badValue(`unknown top level operator: ${key}`);
    const value = getPath(doc, key);
    if (isOperatorObject(condition)) {
      return Object.entries(condition).every(([op, arg]) => operator(value, op, arg));
    }
    return equalsOrContains(value, condition);
  });
}

function list(op: string, v: unknown): Document[] {
  if (!Array.isArray(v) || v.length === 0) throw badValue(`${op} must be a nonempty array`);
  return v as Document[];
}

function equalsOrContains(value: unknown, wanted: unknown): boolean {
  if (wanted === null && value === undefined) return true;
  if (Array.isArray(value) && !Array.isArray(wanted)) {
    return value.some((v) => valuesEqual(v, wanted));
  }
  return valuesEqual(value, wanted);
}

function operator(value: unknown, op: string, arg: unknown): boolean {
  switch (op) {
    case "$eq":
      return equalsOrContains(value, arg);
    case "$ne":
      return !equalsOrContains(value, arg);
    case "$in":
      return list(op, arg).some((a) => equalsOrContains(value, a));
    case "$nin":
      return !list(op, arg).some((a) => equalsOrContains(value, a));
    case "$exists":
      return (value !== undefined) === !!arg;
    case "$type":
      return (
        value !== undefined && (Array.isArray(arg) ? arg : [arg]).some((t) => hasType(value, t))
      );
    case "$gt":
    case "$gte":
    case "$lt":
    case "$lte": {
      // Type bracketing: a comparison matches only values of the argument's type (numbers of
      // any numeric type), e.g. `{ $gte: "" }` every string and nothing else. Strings
      // compare as mongod's default (simple) collation does: bytewise, in UTF-8 (manual,
      // "Comparison/Sort Order"; "Query operators: $gt: type bracketing"). Other types are
      // not needed here.
      let c: number;
      if (isNumeric(value) && isNumeric(arg)) c = compareNumbers(value, arg);
      else if (typeof value === "string" && typeof arg === "string") c = compareStrings(value, arg);
      else return false;
      return op === "$gt" ? c > 0 : op === "$gte" ? c >= 0 : op === "$lt" ? c < 0 : c <= 0;
    }
    default:
      throw badValue(`unknown operator: ${op}`);
  }
}

/** The document an upsert starts from: the filter's equality conditions. */
export function upsertSeed(filter: Document): Document {
  const seed: Document = {};
  const collect = (f: Document) => {
    for (const [key, condition] of Object.entries(f)) {
      if (key === "$and") list(key, condition).forEach(collect);
      else if (key.startsWith("$")) continue;
      else if (!isOperatorObject(condition)) setPath(seed, key, condition);
      else if ("$eq" in condition) setPath(seed, key, condition.$eq);
    }
  };
  collect(filter);
  return seed;
}

const MODIFIERS = new Set(["$set", "$unset", "$inc", "$setOnInsert"]);

/**
 * Applies `update` to a copy of `doc` (already a private copy) and returns it.
 * `inserting` is true for the document an upsert creates ($setOnInsert applies then only).
 */
export function applyUpdate(doc: Document, update: unknown, inserting: boolean): Document {
  if (Array.isArray(update)) {
    throw new CommandError(
      9,
      "FailedToParse",
      "pipeline updates are not supported by the test double",
    );
  }
  if (typeName(update) !== "object") throw badValue("the update must be a document");
  const u = update as Document;
  const keys = Object.keys(u);
  if (!keys.some((k) => k.startsWith("$"))) {
    if ("_id" in u && doc._id !== undefined && !valuesEqual(u._id, doc._id)) {
      throw new CommandError(
        66,
        "ImmutableField",
        "the (immutable) field '_id' was found to have been altered",
      );
    }
    return { _id: doc._id ?? u._id, ...u };
  }
  const seen = new Set<string>();
  for (const [modifier, fields] of Object.entries(u)) {
    if (!MODIFIERS.has(modifier)) {
      throw new CommandError(9, "FailedToParse", `Unknown modifier: ${modifier}`);
    }
    for (const [path, arg] of Object.entries(fields as Document)) {
      if (seen.has(path)) {
        throw new CommandError(
          40,
          "ConflictingUpdateOperators",
          `Updating the path '${path}' would create a conflict at '${path}'`,
        );
      }
      seen.add(path);
      apply(doc, modifier, path, arg, inserting);
    }
  }
  return doc;
}

function apply(
  doc: Document,
  modifier: string,
  path: string,
  arg: unknown,
  inserting: boolean,
): void {
  const current = getPath(doc, path);
  if (path === "_id" && modifier !== "$setOnInsert" && doc._id !== undefined) {
    if (modifier === "$set" && valuesEqual(arg, current)) return;
    throw new CommandError(
      66,
      "ImmutableField",
      "Performing an update on the path '_id' would modify the immutable field '_id'",
    );
  }
  switch (modifier) {
    case "$set":
      setPath(doc, path, arg);
      return;
    case "$setOnInsert":
      if (inserting) setPath(doc, path, arg);
      return;
    case "$unset":
      unsetPath(doc, path);
      return;
    case "$inc":
      if (!isNumeric(arg)) {
        throw new CommandError(
          14,
          "TypeMismatch",
          `Cannot increment with non-numeric argument: {${path}: ${String(arg)}}`,
        );
      }
      if (current === undefined) {
        setPath(doc, path, arg);
        return;
      }
      if (!isNumeric(current)) {
        throw new CommandError(
          14,
          "TypeMismatch",
          `Cannot apply $inc to a value of non-numeric type. {_id: ${JSON.stringify(String(doc._id))}} has the field '${path}' of non-numeric type ${typeName(current)}`,
        );
      }
      setPath(doc, path, addNumbers(current, arg));
  }
}

/**
 * A find projection: inclusion (`{a: 1}`) or exclusion (`{a: 0}`), `_id` in unless
 * excluded, and computed fields of one expression, `{ t: { $type: "$a" } }` (MongoDB 4.4+).
 */
export function project(doc: Document, projection: unknown): Document {
  if (projection === undefined || typeName(projection) !== "object") return doc;
  const entries = Object.entries(projection as Document);
  if (entries.length === 0) return doc;
  const computed = entries.filter(([, v]) => typeName(v) === "object");
  const flags = entries
    .filter(([, v]) => typeName(v) !== "object")
    .map(
      ([k, v]) =>
        [k, typeof v === "boolean" ? v : !!(v as { valueOf(): number }).valueOf()] as const,
    );
  // `{ _id: 1 }` alone is an inclusion too: it returns only `_id` (manual, "Project Fields
  // to Return from Query": a projection includes the fields set to 1, `_id` by default).
  const including =
    computed.length > 0 ||
    flags.some(([k, on]) => k !== "_id" && on) ||
    (flags.every(([k]) => k === "_id") && flags.some(([, on]) => on));
  const out: Document = {};
  if (including) {
    const wanted = new Set(flags.filter(([, on]) => on).map(([k]) => k));
    const idOff = flags.some(([k, on]) => k === "_id" && !on);
    for (const [k, v] of Object.entries(doc)) {
      if (wanted.has(k) || (k === "_id" && !idOff)) out[k] = v;
    }
  } else {
    const dropped = new Set(flags.map(([k]) => k));
    for (const [k, v] of Object.entries(doc)) if (!dropped.has(k)) out[k] = v;
  }
  for (const [k, expression] of computed) out[k] = evaluate(doc, expression as Document);
  return out;
}

function evaluate(doc: Document, expression: Document): unknown {
  const arg = expression.$type;
  if (Object.keys(expression).length !== 1 || typeof arg !== "string" || !arg.startsWith("$")) {
    throw badValue(`unsupported projection expression ${JSON.stringify(expression)}`);
  }
  return typeName(getPath(doc, arg.slice(1)));
}

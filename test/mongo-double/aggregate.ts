/**
 * Aggregation for the double: the stages the lease records use, `$match`, `$project`,
 * `$unionWith`, `$sort` and `$limit`, as mongod runs them (MongoDB manual, "Aggregation
 * Pipeline Stages"). Any other stage is refused as mongod refuses an unknown one, so a
 * store that strays beyond the subset fails loudly here. Change streams are in changes.ts.
 */
import type { Document } from "bson";
import type { Collections } from "./collections.js";
import { matches, project } from "./query.js";
import {
  badValue,
  CommandError,
  compareNumbers,
  compareStrings,
  isNumeric,
  toNumber,
  typeName,
} from "./values.js";

/**
 * The order of BSON types in a sort (manual, "Comparison/Sort Order"); a missing field
 * sorts as null. Types not listed here are not needed by the double.
 */
const SORT_BRACKETS = ["minKey", "null", "number", "string", "objectId", "bool", "date", "maxKey"];

/** Runs `pipeline` on `db.coll` and returns the documents it outputs. */
export function runPipeline(
  data: Collections,
  db: string,
  coll: string,
  pipeline: unknown,
): Document[] {
  if (!Array.isArray(pipeline))
    throw new CommandError(14, "TypeMismatch", "'pipeline' option must be specified as an array");
  let docs = data.find(`${db}.${coll}`);
  for (const stage of pipeline as Document[]) {
    const names = typeName(stage) === "object" ? Object.keys(stage) : [];
    if (names.length !== 1) {
      throw new CommandError(
        40323,
        "Location40323",
        "A pipeline stage specification object must contain exactly one field.",
      );
    }
    const name = names[0] as string;
    const arg = stage[name];
    switch (name) {
      case "$match":
        docs = docs.filter((doc) => matches(doc, arg as Document));
        break;
      case "$project":
        docs = docs.map((doc) => project(doc, arg));
        break;
      case "$sort":
        docs.sort(sortOrder(arg));
        break;
      case "$limit":
        docs = docs.slice(0, limitOf(arg));
        break;
      case "$unionWith": {
        // `{ $unionWith: "<coll>" }` or `{ $unionWith: { coll, pipeline } }`; the union's
        // documents come after the input's (the manual leaves the order unspecified, so a
        // client that needs one sorts after the union).
        const spec = typeof arg === "string" ? { coll: arg } : (arg as Document);
        if (typeof spec.coll !== "string") throw badValue("$unionWith needs a collection name");
        docs = docs.concat(runPipeline(data, db, spec.coll as string, spec.pipeline ?? []));
        break;
      }
      default:
        throw new CommandError(
          40324,
          "Location40324",
          `Unrecognized pipeline stage name: '${name}'`,
        );
    }
  }
  return docs;
}

/**
 * `{ $limit: <positive 64-bit integer> }` (manual, "$limit (aggregation)"), refused as
 * DocumentSourceLimit::createFromBson does (src/mongo/db/pipeline/document_source_limit.cpp):
 * 15957 for a non-number, 15958 for a limit that is not positive.
 */
function limitOf(arg: unknown): number {
  if (!isNumeric(arg))
    throw new CommandError(15957, "Location15957", "the limit must be specified as a number");
  const limit = Math.trunc(toNumber(arg) as number);
  if (!(limit > 0)) throw new CommandError(15958, "Location15958", "the limit must be positive");
  return limit;
}

/** A `$sort` specification as a comparator: `{ field: 1 | -1, … }`. */
function sortOrder(spec: unknown): (a: Document, b: Document) => number {
  if (typeName(spec) !== "object" || Object.keys(spec as Document).length === 0)
    throw new CommandError(15976, "Location15976", "$sort stage must have at least one sort key");
  const keys = Object.entries(spec as Document).map(([field, order]) => {
    const o = toNumber(order);
    if (o !== 1 && o !== -1) {
      throw new CommandError(
        15975,
        "Location15975",
        "$sort key ordering must be 1 (for ascending) or -1 (for descending)",
      );
    }
    return { path: field.split("."), order: o };
  });
  return (a, b) => {
    for (const { path, order } of keys) {
      const c = compareForSort(getPath(a, path), getPath(b, path));
      if (c !== 0) return c * order;
    }
    return 0;
  };
}

function getPath(doc: Document, path: string[]): unknown {
  let value: unknown = doc;
  for (const part of path) {
    if (typeName(value) !== "object") return undefined;
    value = (value as Document)[part];
  }
  return value;
}

function bracket(v: unknown): number {
  const t = isNumeric(v) ? "number" : typeName(v) === "missing" ? "null" : typeName(v);
  const i = SORT_BRACKETS.indexOf(t);
  if (i < 0) throw badValue(`the test double cannot sort values of type ${t}`);
  return i;
}

function compareForSort(a: unknown, b: unknown): number {
  const ba = bracket(a);
  const bb = bracket(b);
  if (ba !== bb) return ba < bb ? -1 : 1;
  if (isNumeric(a)) return compareNumbers(a, b);
  if (typeof a === "string") return compareStrings(a, b as string);
  if (typeof a === "boolean") return Number(a) - Number(b);
  if (a instanceof Date) return Math.sign(a.getTime() - (b as Date).getTime());
  if (typeName(a) === "objectId") return compareStrings(String(a), String(b)); // hex: byte order
  return 0;
}

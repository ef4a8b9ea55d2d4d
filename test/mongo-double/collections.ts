/**
 * The double's data: collections of documents keyed by `_id`, and the write commands
 * (insert, update, findAndModify, delete, drop) with mongod's replies and error codes.
 * Every write also produces a change event for change streams. Each command runs to
 * completion synchronously, so writes never interleave: one at a time, like a lock.
 */
import { type Document, ObjectId } from "bson";
import { applyUpdate, matches, project, upsertSeed } from "./query.js";
import { badValue, CommandError, clone, idKey, sameBson, toNumber, typeName } from "./values.js";

/** A change as change streams report it (before the stream's own fields are added). */
export interface ChangeEvent {
  operationType: "insert" | "update" | "replace" | "delete" | "drop" | "rename";
  ns: { db: string; coll: string };
  /** The new namespace of a rename. */
  to?: { db: string; coll: string };
  documentKey?: { _id: unknown };
  fullDocument?: Document;
  updateDescription?: { updatedFields: Document; removedFields: string[] };
}

type Collection = Map<string, Document>;

/**
 * What a findAndModify wrote, kept for a retry to answer from, as mongod keeps the oplog
 * entry and its pre- or post-image. The image is the whole document: mongod rebuilds a
 * retried findAndModify's reply from the oplog and never applies `fields` to it
 * (parseOplogEntryForFindAndModify, src/mongo/db/ops/write_ops_retryability.cpp;
 * SERVER-31242).
 */
export interface FindAndModifyWrite {
  op: "insert" | "update" | "delete";
  /** The inserted document, or the image the command asked for (before or after), unprojected. */
  image: Document | null;
  upserted?: unknown;
}

const duplicate = (ns: string, id: unknown) =>
  new CommandError(
    11000,
    "DuplicateKey",
    `E11000 duplicate key error collection: ${ns} index: _id_ dup key: { _id: ${JSON.stringify(id)} }`,
  );

export class Collections {
  readonly #data = new Map<string, Collection>();
  readonly #onChange: (event: ChangeEvent) => void;

  constructor(onChange: (event: ChangeEvent) => void) {
    this.#onChange = onChange;
  }

  #get(ns: string, create: boolean): Collection | undefined {
    const c = this.#data.get(ns);
    if (c || !create) return c;
    const created: Collection = new Map();
    this.#data.set(ns, created);
    return created;
  }

  find(ns: string, filter: Document = {}, projection?: unknown, limit = 0): Document[] {
    const out: Document[] = [];
    for (const doc of this.#get(ns, false)?.values() ?? []) {
      if (!matches(doc, filter)) continue;
      out.push(project(clone(doc), projection));
      if (limit > 0 && out.length >= limit) break;
    }
    return out;
  }

  /** Inserts a copy of `doc` (with a new ObjectId `_id` if it has none); returns its `_id`. */
  insert(ns: string, doc: Document): unknown {
    const c = this.#get(ns, true) as Collection;
    const full = clone(doc._id === undefined ? { _id: new ObjectId(), ...doc } : doc);
    if (typeName(full._id) === "array") throw badValue("can't use an array for _id");
    const key = idKey(full._id);
    if (c.has(key)) throw duplicate(ns, full._id);
    c.set(key, full);
    this.#emit(ns, {
      operationType: "insert",
      documentKey: { _id: full._id },
      fullDocument: clone(full),
    });
    return full._id;
  }

  /** One `update` statement. Returns what it did, for the reply. */
  update(
    ns: string,
    q: Document,
    u: unknown,
    options: { upsert?: boolean; multi?: boolean },
  ): { matched: number; modified: number; upserted?: unknown } {
    const c = this.#get(ns, true) as Collection;
    let matched = 0;
    let modified = 0;
    for (const [key, doc] of [...c]) {
      if (!matches(doc, q)) continue;
      matched++;
      const next = applyUpdate(clone(doc), u, false);
      if (!sameBson(next, doc)) {
        c.set(key, next);
        modified++;
        this.#emitUpdate(ns, doc, next, u);
      }
      if (!options.multi) break;
    }
    if (matched > 0 || !options.upsert) return { matched, modified };
    const id = this.insert(ns, applyUpdate(upsertSeed(q), u, true));
    return { matched: 0, modified: 0, upserted: id };
  }

  /** One findAndModify: the reply, and what it wrote (nothing when it matched nothing). */
  findAndModify(ns: string, cmd: Document): { reply: Document; written?: FindAndModifyWrite } {
    const query = (cmd.query as Document | undefined) ?? {};
    const projection = cmd.fields ?? cmd.projection;
    const c = this.#get(ns, true) as Collection;
    const [key, doc] = [...c].find(([, d]) => matches(d, query)) ?? [];
    if (cmd.remove === true) {
      if (key === undefined || !doc) return { reply: reply({ n: 0 }, null) };
      this.#delete(ns, c, key, doc);
      return {
        reply: reply({ n: 1 }, project(clone(doc), projection)),
        written: { op: "delete", image: clone(doc) },
      };
    }
    if (cmd.update === undefined)
      throw badValue("Either an update or remove=true must be specified");
    if (key !== undefined && doc) {
      const next = applyUpdate(clone(doc), cmd.update, false);
      const image = clone(cmd.new ? next : doc);
      const out = reply({ n: 1, updatedExisting: true }, project(clone(image), projection));
      // An update that changes nothing writes no oplog entry, so a retry runs it again.
      if (sameBson(next, doc)) return { reply: out };
      c.set(key, next);
      this.#emitUpdate(ns, doc, next, cmd.update);
      return { reply: out, written: { op: "update", image } };
    }
    if (cmd.upsert !== true) return { reply: reply({ n: 0, updatedExisting: false }, null) };
    const id = this.insert(ns, applyUpdate(upsertSeed(query), cmd.update, true));
    const inserted = clone(c.get(idKey(id)) as Document);
    const value = cmd.new ? project(clone(inserted), projection) : null;
    return {
      reply: reply({ n: 1, updatedExisting: false, upserted: id }, value),
      written: { op: "insert", image: inserted, upserted: id },
    };
  }

  delete(ns: string, q: Document, limit: number): number {
    const c = this.#get(ns, false);
    if (!c) return 0;
    let n = 0;
    for (const [key, doc] of [...c]) {
      if (!matches(doc, q)) continue;
      this.#delete(ns, c, key, doc);
      n++;
      if (limit === 1) break;
    }
    return n;
  }

  /** Whether the namespace holds a collection (one is created by its first write). */
  exists(ns: string): boolean {
    return this.#data.has(ns);
  }

  drop(ns: string): void {
    if (this.#data.delete(ns)) this.#emit(ns, { operationType: "drop" });
  }

  /**
   * renameCollection, as mongod answers it: NamespaceNotFound (26) for a missing source,
   * NamespaceExists (48) for an existing target unless dropTarget. Streams on the source see
   * a "rename" event (and are then invalidated, see ChangeStreams).
   */
  rename(from: string, to: string, dropTarget: boolean): void {
    const source = this.#data.get(from);
    if (!source) throw new CommandError(26, "NamespaceNotFound", "source namespace does not exist");
    if (this.#data.has(to)) {
      if (!dropTarget) throw new CommandError(48, "NamespaceExists", "target namespace exists");
      this.drop(to);
    }
    this.#data.delete(from);
    this.#data.set(to, source);
    const dot = to.indexOf(".");
    this.#emit(from, {
      operationType: "rename",
      to: { db: to.slice(0, dot), coll: to.slice(dot + 1) },
    });
  }

  dropDatabase(db: string): void {
    for (const ns of [...this.#data.keys()]) if (ns.startsWith(`${db}.`)) this.drop(ns);
  }

  #delete(ns: string, c: Collection, key: string, doc: Document): void {
    c.delete(key);
    this.#emit(ns, { operationType: "delete", documentKey: { _id: doc._id } });
  }

  #emitUpdate(ns: string, before: Document, after: Document, u: unknown): void {
    const replacing = !Object.keys(u as Document).some((k) => k.startsWith("$"));
    if (replacing) {
      this.#emit(ns, {
        operationType: "replace",
        documentKey: { _id: after._id },
        fullDocument: clone(after),
      });
      return;
    }
    const updatedFields: Document = {};
    for (const [k, v] of Object.entries(after)) if (!sameBson(v, before[k])) updatedFields[k] = v;
    const removedFields = Object.keys(before).filter((k) => !(k in after));
    this.#emit(ns, {
      operationType: "update",
      documentKey: { _id: after._id },
      updateDescription: clone({
        updatedFields,
        removedFields,
      }) as ChangeEvent["updateDescription"],
    });
  }

  #emit(ns: string, event: Omit<ChangeEvent, "ns">): void {
    const dot = ns.indexOf(".");
    this.#onChange({
      ...event,
      ns: { db: ns.slice(0, dot), coll: ns.slice(dot + 1) },
    } as ChangeEvent);
  }
}

function reply(lastErrorObject: Document, value: Document | null | undefined): Document {
  const leo: Document = { ...lastErrorObject };
  if (leo.upserted === undefined) delete leo.upserted;
  return { lastErrorObject: leo, value: value ?? null, ok: 1 };
}

/** `limit` of a delete statement: 0 (all) or 1. */
export function deleteLimit(v: unknown): number {
  const n = toNumber(v) ?? 0;
  if (n !== 0 && n !== 1) throw badValue("delete limit must be 0 or 1");
  return n;
}

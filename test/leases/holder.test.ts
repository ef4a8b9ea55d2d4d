// The default holder identity (src/leases/holder.ts): this host and process, made unique
// by a random part, since host names and pids repeat across containers.
import assert from "node:assert/strict";
import { hostname } from "node:os";
import { test } from "node:test";
import { uniqueHolder } from "../../src/leases/holder.js";

test("by default: host name, process id, then 8 random hex digits", () => {
  const id = uniqueHolder();
  const prefix = `${hostname()}:${process.pid}:`;
  assert.ok(id.startsWith(prefix), id);
  assert.match(id.slice(prefix.length), /^[0-9a-f]{8}$/);
});

test("a given prefix is kept as it is; two identities from one prefix differ", () => {
  const a = uniqueHolder("worker:1");
  assert.match(a, /^worker:1:[0-9a-f]{8}$/);
  const many = new Set(Array.from({ length: 20 }, () => uniqueHolder("worker:1")));
  assert.equal(many.size, 20);
});

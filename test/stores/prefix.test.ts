import assert from "node:assert/strict";
import { test } from "node:test";
import { prefixEnd } from "../../src/stores/prefix.js";

test("prefixEnd: the least string above every string with the prefix, by code point", () => {
  assert.equal(prefixEnd(""), undefined);
  assert.equal(prefixEnd("svc/"), "svc0");
  assert.equal(prefixEnd("a%"), "a&");
  assert.equal(prefixEnd("é"), "ê");
  assert.equal(prefixEnd("a\ud7ff"), "a\ue000", "surrogates are skipped");
  assert.equal(prefixEnd("a\uffff"), "a\u{10000}");
  assert.equal(prefixEnd("a\u{10ffff}"), "b", "the last code point has no successor");
  assert.equal(prefixEnd("\u{10ffff}\u{10ffff}"), undefined);
});

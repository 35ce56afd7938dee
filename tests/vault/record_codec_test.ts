/**
 * The vault's record codec (issue 8 §1, split out of ledger.ts): the prepared entry splices
 * `index` and `prev` into exactly the canonical JSON of the whole entry, entry and head records
 * round-trip, and malformed ones are refused.
 */
import assert from "node:assert/strict";
import { canonicalString } from "../../src/lib/mod.ts";
import { CompactRange, hashLeaf } from "../../src/merkle/mod.ts";
import {
  decodeEntryRecord,
  decodeHead,
  EMPTY_STATE,
  encodeEntryRecord,
  encodeHead,
  ENTRY_ENCODING,
  headView,
  prepareEntry,
  renderEntry,
  VaultCorruptionError,
} from "../../src/vault/record_codec.ts";

Deno.test("renderEntry(prepareEntry()) is the canonical JSON of the entry with index and prev", () => {
  const prev = "ab".repeat(32);
  const cases: Record<string, unknown>[] = [
    {},
    { type: "t" },
    { a: 1, h: "x", j: [1, 2], p: null, q: { z: 1, a: 2 }, time: "2026-01-01T00:00:00.000Z" },
    { "index0": 1, "indey": 2, "pre": 3, "prevv": 4, "Z": 5, "é": "ü" },
    { text: "lone \ud800 surrogate" },
  ];
  for (const fields of cases) {
    const rendered = renderEntry(prepareEntry(fields), 42, prev);
    const expected = canonicalString({ ...fields, index: 42, prev }, ENTRY_ENCODING);
    assert.equal(rendered, expected, JSON.stringify(fields));
    JSON.parse(rendered);
  }
});

Deno.test("an entry record keeps its leaf, the nodes it completes and its bytes", () => {
  const leaf = hashLeaf(new TextEncoder().encode("entry"));
  const nodes = [new Uint8Array(32).fill(1), new Uint8Array(32).fill(2)];
  const data = new TextEncoder().encode('{"index":3}');
  const record = decodeEntryRecord(encodeEntryRecord(leaf, nodes, data))!;
  assert.deepEqual(record.leaf, leaf);
  assert.deepEqual(record.node(1), nodes[0]);
  assert.deepEqual(record.node(2), nodes[1]);
  assert.equal(record.node(0), undefined);
  assert.equal(record.node(3), undefined);
  assert.deepEqual(record.data, data);
  // Not a record: wrong type, too short, or a node count running past the data.
  assert.equal(decodeEntryRecord("text"), null);
  assert.equal(decodeEntryRecord(new Uint8Array(33)), null);
  const lying = encodeEntryRecord(leaf, [], data);
  lying[32] = 5;
  assert.equal(decodeEntryRecord(lying), null);
});

Deno.test("the head record round-trips for sizes 0, 1, 5 and 1023 and refuses malformed bytes", () => {
  for (const size of [0, 1, 5, 1023]) {
    const range = new CompactRange();
    for (let i = 0; i < size; i++) range.append(hashLeaf(new Uint8Array([i & 255, i >> 8])));
    const last = size === 0 ? EMPTY_STATE.last : "cd".repeat(32);
    const back = decodeHead(encodeHead({ range, last }));
    assert.equal(back.range.size, size);
    assert.equal(back.last, last);
    assert.deepEqual(headView(back), headView({ range, last }));
  }
  const good = encodeHead({ range: new CompactRange(), last: EMPTY_STATE.last });
  const wrongFormat = good.slice();
  wrongFormat[0] = 2;
  const size3 = good.slice();
  size3[8] = 3; // says 3 entries (two subtree roots) but carries none
  for (const bad of [undefined, "head", good.subarray(0, 40), wrongFormat, size3]) {
    assert.throws(() => decodeHead(bad), VaultCorruptionError);
  }
});

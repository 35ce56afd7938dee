import assert from "node:assert/strict";
import { CompactRange, EMPTY_ROOT, hashChildren, hashLeaf } from "../../src/merkle/mod.ts";
import { toBase64 } from "../../src/lib/mod.ts";

function leaf(n: number): Uint8Array {
  return hashLeaf(Uint8Array.of(n));
}

Deno.test("CompactRange.append() returns the leaf and every subtree it completes", () => {
  const range = new CompactRange();
  assert.deepEqual(range.root(), EMPTY_ROOT);
  assert.deepEqual(range.append(leaf(0)), [{ level: 0, index: 0, hash: leaf(0) }]);
  const n01 = hashChildren(leaf(0), leaf(1));
  assert.deepEqual(range.append(leaf(1)), [
    { level: 0, index: 1, hash: leaf(1) },
    { level: 1, index: 0, hash: n01 },
  ]);
  assert.deepEqual(range.append(leaf(2)), [{ level: 0, index: 2, hash: leaf(2) }]);
  const n23 = hashChildren(leaf(2), leaf(3));
  const n0123 = hashChildren(n01, n23);
  assert.deepEqual(range.append(leaf(3)), [
    { level: 0, index: 3, hash: leaf(3) },
    { level: 1, index: 1, hash: n23 },
    { level: 2, index: 0, hash: n0123 },
  ]);
  assert.equal(range.size, 4);
  assert.deepEqual(range.hashes, [n0123]);
  range.append(leaf(4));
  range.append(leaf(5));
  range.append(leaf(6));
  // Size 7 = 4 + 2 + 1: one subtree root per set bit, largest first.
  assert.deepEqual(range.nodeIds(), [
    { level: 2, index: 0 },
    { level: 1, index: 2 },
    { level: 0, index: 6 },
  ]);
  const n45 = hashChildren(leaf(4), leaf(5));
  assert.deepEqual(range.root(), hashChildren(n0123, hashChildren(n45, leaf(6))));
});

Deno.test("CompactRange.toJSON()/fromJSON() round-trip and keep appending identically", () => {
  const range = new CompactRange();
  for (let i = 0; i < 11; i++) range.append(leaf(i));
  const json = JSON.parse(JSON.stringify(range));
  assert.equal(json.size, 11);
  assert.equal(json.hashes.length, 3);
  const restored = CompactRange.fromJSON(json);
  assert.deepEqual(restored.root(), range.root());
  assert.deepEqual(restored.append(leaf(11)), range.append(leaf(11)));
  assert.deepEqual(restored.root(), range.root());
});

Deno.test("CompactRange.fromJSON() rejects a head whose hashes do not fit its size", () => {
  const hash = toBase64(leaf(0));
  assert.throws(() => CompactRange.fromJSON({ size: 3, hashes: [hash] }), /1 hashes, want 2/);
  assert.throws(() => CompactRange.fromJSON({ size: 1, hashes: [] }), RangeError);
  assert.throws(() => CompactRange.fromJSON({ size: -1, hashes: [] }), RangeError);
  assert.throws(() => CompactRange.fromJSON({ size: 1.5, hashes: [hash] }), RangeError);
  assert.throws(() => CompactRange.fromJSON({ size: 1, hashes: ["AAAA"] }), TypeError);
  assert.throws(() => CompactRange.fromJSON({ size: 1, hashes: ["not base64"] }), SyntaxError);
  assert.throws(() => CompactRange.fromJSON(null as never), TypeError);
});

Deno.test("CompactRange.append() rejects a leaf hash that is not 32 bytes", () => {
  const range = new CompactRange();
  assert.throws(() => range.append(new Uint8Array(31)), TypeError);
  assert.equal(range.size, 0);
});

Deno.test("CompactRange.clone() is independent of the original", () => {
  const range = new CompactRange();
  range.append(leaf(0));
  const copy = range.clone();
  copy.append(leaf(1));
  assert.equal(range.size, 1);
  assert.equal(copy.size, 2);
  assert.deepEqual(range.root(), leaf(0));
});

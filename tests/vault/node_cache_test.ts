/**
 * The vault's node reader (issue 8 §1, split out of ledger.ts): over a real ledger's records it
 * returns the RFC 6962 tree's nodes (checked against the reference tree), caches the upper
 * levels, and says when a node's record is missing.
 */
import assert from "node:assert/strict";
import { createLedger } from "../../src/vault/mod.ts";
import { CACHED_LEVEL, createNodeReader, nodeHolder } from "../../src/vault/node_cache.ts";
import { VaultCorruptionError } from "../../src/vault/record_codec.ts";
import { fromHex } from "../../src/lib/mod.ts";
import { generateSigner } from "../../src/merkle/mod.ts";
import { vaultEntryKey } from "../../src/store/mod.ts";
import { ReferenceTree } from "../merkle/_reference.ts";

async function filledVault(count: number) {
  const kv = await Deno.openKv(":memory:");
  const ledger = createLedger(kv, {
    origin: "warden/test",
    signer: await generateSigner("warden/test"),
  });
  const receipts = await Promise.all(
    Array.from({ length: count }, (_, i) => ledger.append({ type: "t", n: i })),
  );
  receipts.sort((a, b) => a.index - b.index);
  return { kv, tree: new ReferenceTree(receipts.map((r) => fromHex(r.leafHash))) };
}

Deno.test("nodeHolder() names the entry that completed a node", () => {
  assert.equal(nodeHolder({ level: 0, index: 6 }), 6);
  assert.equal(nodeHolder({ level: 1, index: 0 }), 1);
  assert.equal(nodeHolder({ level: 2, index: 1 }), 7);
  assert.equal(nodeHolder({ level: 10, index: 0 }), 1023);
});

Deno.test("node reader returns the reference tree's nodes and caches levels ≥ 10", async () => {
  const { kv, tree } = await filledVault(1030);
  try {
    const reader = createNodeReader(kv);
    const ids = [
      { level: 0, index: 0 },
      { level: 0, index: 1029 },
      { level: 1, index: 3 },
      { level: 3, index: 100 },
      { level: 9, index: 1 },
      { level: CACHED_LEVEL, index: 0 },
    ];
    const got = await reader.getNodes(ids);
    ids.forEach((n, i) => {
      const begin = n.index * 2 ** n.level;
      assert.deepEqual(got[i], tree.hash(begin, begin + 2 ** n.level), JSON.stringify(n));
    });
    assert.equal(reader.cached, 1, "only the level-10 node is kept");
    // With its record gone, the cached node is still served, an uncached one is missing.
    await kv.delete(vaultEntryKey(1023));
    assert.deepEqual((await reader.getNodes([{ level: 10, index: 0 }]))[0], got[5]);
    await assert.rejects(
      reader.getNodes([{ level: 9, index: 1 }]),
      (e: Error) =>
        e instanceof VaultCorruptionError && /level 9, index 1\) is missing/.test(e.message),
    );
    await assert.rejects(createNodeReader(kv).getNodes([{ level: 10, index: 0 }]), /missing/);
  } finally {
    kv.close();
  }
});

Deno.test("node reader keeps at most maxCached nodes and refuses a bad bound", async () => {
  const { kv } = await filledVault(2048);
  try {
    const reader = createNodeReader(kv, { maxCached: 1 });
    await reader.getNodes([{ level: 10, index: 0 }, { level: 10, index: 1 }, {
      level: 11,
      index: 0,
    }]);
    assert.equal(reader.cached, 1);
    assert.throws(() => createNodeReader(kv, { maxCached: -1 }), RangeError);
  } finally {
    kv.close();
  }
});

import assert from "node:assert/strict";
import { createLedger, type Ledger } from "../../src/vault/mod.ts";
import { fromBase64, fromHex } from "../../src/lib/mod.ts";
import {
  generateSigner,
  hashLeaf,
  openCheckpoint,
  ProofError,
  verifierFromVkey,
  verifyConsistency,
  verifyInclusion,
} from "../../src/merkle/mod.ts";
import { createRandom, flipBit, ReferenceTree } from "../merkle/_reference.ts";

async function newLedger(kv?: Deno.Kv): Promise<{ ledger: Ledger; kv: Deno.Kv }> {
  const store = kv ?? await Deno.openKv(":memory:");
  const signer = await generateSigner("warden/test");
  return { ledger: createLedger(store, { origin: "warden/test", signer }), kv: store };
}

function rejects(fn: () => void): boolean {
  try {
    fn();
    return false;
  } catch (e) {
    if (e instanceof ProofError || e instanceof RangeError || e instanceof TypeError) return true;
    throw e;
  }
}

Deno.test("ledger: proofs built from KV verify for random sizes up to 1,000 and any flipped bit fails", async () => {
  const { ledger, kv } = await newLedger();
  try {
    const receipts = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => ledger.append({ type: "test", n: i })),
    );
    // Group commit: indices are dense and unique whatever order appends settled in.
    assert.deepEqual(receipts.map((r) => r.index).sort((a, b) => a - b), [...Array(1000).keys()]);
    const leaves: Uint8Array[] = [];
    for await (const e of ledger.entries(0, 1000)) leaves.push(fromHex(e.leafHash));
    const tree = new ReferenceTree(leaves);
    const head = await ledger.head();
    assert.equal(head.size, 1000);
    assert.deepEqual(fromBase64(head.root), tree.root(1000));

    const random = createRandom(42);
    const sizes = [1, 2, 3, 7, 8, 9, 1000, ...Array.from({ length: 8 }, () => 1 + random(1000))];
    for (const size of sizes) {
      const root = tree.root(size);
      // Every inclusion proof at this size (sampled for large sizes to bound the run time).
      const step = size > 200 ? Math.ceil(size / 60) : 1;
      for (let index = 0; index < size; index += step) {
        const proof = await ledger.inclusionProof(index, size);
        assert.deepEqual(proof, tree.path(index, 0, size), `PATH(${index}, ${size})`);
        verifyInclusion({ index, size, leafHash: leaves[index], proof, root });
        if (index % 7 === 0) {
          for (let p = 0; p < proof.length; p++) {
            const bad = proof.slice();
            bad[p] = flipBit(proof[p], random(256));
            assert.ok(
              rejects(() =>
                verifyInclusion({ index, size, leafHash: leaves[index], proof: bad, root })
              ),
            );
          }
          assert.ok(
            rejects(() =>
              verifyInclusion({
                index,
                size,
                leafHash: flipBit(leaves[index], random(256)),
                proof,
                root,
              })
            ),
          );
          assert.ok(
            rejects(() =>
              verifyInclusion({
                index,
                size,
                leafHash: leaves[index],
                proof,
                root: flipBit(root, random(256)),
              })
            ),
          );
        }
      }
      for (let size1 = 1; size1 <= size; size1 += step) {
        const proof = await ledger.consistencyProof(size1, size);
        assert.deepEqual(proof, tree.consistency(size1, size), `PROOF(${size1}, ${size})`);
        const root1 = tree.root(size1);
        verifyConsistency({ size1, size2: size, root1, root2: root, proof });
        if (size1 % 5 === 0 && proof.length > 0) {
          const bad = proof.slice();
          const p = random(proof.length);
          bad[p] = flipBit(proof[p], random(256));
          assert.ok(
            rejects(() =>
              verifyConsistency({ size1, size2: size, root1, root2: root, proof: bad })
            ),
          );
          assert.ok(
            rejects(() =>
              verifyConsistency({
                size1,
                size2: size,
                root1: flipBit(root1, 3),
                root2: root,
                proof,
              })
            ),
          );
        }
      }
    }
    await assert.rejects(ledger.inclusionProof(0, 1001), RangeError);
  } finally {
    kv.close();
  }
});

Deno.test("ledger: entries carry index, prev chain and time; leaf hash is over the stored bytes", async () => {
  const { ledger, kv } = await newLedger();
  try {
    const a = await ledger.append({ type: "t", x: 1 });
    const b = await ledger.append({ type: "t", x: 2 });
    const ea = (await ledger.entry(a.index))!;
    const eb = (await ledger.entry(b.index))!;
    const ja = JSON.parse(new TextDecoder().decode(ea.bytes));
    const jb = JSON.parse(new TextDecoder().decode(eb.bytes));
    assert.equal(ja.index, 0);
    assert.equal(ja.prev, "0".repeat(64));
    assert.equal(jb.prev, a.leafHash);
    assert.ok(Date.parse(ja.time) > 0);
    assert.deepEqual(hashLeaf(eb.bytes), fromHex(b.leafHash));
    assert.equal(await ledger.entry(99), null);
    await assert.rejects(ledger.append({ index: 5 }), /assigned by the vault/);
    await assert.rejects(ledger.append({ latency: 1.5 }), /non-integer number 1.5/);
  } finally {
    kv.close();
  }
});

Deno.test("ledger: bodies over the inline limit are stored content-addressed in chunks", async () => {
  const { ledger, kv } = await newLedger();
  try {
    const big = { text: "x".repeat(200_000), n: 1.25 };
    const r = await ledger.append({ type: "big" }, { body: big });
    const entry = JSON.parse(new TextDecoder().decode((await ledger.entry(r.index))!.bytes));
    assert.equal(entry.body, undefined);
    assert.match(entry.body_sha256, /^[0-9a-f]{64}$/);
    const blob = await ledger.blob(entry.body_sha256);
    assert.ok(blob);
    assert.equal(blob.byteLength, entry.body_bytes);
    assert.deepEqual(JSON.parse(new TextDecoder().decode(blob)), big);
    const small = await ledger.append({ type: "small" }, { body: { a: 0.5 } });
    const smallEntry = JSON.parse(
      new TextDecoder().decode((await ledger.entry(small.index))!.bytes),
    );
    assert.equal(smallEntry.body, '{"a":0.5}');
    await assert.rejects(ledger.append({ huge: "y".repeat(70_000) }), /over the 61440-byte limit/);
  } finally {
    kv.close();
  }
});

Deno.test("ledger: checkpoints are signed over the committed head, kept, and verify", async () => {
  const { ledger, kv } = await newLedger();
  const signer = await generateSigner("warden/other");
  try {
    assert.equal(await ledger.signCheckpoint(), null);
    await ledger.append({ type: "t" });
    const first = (await ledger.signCheckpoint())!;
    await ledger.append({ type: "t" });
    await ledger.append({ type: "t" });
    const second = (await ledger.signCheckpoint())!;
    const all = [];
    for await (const c of ledger.checkpoints()) all.push(c);
    assert.deepEqual(all.map((c) => c.size), [1, 3]);
    assert.equal(all[1].note, second);
    assert.equal(await ledger.latestCheckpoint(), second);
    assert.match(first, /^warden\/test\n1\n/);
    // The ledger's own key verifies; another key does not.
    const key = (await kv.get<string>(["signing_key"])).value;
    assert.equal(key, null, "an injected signer is not written to KV");
    await assert.rejects(openCheckpoint(second, [await verifierFromVkey(signer.vkey)]));
  } finally {
    kv.close();
  }
});

Deno.test("ledger: two ledgers on one KV file interleave appends without gaps or duplicates", async () => {
  const dir = await Deno.makeTempDir();
  const kv1 = await Deno.openKv(`${dir}/v.db`);
  const kv2 = await Deno.openKv(`${dir}/v.db`);
  try {
    const signer = await generateSigner("warden/test");
    const l1 = createLedger(kv1, { origin: "warden/test", signer });
    const l2 = createLedger(kv2, { origin: "warden/test", signer });
    const all = await Promise.all([
      ...Array.from({ length: 150 }, (_, i) => l1.append({ who: "a", i })),
      ...Array.from({ length: 150 }, (_, i) => l2.append({ who: "b", i })),
    ]);
    const indices = all.map((r) => r.index).sort((a, b) => a - b);
    assert.deepEqual(indices, [...Array(300).keys()]);
    assert.equal((await l1.head()).size, 300);
    assert.deepEqual(await l1.verifyHead(), { ok: true, size: 300 });
    let prev = "0".repeat(64);
    for await (const e of l2.entries(0, 300)) {
      assert.equal(JSON.parse(new TextDecoder().decode(e.bytes)).prev, prev);
      prev = e.leafHash;
    }
  } finally {
    kv1.close();
    kv2.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** Counts the atomics a KV handle commits (the handle itself is real). */
function countingCommits(kv: Deno.Kv): { kv: Deno.Kv; commits: () => number } {
  let commits = 0;
  const counted = new Proxy(kv, {
    get(target, prop) {
      if (prop === "atomic") {
        return () => {
          const op = target.atomic();
          const commit = op.commit.bind(op);
          op.commit = () => {
            commits++;
            return commit();
          };
          return op;
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { kv: counted, commits: () => commits };
}

Deno.test("ledger: everything appended while a commit is in flight goes into the next one", async () => {
  const real = await Deno.openKv(":memory:");
  const { kv, commits } = countingCommits(real);
  const { ledger } = await newLedger(kv);
  try {
    await ledger.append({ n: -1 }); // the head is read and cached
    const before = commits();
    const first = ledger.append({ n: 0 }); // goes out alone, at once
    const rest = Array.from({ length: 99 }, (_, i) => ledger.append({ n: i + 1 }));
    const receipts = await Promise.all([first, ...rest]);
    assert.deepEqual(receipts.map((r) => r.index), Array.from({ length: 100 }, (_, i) => i + 1));
    assert.equal(commits() - before, 2, "one commit for the first entry, one for the 99 behind it");
    assert.deepEqual(await ledger.verifyHead(), { ok: true, size: 101 });
  } finally {
    real.close();
  }
});

Deno.test("ledger: a KV that refuses the commit fails the appends instead of leaving them hanging", async () => {
  const { ledger, kv } = await newLedger();
  await ledger.append({ n: 0 });
  kv.close();
  const results = await Promise.allSettled(
    Array.from({ length: 5 }, (_, i) => ledger.append({ n: i + 1 })),
  );
  assert.ok(results.every((r) => r.status === "rejected"), JSON.stringify(results));
  await ledger.flush(); // resolves: nothing is left in flight
});

Deno.test("ledger: proofs read each node from the record of the entry that completed it", async () => {
  const { ledger, kv } = await newLedger();
  try {
    const leaves: Uint8Array[] = [];
    for (let i = 0; i < 64; i++) leaves.push(fromHex((await ledger.append({ n: i })).leafHash));
    const tree = new ReferenceTree(leaves);
    // Node (level 3, index 2) covers leaves 16..23: entry 23 completes it.
    const [node] = await ledger.nodes([{ level: 3, index: 2 }]);
    assert.deepEqual(node, tree.hash(16, 24));
    // Remove that entry and the node is reported missing, not invented.
    await kv.delete(["vault", "e", 23]);
    const fresh = createLedger(kv, { origin: "warden/test", signer: await generateSigner("x") });
    await assert.rejects(fresh.nodes([{ level: 3, index: 2 }]), /level 3, index 2\) is missing/);
  } finally {
    kv.close();
  }
});

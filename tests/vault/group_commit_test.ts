/**
 * The vault's group commit (issue 8 §1, split out of ledger.ts), over a real KV: concurrent
 * appends share commits (an entry's versionstamp names the commit that wrote it), indices follow
 * call order and each entry's `prev` is the leaf before it, a commit that fails rejects every
 * entry waiting on it, two writers on one KV rebuild on each other's head without losing or
 * repeating an index, riders ride the commit of the entries, and flush waits for all of it.
 */
import assert from "node:assert/strict";
import {
  createGroupCommit,
  EntryExistsError,
  type GroupCommit,
  readCommittedHead,
  type SealReceipt,
} from "../../src/vault/group_commit.ts";
import { decodeEntryRecord, prepareEntry } from "../../src/vault/record_codec.ts";
import { GENESIS_PREV } from "../../src/vault/mod.ts";
import { vaultEntryKey } from "../../src/store/mod.ts";
import { toHex } from "../../src/lib/mod.ts";
import { hashLeaf } from "../../src/merkle/mod.ts";

/** The stored entries [0, size): parsed JSON, leaf hash and the versionstamp of their commit. */
async function stored(kv: Deno.Kv, size: number) {
  const out = [];
  for (let i = 0; i < size; i++) {
    const e = await kv.get(vaultEntryKey(i));
    const record = decodeEntryRecord(e.value);
    assert.ok(record, `entry ${i} is stored`);
    out.push({
      json: JSON.parse(new TextDecoder().decode(record.data)),
      leaf: toHex(hashLeaf(record.data)),
      versionstamp: e.versionstamp,
    });
  }
  return out;
}

function appendAll(log: GroupCommit, texts: string[]): Promise<SealReceipt[]> {
  return Promise.all(texts.map((text) => log.append(prepareEntry({ text }))));
}

const texts = (n: number, tag = "e") => Array.from({ length: n }, (_, i) => `${tag}${i}`);

Deno.test("group commit puts 50 concurrent appends in one atomic, in call order", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const log = createGroupCommit(kv);
    const receipts = await appendAll(log, texts(50));
    assert.deepEqual(receipts.map((r) => r.index), texts(50).map((_, i) => i));
    const entries = await stored(kv, 50);
    assert.equal(new Set(entries.map((e) => e.versionstamp)).size, 1, "one commit");
    entries.forEach((e, i) => {
      assert.equal(e.json.text, `e${i}`);
      assert.equal(e.json.index, i);
      assert.equal(e.json.prev, i === 0 ? GENESIS_PREV : entries[i - 1].leaf);
      assert.equal(receipts[i].leafHash, e.leaf);
    });
    const head = await readCommittedHead(kv);
    assert.equal(head.state.range.size, 50);
    assert.equal(head.state.last, entries[49].leaf);
  } finally {
    kv.close();
  }
});

Deno.test("group commit splits a burst at maxBatch: 23 appends, batches of 10 → 3 commits", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const log = createGroupCommit(kv, { maxBatch: 10 });
    await appendAll(log, texts(23));
    const stamps = (await stored(kv, 23)).map((e) => e.versionstamp);
    assert.equal(new Set(stamps).size, 3);
    // Consecutive runs of 10, 10 and 3: batches hold consecutive indices.
    for (let i = 0; i < 23; i++) assert.equal(stamps[i], stamps[Math.floor(i / 10) * 10]);
  } finally {
    kv.close();
  }
});

Deno.test("group commit: appends made while a commit is in flight join the next one", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const committed: number[] = [];
    const log = createGroupCommit(kv, { committed: (size) => committed.push(size) });
    await log.append(prepareEntry({ text: "first" }));
    // The head is known now: `a` is committed at once, `b` and `c` wait for it together.
    const [a, b, c] = await appendAll(log, ["a", "b", "c"]);
    assert.deepEqual([a.index, b.index, c.index], [1, 2, 3]);
    const [, ea, eb, ec] = await stored(kv, 4);
    assert.notEqual(ea.versionstamp, eb.versionstamp);
    assert.equal(eb.versionstamp, ec.versionstamp);
    assert.deepEqual(committed, [1, 2, 4], "the size after each of our commits");
  } finally {
    kv.close();
  }
});

Deno.test("group commit: a commit that fails rejects every entry in it and queued after it", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const log = createGroupCommit(kv);
    // Over KV's 64 KiB value limit: its commit is refused, and nothing in it is written.
    const huge = prepareEntry({ text: "x".repeat(70_000) });
    const burst = await Promise.allSettled([
      log.append(prepareEntry({ text: "a" })),
      log.append(huge),
      log.append(prepareEntry({ text: "b" })),
    ]);
    assert.equal(burst.length, 3);
    for (const r of burst) {
      assert.equal(r.status, "rejected");
      assert.match(String(r.reason), /Value too large/);
    }
    assert.equal((await readCommittedHead(kv)).state.range.size, 0);
    assert.equal((await kv.get(vaultEntryKey(0))).value, null);

    // With the head known, the huge entry's commit is in flight when `c` and `d` queue behind it:
    // they fail with it (none is acknowledged unless its commit succeeded).
    await log.append(prepareEntry({ text: "ok" }));
    const later = await Promise.allSettled([
      log.append(huge),
      log.append(prepareEntry({ text: "c" })),
      log.append(prepareEntry({ text: "d" })),
    ]);
    assert.deepEqual(later.map((r) => r.status), ["rejected", "rejected", "rejected"]);
    await log.flush();
    assert.equal(log.pending(), false);

    // The log is still usable: the next append goes right after the last committed entry.
    const next = await log.append(prepareEntry({ text: "after" }));
    assert.equal(next.index, 1);
  } finally {
    kv.close();
  }
});

Deno.test("group commit: a failed head read rejects every waiting append", async () => {
  const kv = await Deno.openKv(":memory:");
  const log = createGroupCommit(kv, {
    readHead: () => Promise.reject(new Error("head unreadable")),
  });
  try {
    const results = await Promise.allSettled([
      log.append(prepareEntry({ text: "a" })),
      log.append(prepareEntry({ text: "b" })),
    ]);
    assert.deepEqual(results.map((r) => r.status), ["rejected", "rejected"]);
    for (const r of results) {
      assert.match(String((r as PromiseRejectedResult).reason), /unreadable/);
    }
    await log.flush();
    assert.equal(log.pending(), false);
  } finally {
    kv.close();
  }
});

Deno.test("group commit: two writers on one KV rebuild on each other's head, no index lost or repeated", async () => {
  const path = await Deno.makeTempFile({ suffix: ".kv" });
  const kv1 = await Deno.openKv(path);
  const kv2 = await Deno.openKv(path);
  try {
    const one = createGroupCommit(kv1, { maxBatch: 4 });
    const two = createGroupCommit(kv2, { maxBatch: 4 });
    const [r1, r2] = await Promise.all([
      appendAll(one, texts(30, "one")),
      appendAll(two, texts(30, "two")),
    ]);
    const indices = [...r1, ...r2].map((r) => r.index).sort((a, b) => a - b);
    assert.deepEqual(indices, Array.from({ length: 60 }, (_, i) => i));
    // Each writer's entries are in its own call order.
    for (const receipts of [r1, r2]) {
      for (let i = 1; i < receipts.length; i++) {
        assert.ok(receipts[i].index > receipts[i - 1].index);
      }
    }
    const entries = await stored(kv1, 60);
    entries.forEach((e, i) => {
      assert.equal(e.json.index, i);
      assert.equal(e.json.prev, i === 0 ? GENESIS_PREV : entries[i - 1].leaf);
    });
    const byIndex = new Map([...r1, ...r2].map((r) => [r.index, r.leafHash]));
    entries.forEach((e, i) => assert.equal(byIndex.get(i), e.leaf, `receipt of entry ${i}`));
    assert.equal((await readCommittedHead(kv1)).state.range.size, 60);
  } finally {
    kv1.close();
    kv2.close();
    await Deno.remove(path);
  }
});

Deno.test("group commit: of two appends naming one once key, the second is refused", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const log = createGroupCommit(kv);
    const key = ["seal", "s1"];
    const [first, second] = await Promise.allSettled([
      log.append(prepareEntry({ text: "a" }), key),
      log.append(prepareEntry({ text: "b" }), key),
    ]);
    assert.equal(first.status, "fulfilled");
    assert.equal(second.status, "rejected");
    const error = (second as PromiseRejectedResult).reason;
    assert.ok(error instanceof EntryExistsError);
    assert.equal(error.index, 0);
    assert.equal((await kv.get(key)).value, 0);
    assert.equal((await readCommittedHead(kv)).state.range.size, 1);
  } finally {
    kv.close();
  }
});

Deno.test("group commit: a rider's mutations ride the entries' commit; it hears idle", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const log = createGroupCommit(kv);
    const settled: boolean[] = [];
    let idle = 0;
    let offered = false;
    log.carry({
      ride(room) {
        assert.ok(room > 0);
        if (offered) return undefined;
        offered = true;
        return {
          mutations: [{ type: "max", key: ["counter"], value: new Deno.KvU64(7n) }],
          settle: (ok) => settled.push(ok),
        };
      },
      idle: () => idle++,
    });
    await appendAll(log, ["a", "b"]);
    await log.flush();
    const counter = await kv.get(["counter"]);
    assert.equal((counter.value as Deno.KvU64).value, 7n);
    assert.equal(counter.versionstamp, (await kv.get(vaultEntryKey(0))).versionstamp);
    assert.deepEqual(settled, [true]);
    assert.ok(idle >= 1);
  } finally {
    kv.close();
  }
});

Deno.test("group commit: flush resolves once every queued append has settled", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const log = createGroupCommit(kv, { maxBatch: 5 });
    assert.equal(log.pending(), false);
    await log.flush(); // nothing queued: resolves at once
    const done: number[] = [];
    for (let i = 0; i < 17; i++) {
      log.append(prepareEntry({ text: `e${i}` })).then((r) => done.push(r.index));
    }
    assert.equal(log.pending(), true);
    await log.flush();
    assert.equal(log.pending(), false);
    assert.equal(done.length, 17, "every append settled before flush resolved");
    assert.equal((await readCommittedHead(kv)).state.range.size, 17);
  } finally {
    kv.close();
  }
});

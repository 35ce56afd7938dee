import assert from "node:assert/strict";
import {
  createBatchWriter,
  keyByteLength,
  KV_MAX_ATOMIC_KEY_BYTES,
  utf8Length,
} from "../../src/store/mod.ts";

Deno.test("createBatchWriter() splits a group whose keys together exceed KV's total key size", async () => {
  using kv = await Deno.openKv(":memory:");
  const writer = createBatchWriter(kv);
  // 900 writes of one ~150-byte key each: under the 1,000-mutation and 800 KiB limits, but their
  // keys add up to ~135 KB, past KV's 81,920-byte total key size for one atomic.
  const pad = "k".repeat(140);
  const writes = [];
  for (let i = 0; i < 900; i++) {
    writes.push(writer.write([{ type: "set", key: ["events", pad, i], value: i }]));
  }
  await Promise.all(writes);
  let n = 0;
  for await (const _ of kv.list({ prefix: ["events", pad] })) n++;
  assert.equal(n, 900);
});

Deno.test("createBatchWriter() refuses one write whose own keys exceed the total key size", async () => {
  using kv = await Deno.openKv(":memory:");
  const writer = createBatchWriter(kv);
  const pad = "x".repeat(1000);
  const mutations = Array.from({ length: 90 }, (_, i) => ({
    type: "set" as const,
    key: ["big", pad, i],
    value: 1,
  }));
  await assert.rejects(writer.write(mutations), RangeError);
});

Deno.test("keyByteLength() bounds KV's encoding: tags, terminators, 8-byte numbers, escaped NULs", () => {
  assert.equal(keyByteLength(["ab"]), 4);
  assert.equal(keyByteLength([1]), 9);
  assert.equal(keyByteLength(["a\0b"]), 2 + 3 + 1);
  assert.equal(keyByteLength([true]), 1);
  assert.ok(KV_MAX_ATOMIC_KEY_BYTES <= 81920);
});

Deno.test("utf8Length() is TextEncoder's length, lone surrogates included, without encoding", () => {
  const samples = [
    "",
    "ascii",
    "é",
    "日本語",
    "😀",
    "a😀b",
    "\ud800",
    "\udc00x",
    "\ud800\ud800",
    "x\u07ffy",
  ];
  for (const s of samples) assert.equal(utf8Length(s), new TextEncoder().encode(s).length, s);
  let seed = 1;
  for (let i = 0; i < 500; i++) {
    let s = "";
    for (let j = 0; j < 20; j++) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      s += String.fromCharCode(seed % 0x10000);
    }
    assert.equal(utf8Length(s), new TextEncoder().encode(s).length);
  }
});

Deno.test("createBatchWriter() sizes a set by its valueBytes when given, refusing what it says is too big", async () => {
  using kv = await Deno.openKv(":memory:");
  const writer = createBatchWriter(kv);
  await assert.rejects(
    writer.write([{ type: "set", key: ["a"], value: "small", valueBytes: 900 * 1024 }]),
    RangeError,
  );
  await writer.write([{ type: "set", key: ["a"], value: "small", valueBytes: 10 }]);
  assert.equal((await kv.get(["a"])).value, "small");
});

Deno.test("createBatchWriter() with lingerMs commits writes arriving one at a time together", async () => {
  using kv = await Deno.openKv(":memory:");
  let commits = 0;
  const atomic = kv.atomic.bind(kv);
  kv.atomic = () => {
    const op = atomic();
    const commit = op.commit.bind(op);
    op.commit = () => {
      commits++;
      return commit();
    };
    return op;
  };
  // Eight writers one after another, 1 ms apart, none waiting for the previous commit.
  const lingering = createBatchWriter(kv, { lingerMs: 25 });
  const done: Promise<void>[] = [];
  for (let i = 0; i < 8; i++) {
    done.push(lingering.write([{ type: "set", key: ["l", i], value: i }]));
    await new Promise((r) => setTimeout(r, 1)); // wall time on purpose: writes 1 ms apart
  }
  await Promise.all(done);
  assert.ok(commits <= 2, `8 lingering writes took ${commits} commits`);
  for (let i = 0; i < 8; i++) assert.equal((await kv.get(["l", i])).value, i);
  // Without lingering each write that finds the writer idle is its own commit.
  commits = 0;
  const eager = createBatchWriter(kv);
  for (let i = 0; i < 8; i++) {
    const w = eager.write([{ type: "set", key: ["e", i], value: i }]);
    await w;
  }
  assert.equal(commits, 8);
  // flush() waits for a lingering write.
  await lingering.write([{ type: "set", key: ["last"], value: 1 }]).then(() => {});
  void lingering.write([{ type: "set", key: ["later"], value: 2 }]);
  await lingering.flush();
  assert.equal((await kv.get(["later"])).value, 2);
});

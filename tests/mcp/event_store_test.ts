import assert from "node:assert/strict";
import { EventWriteBudget, KvEventStore } from "../../src/mcp/event_store.ts";
import { createBatchWriter } from "../../src/store/mod.ts";

const msg = (id: number, pad = 0) => ({
  jsonrpc: "2.0" as const,
  id,
  result: { text: "x".repeat(pad) },
});

function storeOn(kv: Deno.Kv, sessionId: string, budget?: EventWriteBudget, maxEvents = 100) {
  return new KvEventStore(kv, {
    sessionId,
    writer: createBatchWriter(kv),
    maxEvents,
    ttlMs: 60_000,
    processTag: "t",
    budget,
  });
}

async function replayAll(store: KvEventStore, after: string) {
  const got: { id: string; message: unknown }[] = [];
  await store.replayEventsAfter(after, {
    send: (id, message) => {
      got.push({ id, message });
      return Promise.resolve();
    },
  });
  return got;
}

Deno.test("event store: storeEvent answers before the event's commit, and flush commits it", async () => {
  using kv = await Deno.openKv(":memory:");
  const budget = new EventWriteBudget();
  const store = storeOn(kv, "s1", budget);
  const first = await store.storeEvent("stream", msg(1));
  await store.storeEvent("stream", msg(2));
  // Returned with the writes still queued: nobody waited for a durable commit.
  assert.ok(budget.pendingBytes > 0, "writes are still queued when storeEvent has answered");
  await store.flush();
  assert.equal(budget.pendingBytes, 0);
  const other = storeOn(kv, "s1");
  const got = await replayAll(other, first);
  assert.deepEqual(got.map((g) => (g.message as { id: number }).id), [2]);
});

Deno.test("event store: queued event bytes are bounded; past the bound events are dropped, never awaited", async () => {
  using kv = await Deno.openKv(":memory:");
  const budget = new EventWriteBudget(2_000);
  const store = storeOn(kv, "s2", budget);
  const ids: string[] = [];
  for (let i = 0; i < 10; i++) {
    ids.push(await store.storeEvent("stream", msg(i, 500)));
    assert.ok(budget.pendingBytes <= 2_000, `pending ${budget.pendingBytes}`);
  }
  assert.ok(budget.dropped >= 6, `dropped ${budget.dropped}`);
  await store.flush();
  assert.equal(budget.pendingBytes, 0);
  // What was kept replays intact and in order.
  const got = await replayAll(storeOn(kv, "s2"), ids[0]);
  assert.equal(got.length, 10 - 1 - budget.dropped);
  const seen = got.map((g) => (g.message as { id: number }).id);
  assert.deepEqual(seen, [...seen].sort((a, b) => a - b));
});

Deno.test("event store: each new event retires the oldest, so a session keeps exactly its bound", async () => {
  using kv = await Deno.openKv(":memory:");
  const store = storeOn(kv, "s3", undefined, 20);
  for (let i = 0; i < 57; i++) await store.storeEvent("stream", msg(i));
  await store.flush();
  let stored = 0;
  for await (const e of kv.list({ prefix: ["mcp_event", "s3"] })) {
    if (e.key.length === 3) stored++;
  }
  assert.equal(stored, 20);
});

Deno.test("event store: a crash loses at most the events not yet committed; every flushed one replays", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/events.db`;
    const storeUrl = new URL("../../src/mcp/event_store.ts", import.meta.url).href;
    const storeMod = new URL("../../src/store/mod.ts", import.meta.url).href;
    // A child stores 50 events, flushes (acknowledges) them, queues 50 more and dies at once.
    const script = `
      import { KvEventStore } from "${storeUrl}";
      import { createBatchWriter } from "${storeMod}";
      const kv = await Deno.openKv(${JSON.stringify(path)});
      const store = new KvEventStore(kv, { sessionId: "crash", writer: createBatchWriter(kv),
        maxEvents: 1000, ttlMs: 60000, processTag: "c" });
      const ids = [];
      for (let i = 0; i < 50; i++) ids.push(await store.storeEvent("st", { jsonrpc: "2.0", id: i, result: {} }));
      await store.flush();
      console.log(JSON.stringify(ids));
      for (let i = 50; i < 100; i++) await store.storeEvent("st", { jsonrpc: "2.0", id: i, result: {} });
      Deno.exit(9);
    `;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--unstable-kv", script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 9, new TextDecoder().decode(out.stderr));
    const acked: string[] = JSON.parse(new TextDecoder().decode(out.stdout).trim());
    const kv = await Deno.openKv(path);
    try {
      const priming = await kv.list({ prefix: ["mcp_event", "crash"] }).next();
      assert.ok(!priming.done);
      const got = await replayAll(storeOn(kv, "crash"), acked[0]);
      const seen = got.map((g) => (g.message as { id: number }).id);
      // Every acknowledged event after the first is there, in order; later ones only as a prefix.
      assert.deepEqual(seen.slice(0, 49), Array.from({ length: 49 }, (_, i) => i + 1));
      assert.deepEqual(seen, Array.from({ length: seen.length }, (_, i) => i + 1));
      assert.ok(seen.length <= 99);
    } finally {
      kv.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("event store: a priming event is an id only — nothing is written, and a replay after it has what followed", async () => {
  using kv = await Deno.openKv(":memory:");
  const store = storeOn(kv, "s5");
  await store.storeEvent("stream", msg(1));
  const priming = await store.storeEvent("stream", {} as never);
  await store.storeEvent("stream", msg(2));
  await store.storeEvent("other", msg(3));
  await store.flush();
  let stored = 0;
  for await (const e of kv.list({ prefix: ["mcp_event", "s5"] })) {
    if (e.key.length === 3) stored++;
  }
  assert.equal(stored, 3, "the priming event is not stored");
  const got = await replayAll(storeOn(kv, "s5"), priming);
  assert.deepEqual(got.map((g) => (g.message as { id: number }).id), [2]);
});

Deno.test("event store: an event sent on a connected stream is kept in memory only, replays from this process, and is stored (redacted) once its stream breaks", async () => {
  using kv = await Deno.openKv(":memory:");
  const budget = new EventWriteBudget();
  const store = storeOn(kv, "s6", budget);
  const secret = "ghp_" + "A1b2C3d4".repeat(5);
  const priming = await store.storeEvent("live", {} as never);
  const m1 = { jsonrpc: "2.0" as const, id: 1, result: { note: `token ${secret}` } };
  store.sent("live", JSON.stringify(m1));
  await store.flush();
  const keys = async () => {
    const out: Deno.KvKey[] = [];
    for await (const e of kv.list({ prefix: ["mcp_event", "s6"] })) out.push(e.key);
    return out;
  };
  assert.deepEqual(await keys(), [], "an answer that reached its connection costs no KV write");
  assert.ok(budget.recentBytes > 0);
  // This process replays it from memory, as sent (the caller's own answer).
  assert.deepEqual((await replayAll(store, priming)).map((g) => g.message), [m1]);
  // Another process finds nothing: the stream never broke.
  assert.deepEqual(await replayAll(storeOn(kv, "s6"), priming), []);
  // A stream cut off mid-call: what it was sent is stored, redacted, for any process.
  const p2 = await store.storeEvent("cut", {} as never);
  const m2 = { jsonrpc: "2.0" as const, method: "notifications/progress", params: { secret } };
  store.sent("cut", JSON.stringify(m2));
  store.streamBroken("cut");
  await store.flush();
  const stored = [];
  for await (const e of kv.list({ prefix: ["mcp_event", "s6"] })) {
    stored.push(JSON.stringify(e.value));
  }
  assert.equal(stored.length, 1);
  assert.ok(!stored[0].includes(secret), "a stored event kept the secret");
  assert.match(stored[0], /REDACTED/);
  const elsewhere = await replayAll(storeOn(kv, "s6"), p2);
  assert.equal(elsewhere.length, 1);
  // The same process sends it once (from KV now), not twice.
  assert.equal((await replayAll(store, p2)).length, 1);
});

Deno.test("event store: events kept in memory are bounded per session and per process", async () => {
  using kv = await Deno.openKv(":memory:");
  const budget = new EventWriteBudget();
  const a = storeOn(kv, "s7", budget, 5);
  const first = await a.storeEvent("x", {} as never);
  for (let i = 0; i < 12; i++) a.sent("x", JSON.stringify(msg(i)));
  const got = await replayAll(a, first);
  assert.deepEqual(got.map((g) => (g.message as { id: number }).id), [7, 8, 9, 10, 11]);
  // The process-wide byte bound: one huge session cannot hold every other session's memory.
  const b = storeOn(kv, "s8", budget, 10_000);
  const firstB = await b.storeEvent("y", {} as never);
  const pad = "x".repeat(512 * 1024); // 1 MiB of UTF-16 an event
  for (let i = 0; i < 40; i++) b.sent("y", JSON.stringify({ ...msg(i), pad }));
  assert.ok(budget.recentBytes <= budget.maxRecentBytes, `${budget.recentBytes}`);
  const kept = await replayAll(b, firstB);
  assert.ok(kept.length > 0 && kept.length < 40, `kept ${kept.length}`);
  assert.equal((kept.at(-1)!.message as { id: number }).id, 39, "the newest are kept");
});

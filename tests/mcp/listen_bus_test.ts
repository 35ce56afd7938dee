/**
 * The listen path's bus seam without HTTP (issue 15 §4): a stream whose client takes nothing is
 * cut once what it was handed passes `maxQueuedBytes` — its follow stops and its body ends —
 * rather than buffered for; a stream its client reads keeps going. The listener here does what
 * the SDK's listen router does with an event (one SSE frame enqueued on the stream it serves);
 * the bus, its KV and the follow are real.
 */
import assert from "node:assert/strict";
import { createBusService } from "../../src/services/mod.ts";
import { createListenBus } from "../../src/mcp/listen_bus.ts";
import { silentLogger } from "../../src/lib/mod.ts";
import { waitFor } from "../_helpers/wait.ts";

async function setUp(maxQueuedBytes: number) {
  const kv = await Deno.openKv(":memory:");
  const bus = createBusService(kv);
  const router = createListenBus({
    logger: silentLogger,
    bus: {
      heads: (p, t) => bus.heads(p, t),
      follow: (p, t, on, signal, after) => bus.follow(p, t, on, signal, after),
      maxQueuedBytes,
      idleMs: 60_000,
    },
  });
  const feed = await router.open(1, "alice", ["warden://bus/big"]);
  assert.ok(!(feed instanceof Response));
  // The SDK's side: one frame per event on the stream it answers with.
  let sdk!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({ start: (c) => void (sdk = c) });
  const enc = new TextEncoder();
  await router.run(feed, () => {
    router.events.subscribe((e) => sdk.enqueue(enc.encode(`data: ${JSON.stringify(e)}\n\n`)));
    return Promise.resolve();
  });
  let ended = 0;
  const response = router.wrap(
    new Response(body, { headers: { "content-type": "text/event-stream" } }),
    feed,
    () => ended++,
  );
  return { kv, bus, feed, response, ended: () => ended };
}

const until = (what: string, ok: () => boolean) =>
  waitFor(ok, `not ${what}`, { timeoutMs: 5_000, intervalMs: 20 });

Deno.test("a bus stream whose client takes nothing is cut past its queued bytes", async () => {
  const { kv, bus, feed, response, ended } = await setUp(64 * 1024);
  try {
    assert.equal(bus.following, 1);
    const chunk = "x".repeat(15_000);
    for (let i = 0; i < 8 && !feed.stop.signal.aborted; i++) {
      await bus.publish("alice", "big", { i, chunk });
      await new Promise((r) => setTimeout(r, 30));
    }
    await until("cut", () => feed.stop.signal.aborted);
    assert.equal(bus.following, 0, "the follow stopped");
    assert.equal(ended(), 1);
    // What was handed before the cut is still there to read, then the body ends.
    const reader = response.body!.getReader();
    let frames = 0;
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      frames += new TextDecoder().decode(value).split("data: ").length - 1;
    }
    assert.ok(frames >= 1 && frames < 8, `${frames} frames`);
  } finally {
    kv.close();
  }
});

Deno.test("a bus stream whose client reads keeps every message", async () => {
  const { kv, bus, feed, response } = await setUp(64 * 1024);
  try {
    const reader = response.body!.getReader();
    let text = "";
    const reading = (async () => {
      while (true) {
        const { done, value } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
    })();
    const chunk = "x".repeat(15_000);
    for (let i = 0; i < 12; i++) {
      await bus.publish("alice", "big", { i, chunk });
      await until(`message ${i} read`, () => text.includes(`"i":${i},`));
    }
    assert.equal(feed.stop.signal.aborted, false);
    await reader.cancel();
    await reading;
    await until("stopped after cancel", () => bus.following === 0);
  } finally {
    kv.close();
  }
});

Deno.test("a bus stream that overflowed before it opened ends instead of following nothing", async () => {
  using kv = await Deno.openKv(":memory:");
  const bus = createBusService(kv);
  const router = createListenBus({
    logger: silentLogger,
    bus: {
      heads: (p, t) => bus.heads(p, t),
      follow: (p, t, on, signal, after) => bus.follow(p, t, on, signal, after),
      maxQueuedBytes: 20_000,
      idleMs: 60_000,
    },
  });
  const feed = await router.open(7, "alice", ["warden://bus/early"]);
  assert.ok(!(feed instanceof Response));
  // Published after the heads were read, before the SDK's listener is there.
  for (let i = 0; i < 3; i++) await bus.publish("alice", "early", { i, pad: "y".repeat(9_000) });
  await until("stopped", () => feed.stop.signal.aborted);
  let sdk!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({ start: (c) => void (sdk = c) });
  await router.run(feed, () => {
    router.events.subscribe((e) => sdk.enqueue(new TextEncoder().encode(JSON.stringify(e))));
    return Promise.resolve();
  });
  const response = router.wrap(
    new Response(body, { headers: { "content-type": "text/event-stream" } }),
    feed,
    () => {},
  );
  const reader = response.body!.getReader();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const read = await Promise.race([
    reader.read(),
    new Promise<{ done: "still open after 3 s" }>((r) => {
      timer = setTimeout(() => r({ done: "still open after 3 s" }), 3_000);
    }),
  ]).finally(() => clearTimeout(timer));
  assert.equal(read.done, true, "the stream ends at once");
  assert.equal(bus.following, 0);
});

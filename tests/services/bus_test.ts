/**
 * The bus service without MCP: ordered, gap-free sequence numbers, the kept
 * window, per-principal topics, size and topic caps, a waiting subscriber woken
 * by a publish through a second KV connection to the same database (another
 * instance), wait timeouts and the cap on waiting subscriptions.
 */
import assert from "node:assert/strict";
import { BusError, createBusService } from "../../src/services/mod.ts";
import { waitFor } from "../_helpers/wait.ts";

Deno.test("bus: publish and read in order, the kept window, per principal", async () => {
  using kv = await Deno.openKv(":memory:");
  const bus = createBusService(kv, { limits: { maxRetained: 3 } });
  for (let i = 1; i <= 5; i++) {
    const p = await bus.publish("alice", "builds", { n: i });
    assert.equal(p.seq, i);
  }
  const all = await bus.subscribe("alice", { topic: "builds", afterSeq: 0 });
  assert.deepEqual(all.messages.map((m) => [m.seq, m.message]), [
    [3, { n: 3 }],
    [4, { n: 4 }],
    [5, { n: 5 }],
  ]);
  assert.equal(all.missed, 2, "two messages fell out of the window of 3");
  assert.equal(all.next_after_seq, 5);
  assert.equal(all.head, 5);
  const some = await bus.subscribe("alice", { topic: "builds", afterSeq: 3, limit: 1 });
  assert.deepEqual(some.messages.map((m) => m.seq), [4]);
  // No cursor: only what is published from now on.
  const fresh = await bus.subscribe("alice", { topic: "builds" });
  assert.deepEqual(fresh.messages, []);
  assert.equal(fresh.next_after_seq, 5);
  assert.equal(fresh.waited, false);
  // Bob's topic of the same name is another topic.
  const bobs = await bus.subscribe("bob", { topic: "builds", afterSeq: 0 });
  assert.deepEqual(bobs.messages, []);
  assert.equal(bobs.head, 0);
  assert.equal((await bus.publish("bob", "builds", "x")).seq, 1);
});

Deno.test("bus: bad topics, oversize messages and the topic cap are refused", async () => {
  using kv = await Deno.openKv(":memory:");
  const bus = createBusService(kv, { limits: { maxMessageBytes: 64, maxTopicsPerPrincipal: 2 } });
  await assert.rejects(bus.publish("a", "../x", 1), /Cannot use topic/);
  await assert.rejects(bus.publish("a", "", 1), /Cannot use topic/);
  await assert.rejects(
    bus.publish("a", "t", "y".repeat(100)),
    (e) => e instanceof BusError && e.code === "too_large" && /102 bytes/.test(e.message),
  );
  await bus.publish("a", "t1", 1);
  await bus.publish("a", "t2", 1);
  await bus.publish("a", "t1", 2); // an existing topic is fine
  await assert.rejects(
    bus.publish("a", "t3", 1),
    (e) => e instanceof BusError && e.code === "full",
  );
  await bus.publish("b", "t3", 1); // another principal has its own cap
});

Deno.test("bus: a waiting subscriber is woken by a publish from another KV connection", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/bus.kv`;
  const kvA = await Deno.openKv(path);
  const kvB = await Deno.openKv(path);
  try {
    const a = createBusService(kvA);
    const b = createBusService(kvB);
    const seen: number[] = [];
    const started = performance.now();
    const waiting = a.subscribe("alice", {
      topic: "jobs",
      waitMs: 10_000,
      onMessage: (m) => {
        seen.push(m.seq);
      },
    });
    await waitFor(() => a.waiting === 1, "the subscriber waits");
    assert.equal(a.waiting, 1);
    await b.publish("alice", "jobs", { job: 1 });
    const got = await waiting;
    const elapsed = performance.now() - started;
    assert.deepEqual(got.messages.map((m) => m.message), [{ job: 1 }]);
    assert.deepEqual(seen, [1]);
    assert.equal(got.waited, true);
    assert.ok(elapsed < 5000, `woken by the publish, not the timeout (${elapsed} ms)`);
    assert.equal(a.waiting, 0);

    // Nothing published: the wait ends at its time with no messages.
    const t0 = performance.now();
    const empty = await a.subscribe("alice", { topic: "jobs", waitMs: 300 });
    assert.deepEqual(empty.messages, []);
    assert.ok(performance.now() - t0 >= 280);

    // An aborted call stops waiting at once.
    const ac = new AbortController();
    const t1 = performance.now();
    const aborted = a.subscribe("alice", { topic: "jobs", waitMs: 10_000, signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    assert.deepEqual((await aborted).messages, []);
    assert.ok(performance.now() - t1 < 3000);
  } finally {
    kvA.close();
    kvB.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bus: waiting subscriptions are capped per principal", async () => {
  using kv = await Deno.openKv(":memory:");
  const bus = createBusService(kv, { limits: { maxWaitingPerPrincipal: 1 } });
  const first = bus.subscribe("alice", { topic: "t", waitMs: 5000 });
  await waitFor(() => bus.waiting === 1, "the first subscriber waits");
  await assert.rejects(
    bus.subscribe("alice", { topic: "t", waitMs: 5000 }),
    (e) => e instanceof BusError && e.code === "busy",
  );
  // Reading without waiting is not limited, nor is another principal.
  await bus.subscribe("alice", { topic: "t" });
  const other = bus.subscribe("bob", { topic: "t", waitMs: 100 });
  await bus.publish("alice", "t", "done");
  assert.equal((await first).messages.length, 1);
  assert.equal((await other).messages.length, 0);
});

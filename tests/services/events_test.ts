/**
 * The instances' event bus (issue 15 §4): an event one instance publishes reaches every other
 * instance sharing the KV, in order, and never comes back to the one that published it; an
 * instance that missed events (they fell out of the kept window) is told to resync instead of
 * being handed a hole. Two buses over one KV file, each its own KV handle, as two processes are.
 */
import assert from "node:assert/strict";
import { openEventBus } from "../../src/services/mod.ts";
import type { InstanceEvent } from "../../src/services/mod.ts";

function collect(bus: Awaited<ReturnType<typeof openEventBus>>, n: number) {
  const seen: InstanceEvent[] = [];
  const { promise, resolve } = Promise.withResolvers<InstanceEvent[]>();
  bus.on((e) => {
    seen.push(e);
    if (seen.length === n) resolve(seen);
  });
  const timer = setTimeout(() => resolve(seen), 5_000);
  return promise.finally(() => clearTimeout(timer));
}

Deno.test("events reach the other instance in order, never their publisher; a hole is a resync", async () => {
  const dir = await Deno.makeTempDir();
  const kvA = await Deno.openKv(`${dir}/events.db`);
  const kvB = await Deno.openKv(`${dir}/events.db`);
  const a = await openEventBus(kvA, { origin: "a" });
  const b = await openEventBus(kvB, { origin: "b" });
  try {
    const atB = collect(b, 3);
    const atA: InstanceEvent[] = [];
    a.on((e) => atA.push(e));
    for (const name of ["one", "two", "three"]) await a.publish("upstream", { name });
    const got = await atB;
    assert.deepEqual(got.map((e) => [e.type, e.data.name, e.origin]), [
      ["upstream", "one", "a"],
      ["upstream", "two", "a"],
      ["upstream", "three", "a"],
    ]);
    assert.deepEqual(got.map((e) => e.seq), [1, 2, 3]);
    // And back the other way; A never saw its own three.
    const back = collect(a, 1);
    await b.publish("upstream", { name: "four" });
    assert.deepEqual((await back).map((e) => e.data.name), ["four"]);
    assert.equal(atA.length, 1);
    assert.equal(b.received, 3);

    // Events 5..9 are gone (as when they fell out of the window): B is told to reread, once.
    const hole = collect(b, 1);
    await kvA.set(["instance_events", "head"], { seq: 9 });
    assert.deepEqual((await hole).map((e) => e.type), ["resync"]);
    // And carries on from there.
    const after = collect(b, 1);
    await a.publish("upstream", { name: "ten" });
    assert.deepEqual((await after).map((e) => [e.data.name, e.seq]), [["ten", 10]]);

    await assert.rejects(() => a.publish("resync", {}), /not a valid event type/);
    await assert.rejects(
      () => a.publish("upstream", { pad: "x".repeat(5000) }),
      /at most 4096 bytes/,
    );
  } finally {
    await a.close();
    await b.close();
    kvA.close();
    kvB.close();
    await Deno.remove(dir, { recursive: true });
  }
});

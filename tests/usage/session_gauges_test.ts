/**
 * check_vital counts sessions from the instances' published gauges, not by
 * scanning every stored session record: two instances on one KV report each
 * other's live sessions, and idle stored records cost nothing.
 */
import assert from "node:assert/strict";
import { createSessionGauges } from "../../src/usage/mod.ts";
import { connectStreamable, envelopeOf } from "../_helpers/client.ts";
import { startServer } from "../_helpers/server.ts";

Deno.test("session gauges: a figure older than the window drops out", async () => {
  const kv = await Deno.openKv(":memory:");
  let now = 1_000_000;
  const a = createSessionGauges(kv, { instanceId: "a", staleMs: 10_000, now: () => now });
  const b = createSessionGauges(kv, { instanceId: "b", staleMs: 10_000, now: () => now });
  await a.publish({ streamable: 2, sse: 1 });
  now += 6_000;
  await b.publish({ streamable: 4, sse: 0 });
  assert.deepEqual(await a.total(), { live_all_instances: 7, instances: 2 });
  now += 5_000; // a's figure is now 11 s old
  assert.deepEqual(await b.total(), { live_all_instances: 4, instances: 1 });
  kv.close();
});

Deno.test("check_vital: live sessions summed over two instances on one KV; stored idle records are not scanned", async () => {
  const kv = await Deno.openKv(":memory:");
  const a = await startServer({ kv });
  const b = await startServer({ kv });
  const clients = [];
  try {
    clients.push((await connectStreamable(a.url)).client, (await connectStreamable(a.url)).client);
    clients.push((await connectStreamable(b.url)).client);
    // Many stored records no instance is serving (as after a restart): not live, not counted.
    const now = Date.now();
    await Promise.all(Array.from({ length: 300 }, (_, i) =>
      a.app.sessions.create({
        id: `idle-${i}`,
        transport: "streamable-http",
        protocolVersion: "2025-11-25",
        clientInfo: { name: "idle" },
        capabilities: {},
        initializeParams: {},
        principal: "anonymous",
        stage: "000",
        createdAt: new Date(now).toISOString(),
        lastSeenMs: now,
      })));
    // b publishes on its own schedule; its check_vital publishes its current figure first.
    await clients[2].callTool({ name: "check_vital", arguments: {} });
    const vital = envelopeOf(await clients[0].callTool({ name: "check_vital", arguments: {} }));
    assert.equal(vital.data.sessions.live_streamable, 2);
    assert.equal(vital.data.sessions.live_all_instances, 3, JSON.stringify(vital.data.sessions));
    assert.equal(vital.data.sessions.instances, 2);
    assert.equal(vital.data.sessions.stored, undefined, "no scan of stored records");
  } finally {
    for (const c of clients) await c.close();
    await a.close();
    await b.close();
    kv.close();
  }
});

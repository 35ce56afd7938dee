// deno-lint-ignore-file no-explicit-any -- envelopes and notifications are probed field by field
/**
 * The bus tools through two real servers sharing one KV (two instances, each with its own bus
 * service; tests/services/bus_test.ts wakes a subscriber across two connections to one file):
 * a v1 SDK client's bus_subscribe on instance A waits, a REST bus_publish on
 * instance B wakes it, the message streams to the client as a
 * notifications/message on the call's SSE stream before the result carries it;
 * another principal (a 2026-07-28 client) sees nothing of the topic; the vault
 * records the message's digest, never the message.
 */
import assert from "node:assert/strict";
import { createToken } from "../../src/identity/mod.ts";
import { digestJson } from "../../src/lib/mod.ts";
import { connectModernAs, connectV1As } from "../_helpers/client.ts";
import { startServer } from "../_helpers/server.ts";

const POLICY = {
  rate_limits: { per_principal_per_minute: 0, per_ip_per_minute: 0 },
  store_bodies: true,
};

Deno.test({
  name: "bus tools: a subscription on one instance is woken by a publish on another and streams",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const kv = await Deno.openKv(":memory:");
    const a = await startServer({ kv, policy: POLICY });
    const b = await startServer({ kv, policy: POLICY });
    try {
      const alice = await createToken(kv, { name: "alice" });
      const bob = await createToken(kv, { name: "bob" });
      const client: any = await connectV1As(a.url, alice.secret, "bus-v1");
      const modern: any = await connectModernAs(a.url, bob.secret, "bus-v2");
      const streamed: any[] = [];
      let resolvedAt = -1;
      client.fallbackNotificationHandler = (n: any) => {
        if (n.method === "notifications/message" && n.params?.data?.bus) {
          streamed.push({ ...n.params.data.bus, beforeResult: resolvedAt < 0 });
        }
        return Promise.resolve();
      };
      try {
        // Letters only: a random UUID's digit groups sometimes pass as a card number (F6).
        const marker = `bus-marker-${
          Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) =>
            String.fromCharCode(97 + (b % 26))).join("")
        }`;
        const started = performance.now();
        const pending = client.callTool({
          name: "bus_subscribe",
          arguments: { topic: "deploys", wait_s: 10 },
        }).then((r: any) => {
          resolvedAt = performance.now();
          return r;
        });
        await new Promise((r) => setTimeout(r, 300));
        const published = await fetch(`${b.url}/api/mcp/bus/publish`, {
          method: "POST",
          headers: { authorization: `Bearer ${alice.secret}`, "content-type": "application/json" },
          body: JSON.stringify({ topic: "deploys", message: { marker, ok: true } }),
        }).then((r) => r.json());
        assert.equal(published.tool, "bus_publish", JSON.stringify(published));
        assert.equal(published.data.seq, 1);

        const result = await pending;
        assert.notEqual(result.isError, true, JSON.stringify(result));
        assert.ok(resolvedAt - started < 5000, "woken by the publish, not the 10 s wait");
        const data = result.structuredContent.data;
        assert.deepEqual(data.messages.map((m: any) => [m.seq, m.message]), [
          [1, { marker, ok: true }],
        ]);
        assert.equal(data.next_after_seq, 1);
        assert.equal(data.waited, true);
        assert.deepEqual(streamed.map((m) => [m.topic, m.seq, m.message.marker, m.beforeResult]), [
          ["deploys", 1, marker, true],
        ]);

        // Continuing from the cursor returns at once when something is there.
        await fetch(`${b.url}/api/mcp/bus/publish`, {
          method: "POST",
          headers: { authorization: `Bearer ${alice.secret}`, "content-type": "application/json" },
          body: JSON.stringify({ topic: "deploys", message: 2 }),
        }).then((r) => r.body?.cancel());
        const next = await client.callTool({
          name: "bus_subscribe",
          arguments: { topic: "deploys", after_seq: 1, wait_s: 0 },
        });
        assert.deepEqual(next.structuredContent.data.messages.map((m: any) => m.message), [2]);

        // Bob's "deploys" is his own, empty topic.
        const theirs = await modern.callTool({
          name: "bus_subscribe",
          arguments: { topic: "deploys", after_seq: 0, wait_s: 0 },
        });
        assert.deepEqual(theirs.structuredContent.data.messages, []);

        const bad = await client.callTool({
          name: "bus_publish",
          arguments: { topic: "no spaces", message: 1 },
        });
        assert.equal(bad.isError, true);

        // The vault has the message's digest; the message is in no entry.
        const head = await a.app.ledger.head();
        let sealedDigest = false;
        for (let i = 0; i < head.size; i++) {
          const raw = new TextDecoder().decode((await a.app.ledger.entry(i))!.bytes);
          assert.ok(!raw.includes(marker), `entry ${i} holds the message`);
          if (raw.includes(digestJson({ marker, ok: true }))) sealedDigest = true;
        }
        assert.ok(sealedDigest, "the publish and the read are sealed by digest");
      } finally {
        await client.close();
        await modern.close();
      }
    } finally {
      await a.close();
      await b.close();
      kv.close();
    }
  },
});

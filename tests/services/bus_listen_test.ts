// deno-lint-ignore-file no-explicit-any -- notifications are probed field by field
/**
 * Bus topics on the 2026-07-28 `subscriptions/listen` stream (issue 15 §4): a listen naming
 * `warden://bus/<topic>` in `resourceSubscriptions` is acknowledged with it, and each message
 * published to the caller's own topic — at another process on the same KV file — arrives on that
 * stream as `notifications/resources/updated` of the URI with the message in
 * `_meta["warden/bus"]`. Another principal listening to the same URI hears only its own topic.
 * Bounded: bus streams per principal and topics per stream are refused before the ack, a bad
 * topic name is refused, and an idle stream ends gracefully (the client listens again).
 */
import assert from "node:assert/strict";
import { createToken } from "../../src/identity/mod.ts";
import { connectModernAs } from "../_helpers/client.ts";
import { spawnServer, startServer } from "../_helpers/server.ts";

const POLICY = { rate_limits: { per_principal_per_minute: 0, per_ip_per_minute: 0 } };

function publish(url: string, secret: string, topic: string, message: unknown) {
  return fetch(`${url}/api/mcp/bus/publish`, {
    method: "POST",
    headers: { authorization: `Bearer ${secret}`, "content-type": "application/json" },
    body: JSON.stringify({ topic, message }),
  }).then(async (r) => {
    const body = await r.json();
    assert.equal(r.status, 200, JSON.stringify(body));
    return body;
  });
}

/** Collects a client's bus notifications; `next(n)` waits until n have come (10 s at most). */
function hear(client: any) {
  const heard: any[] = [];
  let wake: (() => void) | undefined;
  client.setNotificationHandler("notifications/resources/updated", (n: any) => {
    heard.push(n.params);
    wake?.();
  });
  return {
    heard,
    async next(n: number) {
      const until = Date.now() + 10_000;
      while (heard.length < n && Date.now() < until) {
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 100);
        });
      }
      assert.ok(heard.length >= n, `heard ${heard.length} of ${n}: ${JSON.stringify(heard)}`);
    },
  };
}

Deno.test({
  name: "a listen stream at process B carries its principal's bus messages published at process A",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    const file = `${dir}/shared.db`;
    const kv = await Deno.openKv(file);
    const alice = await createToken(kv, { name: "alice" });
    const bob = await createToken(kv, { name: "bob" });
    kv.close();
    await Deno.writeTextFile(`${dir}/policy.json`, JSON.stringify(POLICY));
    const common = ["--kv", file, "--policy", `${dir}/policy.json`];
    const a = await spawnServer(common);
    const b = await spawnServer(common);
    const ma: any = await connectModernAs(b.url, alice.secret, "alice-listener");
    const mb: any = await connectModernAs(b.url, bob.secret, "bob-listener");
    try {
      assert.equal(ma.getServerCapabilities()?.resources?.subscribe, true);
      const atAlice = hear(ma);
      const atBob = hear(mb);
      const builds = "warden://bus/builds";
      const sa = await ma.listen({
        toolsListChanged: true,
        resourceSubscriptions: [builds, "warden://bus/ci/deploys"],
      });
      assert.deepEqual(sa.honoredFilter.resourceSubscriptions, [builds, "warden://bus/ci/deploys"]);
      assert.equal(sa.honoredFilter.toolsListChanged, true);
      const sb = await mb.listen({ resourceSubscriptions: [builds] });
      assert.deepEqual(sb.honoredFilter.resourceSubscriptions, [builds]);

      // Alice publishes at A: her stream at B hears it, in order per topic, with the message.
      const p1 = await publish(a.url, alice.secret, "builds", { build: 1, ok: true });
      await publish(a.url, alice.secret, "ci/deploys", { env: "prod" });
      await publish(a.url, alice.secret, "builds", { build: 2, ok: false });
      await atAlice.next(3);
      const byTopic = (uri: string) =>
        atAlice.heard.filter((p) => p.uri === uri).map((
          p,
        ) => [p.uri, p._meta["warden/bus"].seq, p._meta["warden/bus"].message]);
      assert.deepEqual(
        [...byTopic(builds), ...byTopic("warden://bus/ci/deploys")],
        [
          [builds, 1, { build: 1, ok: true }],
          [builds, 2, { build: 2, ok: false }],
          ["warden://bus/ci/deploys", 1, { env: "prod" }],
        ],
      );
      const first = atAlice.heard.find((p) => p.uri === builds)._meta["warden/bus"];
      assert.equal(first.topic, "builds");
      assert.equal(first.sha256, p1.data.sha256);
      assert.equal(first.missed, 0);
      // Stamped with the stream's subscription id, like every notification on it.
      assert.ok(atAlice.heard[0]._meta["io.modelcontextprotocol/subscriptionId"] !== undefined);

      // Bob's "builds" is his own: he heard none of Alice's, and she hears none of his.
      await publish(a.url, bob.secret, "builds", { mine: "bob" });
      await atBob.next(1);
      assert.deepEqual(atBob.heard.map((p) => p._meta["warden/bus"].message), [{ mine: "bob" }]);
      // Wall time on purpose: nothing more arrives while the streams stay open a while.
      await new Promise((r) => setTimeout(r, 700));
      assert.equal(atAlice.heard.length, 3, JSON.stringify(atAlice.heard));
      assert.equal(atBob.heard.length, 1, JSON.stringify(atBob.heard));
      await sa.close();
      await sb.close();

      // bus_subscribe waiting at B is woken by a publish at A too (before, a watch on a local
      // file never saw the other process's write and the call waited its whole wait_s).
      const started = performance.now();
      const waiting = fetch(`${b.url}/api/mcp/bus/subscribe`, {
        method: "POST",
        headers: { authorization: `Bearer ${alice.secret}`, "content-type": "application/json" },
        body: JSON.stringify({ topic: "builds", wait_s: 15 }),
      }).then((r) => r.json());
      await new Promise((r) => setTimeout(r, 300));
      await publish(a.url, alice.secret, "builds", { build: 3 });
      const got = await waiting;
      assert.deepEqual(got.data.messages.map((m: any) => m.message), [{ build: 3 }]);
      assert.ok(
        performance.now() - started < 5_000,
        `woken after ${performance.now() - started} ms`,
      );
    } finally {
      await ma.close().catch(() => {});
      await mb.close().catch(() => {});
      await a.stop();
      await b.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "bus listen streams are bounded: per principal, topics per stream, names, idle time",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const kv = await Deno.openKv(":memory:");
    await using server = await startServer({ kv, policy: POLICY, busListen: { idleMs: 400 } });
    const alice = await createToken(kv, { name: "alice" });
    const clients: any[] = [];
    try {
      const open: any[] = [];
      for (let i = 0; i < 4; i++) {
        const c = await connectModernAs(server.url, alice.secret, `a${i}`);
        clients.push(c);
        // Kept busy: each publish re-arms its idle timer.
        open.push(await (c as any).listen({ resourceSubscriptions: [`warden://bus/t${i}`] }));
      }
      const extra: any = await connectModernAs(server.url, alice.secret, "a-extra");
      clients.push(extra);
      await assert.rejects(
        extra.listen({ resourceSubscriptions: ["warden://bus/t9"] }),
        /this principal already has 4 bus streams open/,
      );
      // A stream without bus topics is not counted.
      const plain = await extra.listen({ toolsListChanged: true });
      assert.equal(plain.honoredFilter.toolsListChanged, true);
      await plain.close();
      await open.pop().close();
      const eleven = Array.from({ length: 11 }, (_, i) => `warden://bus/m${i}`);
      await assert.rejects(
        extra.listen({ resourceSubscriptions: eleven }),
        /Cannot follow 11 topics on one stream: at most 10/,
      );
      await assert.rejects(
        extra.listen({ resourceSubscriptions: ["warden://bus/../etc"] }),
        /Cannot use topic/,
      );
      // Idle: a stream that delivered nothing for 400 ms ends with the listen result.
      const idle = await extra.listen({ resourceSubscriptions: ["warden://bus/quiet"] });
      const cause = await Promise.race([
        idle.closed,
        new Promise((r) => setTimeout(() => r("still open after 5 s"), 5_000)),
      ]);
      assert.equal(cause, "graceful");
      for (const s of open) await s.close();
    } finally {
      for (const c of clients) await c.close().catch(() => {});
      kv.close();
    }
  },
});

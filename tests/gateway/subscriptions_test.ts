// deno-lint-ignore-file no-explicit-any -- MCP results are probed field by field
/**
 * Resource templates and subscriptions pass through Warden, against a real
 * server-everything over Streamable HTTP:
 * - `resources/templates/list` (both eras) lists its templates in the
 *   `upstream://ev/` space, and a URI expanded from one reads back from ev;
 * - on a 2025 session `resources/subscribe` reaches ev, and ev's
 *   `notifications/resources/updated` (started by its toggle tool, called
 *   through Warden) reaches the subscribed session only, as the namespaced
 *   URI; one session holds at most MAX_SUBSCRIPTIONS_PER_SESSION;
 * - on 2026-07-28 a `subscriptions/listen` stream naming ev's resources in
 *   `resourceSubscriptions` is acknowledged only the ones its principal may
 *   read (not Warden's own, not an unknown upstream's), ev's update reaches
 *   each such stream once (two streams, one upstream subscription), a stream
 *   of a principal without grants is told nothing, and closing the streams
 *   releases the upstream subscription;
 * - a principal without grants of `ev__` sees no templates and cannot
 *   subscribe.
 */
import assert from "node:assert/strict";
// @ts-types="@modelcontextprotocol/sdk/types"
import { ResourceUpdatedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { MAX_SUBSCRIPTIONS_PER_SESSION } from "../../src/mcp/mod.ts";
import { createToken } from "../../src/identity/mod.ts";
import { connectModernAs, connectV1As } from "../_helpers/client.ts";
import { withEverything } from "../_helpers/upstreams.ts";

const POLICY = {
  roles: { ops: { tools: ["ev__*"] }, dev: { tools: ["get_time"] } },
  rate_limits: { per_principal_per_minute: 0, per_ip_per_minute: 0 },
};
const TEMPLATE = "upstream://ev/demo://resource/dynamic/text/{resourceId}";

Deno.test({
  name: "subscriptions: upstream templates and resource subscriptions through Warden",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withEverything({
      policy: POLICY,
    }, async (server) => {
      const alice = await createToken(server.kv, { name: "alice", roles: ["ops"] });
      const bob = await createToken(server.kv, { name: "bob", roles: ["dev"] });

      // Templates, both eras: namespaced, and an expanded URI reads back from ev.
      for (const connect of [connectV1As, connectModernAs]) {
        const c: any = await connect(server.url, alice.secret);
        try {
          const templates = (await c.listResourceTemplates()).resourceTemplates as any[];
          const t = templates.find((x) => x.uriTemplate === TEMPLATE);
          assert.ok(t, JSON.stringify(templates).slice(0, 400));
          const uri = TEMPLATE.replace("{resourceId}", "7");
          const read = await c.readResource({ uri });
          assert.equal(read.contents[0].uri, uri);
          assert.match(read.contents[0].text, /7/);
        } finally {
          await c.close();
        }
      }
      const b: any = await connectV1As(server.url, bob.secret);
      const noTemplates = (await b.listResourceTemplates()).resourceTemplates as any[];
      assert.ok(!noTemplates.some((x) => x.uriTemplate.startsWith("upstream://")));

      // Subscriptions on 2025 sessions.
      const a: any = await connectV1As(server.url, alice.secret);
      const other: any = await connectV1As(server.url, alice.secret);
      try {
        assert.equal(a.getServerCapabilities()?.resources?.subscribe, true);
        const doc = (await a.listResources()).resources.map((r: any) => r.uri).find((u: string) =>
          u.startsWith("upstream://ev/demo://resource/static/")
        );
        assert.ok(doc);
        await assert.rejects(b.subscribeResource({ uri: doc }), /not found/);
        const seen: string[] = [];
        const otherSeen: string[] = [];
        const got = Promise.withResolvers<void>();
        a.setNotificationHandler(ResourceUpdatedNotificationSchema, (n: any) => {
          seen.push(n.params.uri);
          got.resolve();
        });
        other.setNotificationHandler(ResourceUpdatedNotificationSchema, (n: any) => {
          otherSeen.push(n.params.uri);
        });
        // Open each session's GET stream (notifications outside a request travel on it).
        await a.listTools();
        await other.listTools();
        await a.subscribeResource({ uri: doc });
        await a.subscribeResource({ uri: doc }); // idempotent
        // ev starts sending updates for its (Warden's) session's subscriptions at once.
        const toggled = await a.callTool({ name: "ev__toggle-subscriber-updates", arguments: {} });
        assert.match(toggled.content[0].text, /Started/, JSON.stringify(toggled));
        const timer = setTimeout(() => got.reject(new Error("no resources/updated in 8 s")), 8_000);
        await got.promise.finally(() => clearTimeout(timer));
        assert.equal(seen[0], doc, "relayed as the namespaced URI");
        await new Promise((r) => setTimeout(r, 300));
        assert.deepEqual(otherSeen, [], "a session that did not subscribe is not told");
        await a.unsubscribeResource({ uri: doc });

        // The per-session cap.
        for (let i = 0; i < MAX_SUBSCRIPTIONS_PER_SESSION; i++) {
          await other.subscribeResource({ uri: TEMPLATE.replace("{resourceId}", String(i + 1)) });
        }
        await assert.rejects(
          other.subscribeResource({ uri: TEMPLATE.replace("{resourceId}", "999") }),
          new RegExp(`${MAX_SUBSCRIPTIONS_PER_SESSION} upstream resources`),
        );
        // Warden's own resources cannot be subscribed to.
        await assert.rejects(a.subscribeResource({ uri: "warden://vault/checkpoint" }), /cannot/);
        await a.callTool({ name: "ev__toggle-subscriber-updates", arguments: {} });
        await other.transport.terminateSession();
        await other.close();
        assert.equal(server.app.upstreamSubscriptions.size, 0, "an ended session lets go");

        // 2026-07-28: subscriptions/listen with resourceSubscriptions.
        const m1: any = await connectModernAs(server.url, alice.secret);
        const m2: any = await connectModernAs(server.url, alice.secret);
        const mb: any = await connectModernAs(server.url, bob.secret);
        try {
          assert.equal(m1.getServerCapabilities()?.resources?.subscribe, true);
          const heard = { m1: [] as string[], m2: [] as string[], mb: [] as string[] };
          const both = [Promise.withResolvers<void>(), Promise.withResolvers<void>()];
          for (const [c, key, i] of [[m1, "m1", 0], [m2, "m2", 1], [mb, "mb", -1]] as const) {
            c.setNotificationHandler("notifications/resources/updated", (n: any) => {
              heard[key].push(n.params.uri);
              if (i >= 0) both[i].resolve();
            });
          }
          const s1 = await m1.listen({
            resourceSubscriptions: [doc, "warden://vault/checkpoint", "upstream://nobody/x://y"],
          });
          assert.deepEqual(s1.honoredFilter.resourceSubscriptions, [doc]);
          const s2 = await m2.listen({ resourceSubscriptions: [doc] });
          assert.deepEqual(s2.honoredFilter.resourceSubscriptions, [doc]);
          assert.equal(server.app.upstreamSubscriptions.size, 1, "one upstream subscription");
          const sb = await mb.listen({ toolsListChanged: true, resourceSubscriptions: [doc] });
          assert.equal(sb.honoredFilter.resourceSubscriptions, undefined, "bob may not read ev");
          assert.equal(sb.honoredFilter.toolsListChanged, true);
          const started = await m1.callTool({
            name: "ev__toggle-subscriber-updates",
            arguments: {},
          });
          assert.match(started.content[0].text, /Started/, JSON.stringify(started));
          const timer = setTimeout(() => {
            for (const p of both) p.reject(new Error("no 2026 resources/updated in 8 s"));
          }, 8_000);
          await Promise.all(both.map((p) => p.promise)).finally(() => clearTimeout(timer));
          // ev repeats its update every 5 s: within 300 ms each stream has heard it once.
          await new Promise((r) => setTimeout(r, 300));
          assert.deepEqual(heard.m1, [doc]);
          assert.deepEqual(heard.m2, [doc]);
          assert.deepEqual(heard.mb, [], "a stream whose principal may not read ev is not told");
          await m1.callTool({ name: "ev__toggle-subscriber-updates", arguments: {} });
          await s1.close();
          await s2.close();
          await sb.close();
          const until = Date.now() + 5_000;
          while (server.app.upstreamSubscriptions.size > 0 && Date.now() < until) {
            await new Promise((r) => setTimeout(r, 20));
          }
          assert.equal(server.app.upstreamSubscriptions.size, 0, "closed streams let go");
        } finally {
          await m1.close();
          await m2.close();
          await mb.close();
        }
      } finally {
        await a.close();
        await other.close();
        await b.close();
      }
    });
  },
});

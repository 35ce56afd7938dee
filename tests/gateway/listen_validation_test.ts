// deno-lint-ignore-file no-explicit-any -- JSON-RPC answers are probed field by field
/**
 * A 2026-07-28 `subscriptions/listen` request the SDK refuses opens nothing
 * upstream: its `resourceSubscriptions` are subscribed only once the SDK has
 * accepted the request (before, Warden subscribed first and unsubscribed when
 * the SDK's refusal came back, so every malformed listen cost the upstream a
 * subscribe and an unsubscribe). A valid listen still subscribes, and its end
 * unsubscribes. The upstream is a small raw JSON-RPC server on loopback that
 * records the subscriptions it is asked for (server-everything does not say).
 */
import assert from "node:assert/strict";
import { parseUpstreams } from "../../src/gateway/mod.ts";
import { createToken } from "../../src/identity/mod.ts";
import { openListen } from "../_helpers/raw.ts";
import { startServer } from "../_helpers/server.ts";

const RESOURCE = "rec://a";
const NAMESPACED = `upstream://rec/${RESOURCE}`;

function recordingUpstream(seen: string[]): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
    if (req.method !== "POST") return new Response(null, { status: 405 });
    const msg = await req.json();
    if (msg.id === undefined) return new Response(null, { status: 202 });
    const answer = (result: unknown) => Response.json({ jsonrpc: "2.0", id: msg.id, result });
    switch (msg.method) {
      case "initialize":
        return answer({
          protocolVersion: msg.params.protocolVersion,
          capabilities: { tools: {}, resources: { subscribe: true } },
          serverInfo: { name: "rec", version: "1.0.0" },
        });
      case "tools/list":
        return answer({ tools: [] });
      case "resources/list":
        return answer({ resources: [{ uri: RESOURCE, name: "a" }] });
      case "resources/subscribe":
      case "resources/unsubscribe":
        seen.push(`${msg.method} ${msg.params.uri}`);
        return answer({});
      default:
        return Response.json({
          jsonrpc: "2.0",
          id: msg.id,
          error: { code: -32601, message: `Method not found: ${msg.method}` },
        });
    }
  });
}

function listen(
  base: string,
  secret: string,
  notifications: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<Response> {
  return openListen(base, notifications, {
    headers: { authorization: `Bearer ${secret}`, ...headers },
  });
}

Deno.test({
  name: "subscriptions/listen: a request the SDK refuses subscribes nothing upstream",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const seen: string[] = [];
    const up = recordingUpstream(seen);
    const server = await startServer({
      policy: {
        roles: { ops: { tools: ["rec__*"] } },
        rate_limits: { per_principal_per_minute: 0, per_ip_per_minute: 0 },
      },
      upstreams: parseUpstreams(JSON.stringify([{
        name: "rec",
        transport: "streamable-http",
        url: `http://127.0.0.1:${up.addr.port}/mcp`,
      }])),
    });
    try {
      const alice = await createToken(server.kv, { name: "alice", roles: ["ops"] });
      const refused: [string, Record<string, unknown>, Record<string, string>][] = [
        // A filter the SDK's schema refuses (-32602).
        ["bad filter", { resourceSubscriptions: [NAMESPACED], toolsListChanged: "yes" }, {}],
        // A header that contradicts the body (400).
        ["method header", { resourceSubscriptions: [NAMESPACED] }, { "mcp-method": "tools/list" }],
      ];
      for (const [label, filter, headers] of refused) {
        const res = await listen(server.url, alice.secret, filter, headers);
        const body: any = await res.json();
        assert.ok(body.error, `${label}: ${JSON.stringify(body)}`);
        assert.ok(!res.headers.get("content-type")?.includes("event-stream"), label);
        assert.deepEqual(seen, [], `${label}: the upstream was asked for nothing`);
        assert.equal(server.app.upstreamSubscriptions.size, 0, label);
      }

      // A valid listen subscribes upstream, and its end unsubscribes.
      const ok = await listen(server.url, alice.secret, { resourceSubscriptions: [NAMESPACED] });
      assert.match(ok.headers.get("content-type") ?? "", /event-stream/);
      const reader = ok.body!.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      while (!text.includes("subscriptions/acknowledged")) {
        const { value, done } = await reader.read();
        if (done) break;
        text += value;
      }
      assert.match(text, new RegExp(NAMESPACED.replaceAll("/", "\\/")), text);
      assert.deepEqual(seen, [`resources/subscribe ${RESOURCE}`]);
      await reader.cancel();
      const until = Date.now() + 5_000;
      while (seen.length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(seen, [
        `resources/subscribe ${RESOURCE}`,
        `resources/unsubscribe ${RESOURCE}`,
      ]);
    } finally {
      await server.close();
      await up.shutdown();
    }
  },
});

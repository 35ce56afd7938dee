// deno-lint-ignore-file no-explicit-any -- results are probed field by field
/**
 * An upstream's tools/call answer is network input: one that is not a
 * CallToolResult (here `content` a string) is refused as the upstream's fault,
 * never relayed, while a well-formed one from the same upstream passes. The
 * upstream is a small raw JSON-RPC server on loopback (2025-11-25, JSON
 * answers) that misbehaves on purpose, which no npm server does.
 */
import assert from "node:assert/strict";
import { parseUpstreams } from "../../src/gateway/mod.ts";
import { connectStreamable } from "../_helpers/client.ts";
import { startServer } from "../_helpers/server.ts";

function badUpstream(): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
    if (req.method !== "POST") return new Response(null, { status: 405 });
    const msg = await req.json();
    if (msg.id === undefined) return new Response(null, { status: 202 });
    const answer = (result: unknown) => Response.json({ jsonrpc: "2.0", id: msg.id, result });
    switch (msg.method) {
      case "initialize":
        return answer({
          protocolVersion: msg.params.protocolVersion,
          capabilities: { tools: {} },
          serverInfo: { name: "bad", version: "1.0.0" },
        });
      case "tools/list":
        return answer({
          tools: ["bad", "good"].map((name) => ({
            name,
            description: `answers a ${name} result`,
            inputSchema: { type: "object" },
            annotations: { readOnlyHint: true, openWorldHint: false },
          })),
        });
      case "tools/call":
        return answer(
          msg.params.name === "bad"
            ? { content: "not a list of blocks" }
            : { content: [{ type: "text", text: "fine" }] },
        );
      default:
        return Response.json({
          jsonrpc: "2.0",
          id: msg.id,
          error: { code: -32601, message: `Method not found: ${msg.method}` },
        });
    }
  });
}

Deno.test({
  name: "gateway: an upstream's malformed tools/call result is refused, a good one relayed",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const up = badUpstream();
    const server = await startServer({
      upstreams: parseUpstreams(JSON.stringify([{
        name: "bad",
        transport: "streamable-http",
        url: `http://127.0.0.1:${up.addr.port}/mcp`,
      }])),
    });
    const { client } = await connectStreamable(server.url);
    try {
      const good: any = await client.callTool({ name: "bad__good", arguments: {} });
      assert.equal(good.content[0].text, "fine", JSON.stringify(good));
      const bad: any = await client.callTool({ name: "bad__bad", arguments: {} });
      assert.equal(bad.isError, true, JSON.stringify(bad));
      const text = JSON.stringify(bad);
      assert.match(text, /upstream bad failed: .*Invalid result for tools\/call/);
      assert.ok(!text.includes("not a list of blocks"), "the malformed answer is not relayed");
    } finally {
      await client.close();
      await server.close();
      await up.shutdown();
    }
  },
});

// deno-lint-ignore-file no-explicit-any -- results are probed field by field
/**
 * An upstream's tools/call answer is network input: one that is not a
 * CallToolResult (here `content` a string) is refused as the upstream's fault,
 * never relayed, while a well-formed one from the same upstream passes. So is
 * one whose `structuredContent` breaks the tool's pinned `outputSchema` (or
 * is missing): answered as a tool error (`isError`, sealed `invalid_output`),
 * which the SDK's own client accepts — relayed, the same client would throw
 * on it. The upstream is a small raw JSON-RPC server on loopback (2025-11-25,
 * JSON answers) that misbehaves on purpose, which no npm server does (an SDK
 * server checks its own output).
 */
import assert from "node:assert/strict";
import { parseUpstreams } from "../../src/gateway/mod.ts";
import { connectStreamable } from "../_helpers/client.ts";
import { sealedEntries, startServer } from "../_helpers/server.ts";

const COUNT_SCHEMA = {
  type: "object",
  properties: { count: { type: "number" } },
  required: ["count"],
};
/** Tools with an outputSchema, and what each answers. */
const SHAPED: Record<string, { outputSchema: unknown; result: unknown }> = {
  shaped: {
    outputSchema: COUNT_SCHEMA,
    result: { content: [{ type: "text", text: "3" }], structuredContent: { count: 3 } },
  },
  misshaped: {
    outputSchema: COUNT_SCHEMA,
    result: { content: [{ type: "text", text: "three" }], structuredContent: { count: "three" } },
  },
  unshaped: {
    outputSchema: COUNT_SCHEMA,
    result: { content: [{ type: "text", text: "no structured content" }] },
  },
  failing: {
    outputSchema: COUNT_SCHEMA,
    result: { content: [{ type: "text", text: "it failed" }], isError: true },
  },
  uncompilable: {
    outputSchema: { type: "object", properties: { s: { type: "string", pattern: "([" } } },
    result: { content: [], structuredContent: { s: "x" } },
  },
};

function badUpstream(called: string[] = []): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
    if (req.method !== "POST") return new Response(null, { status: 405 });
    const msg = await req.json();
    if (msg.method === "tools/call") called.push(msg.params.name);
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
          tools: ["bad", "good", ...Object.keys(SHAPED)].map((name) => ({
            name,
            description: `answers a ${name} result`,
            inputSchema: { type: "object" },
            ...(SHAPED[name] ? { outputSchema: SHAPED[name].outputSchema } : {}),
            annotations: { readOnlyHint: true, openWorldHint: false },
          })),
        });
      case "tools/call":
        return answer(
          SHAPED[msg.params.name]?.result ??
            (msg.params.name === "bad"
              ? { content: "not a list of blocks" }
              : { content: [{ type: "text", text: "fine" }] }),
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

Deno.test({
  name: "gateway: structuredContent that breaks the pinned outputSchema is a sealed tool error",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const called: string[] = [];
    const up = badUpstream(called);
    const url = `http://127.0.0.1:${up.addr.port}/mcp`;
    // The v1 SDK client refuses a whole listing with a schema it cannot compile, so the tool
    // whose schema does not compile is served by a second Warden, called over /invoke.
    const server = await startServer({
      upstreams: parseUpstreams(JSON.stringify([{
        name: "bad",
        transport: "streamable-http",
        url,
        tools: { deny: ["uncompilable"] },
      }])),
    });
    const odd = await startServer({
      upstreams: parseUpstreams(JSON.stringify([{
        name: "bad",
        transport: "streamable-http",
        url,
        tools: { allow: ["uncompilable"] },
      }])),
    });
    const invoke = async (base: string, tool: string) => {
      const res = await fetch(`${base}/invoke`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ tool, arguments: {} }),
      });
      return await res.json();
    };
    const { client } = await connectStreamable(server.url);
    try {
      // Listed first, so the SDK's client holds the output schemas and checks every result.
      const listed = (await client.listTools()).tools.find((t) => t.name === "bad__shaped");
      assert.deepEqual(listed?.outputSchema, COUNT_SCHEMA);
      const good: any = await client.callTool({ name: "bad__shaped", arguments: {} });
      assert.deepEqual(good.structuredContent, { count: 3 }, JSON.stringify(good));
      assert.notEqual(good.isError, true);

      for (
        const [tool, why] of [
          ["misshaped", /does not match its pinned outputSchema: .*count must be number/],
          ["unshaped", /does not match its pinned outputSchema: .*no structuredContent/],
        ] as const
      ) {
        // Relayed, the SDK's client would throw ("does not match the tool's output schema").
        const bad: any = await client.callTool({ name: `bad__${tool}`, arguments: {} });
        assert.equal(bad.isError, true, JSON.stringify(bad));
        const text = JSON.stringify(bad.content);
        assert.match(text, why);
        assert.ok(!JSON.stringify(bad).includes("three"), "the upstream's result is not relayed");
        // Warden's envelope cannot conform to the upstream's schema: it rides in _meta.
        assert.equal(bad.structuredContent, undefined);
        assert.equal(bad._meta?.["warden/governance"]?._schema?.tool, `bad__${tool}`);
      }
      // An upstream's own error result is not checked (nor is it by the SDK's client).
      const failing: any = await client.callTool({ name: "bad__failing", arguments: {} });
      assert.equal(failing.isError, true);
      assert.equal(failing.content[0].text, "it failed", JSON.stringify(failing));
      // A schema that does not compile is refused before anything is sent upstream.
      const uncompilable = await invoke(odd.url, "bad__uncompilable");
      assert.equal(uncompilable.ok, false, JSON.stringify(uncompilable));
      assert.match(uncompilable.message, /outputSchema does not compile/);
      assert.ok(!called.includes("uncompilable"), called.join());

      // /invoke says the same, and the vault records each call as invalid_output.
      const body = await invoke(server.url, "bad__misshaped");
      assert.equal(body.ok, false, JSON.stringify(body));
      assert.equal(body.error_kind, "invalid_output");
      assert.equal(body.result, undefined, "the upstream's result is not relayed");
      const sealed = await sealedEntries(server, "tool_call");
      const outcome = (tool: string) =>
        sealed.filter((e) => e.tool === `bad__${tool}`).map((e) => e.outcome);
      assert.deepEqual(outcome("misshaped"), ["invalid_output", "invalid_output"]);
      assert.deepEqual(outcome("unshaped"), ["invalid_output"]);
      assert.deepEqual(outcome("shaped"), ["ok"]);
      assert.deepEqual(outcome("failing"), ["tool_error"]);
      for (const e of sealed.filter((e) => e.tool === "bad__misshaped")) {
        assert.equal(e.upstream, "bad");
        assert.match(e.definition_sha256, /^[0-9a-f]{64}$/);
      }
    } finally {
      await client.close();
      await server.close();
      await odd.close();
      await up.shutdown();
    }
  },
});

/**
 * What an HTTP upstream sends is bounded per message. Found by attacking the gateway on
 * loopback with a hostile upstream whose tool answered 100 MiB: Warden read it whole, held it
 * several times over (the /invoke answer was 300 MiB, the process 2 GB resident with eight such
 * calls), and a 200 MiB answer ended in `RangeError: Invalid string length` in the HTTP route —
 * a 500, not the contained tool error an upstream's fault is. Now a message over
 * {@link MAX_UPSTREAM_MESSAGE_BYTES} (a JSON answer, or one event of an SSE stream) fails that
 * call as the upstream's fault while it is being read, and the upstream keeps serving.
 */
import assert from "node:assert/strict";
import { MAX_UPSTREAM_MESSAGE_BYTES } from "../../src/gateway/mod.ts";
import { postInvoke } from "../_helpers/raw.ts";
import { startServer } from "../_helpers/server.ts";

const encoder = new TextEncoder();

/**
 * A minimal Streamable HTTP MCP server (protocol 2025-06-18) on loopback: `small` answers a few
 * bytes, `big_json` a JSON answer over the bound, `big_sse` an SSE event over it. The big answers
 * are streamed, so what the upstream sends is counted as Warden reads it.
 */
function hostileUpstream(): Deno.HttpServer<Deno.NetAddr> {
  const over = MAX_UPSTREAM_MESSAGE_BYTES + (1 << 20);
  const streamed = (prefix: string, size: number, suffix: string) => {
    const chunk = encoder.encode("a".repeat(1 << 16));
    let sent = 0;
    return new ReadableStream<Uint8Array>({
      start: (c) => c.enqueue(encoder.encode(prefix)),
      pull(c) {
        if (sent < size) {
          c.enqueue(chunk);
          sent += chunk.byteLength;
        } else {
          c.enqueue(encoder.encode(suffix));
          c.close();
        }
      },
    });
  };
  const json = (body: unknown, headers: Record<string, string> = {}) =>
    Response.json(body, { headers });
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    if (req.method !== "POST") return new Response(null, { status: 405 });
    const m = await req.json();
    if (m.id === undefined) return new Response(null, { status: 202 });
    const id = JSON.stringify(m.id);
    switch (m.method) {
      case "initialize":
        return json({
          jsonrpc: "2.0",
          id: m.id,
          result: {
            protocolVersion: "2025-06-18",
            capabilities: { tools: {} },
            serverInfo: { name: "hostile", version: "1.0.0" },
          },
        }, { "mcp-session-id": "hostile-session" });
      case "tools/list":
        return json({
          jsonrpc: "2.0",
          id: m.id,
          result: {
            tools: ["small", "big_json", "big_sse"].map((name) => ({
              name,
              description: `answers ${name}`,
              inputSchema: { type: "object" },
            })),
          },
        });
      case "tools/call": {
        const head = `{"jsonrpc":"2.0","id":${id},"result":{"content":[{"type":"text","text":"`;
        const tail = `"}]}}`;
        if (m.params.name === "small") {
          return json({
            jsonrpc: "2.0",
            id: m.id,
            result: { content: [{ type: "text", text: "ok" }] },
          });
        }
        if (m.params.name === "big_json") {
          return new Response(streamed(head, over, tail), {
            headers: { "content-type": "application/json" },
          });
        }
        return new Response(streamed(`event: message\ndata: ${head}`, over, `${tail}\n\n`), {
          headers: { "content-type": "text/event-stream" },
        });
      }
      default:
        return json({
          jsonrpc: "2.0",
          id: m.id,
          error: { code: -32601, message: "no such method" },
        });
    }
  });
}

const invoke = (url: string, tool: string) => postInvoke(url, tool);

Deno.test({
  name:
    "an upstream answer over the per-message bound fails that call as the upstream's fault, JSON or SSE, and the upstream keeps serving",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using up = hostileUpstream();
    await using server = await startServer({
      upstreams: [{
        name: "h",
        transport: "streamable-http",
        url: `http://127.0.0.1:${up.addr.port}/mcp`,
      }],
      gatewayOptions: { healthIntervalMs: 0 },
    });
    assert.equal((await invoke(server.url, "h__small")).body.result.content[0].text, "ok");
    for (const tool of ["h__big_json", "h__big_sse"]) {
      const big = await invoke(server.url, tool);
      assert.equal(big.body.ok, false, `${tool} answered ${big.bytes} bytes`);
      assert.equal(big.body.error_kind, "fault", JSON.stringify(big.body).slice(0, 300));
      assert.match(
        big.body.message,
        new RegExp(`upstream h failed: .*message over ${MAX_UPSTREAM_MESSAGE_BYTES} bytes`),
      );
      // The same upstream answers the next call.
      assert.equal((await invoke(server.url, "h__small")).body.result.content[0].text, "ok");
    }
  },
});

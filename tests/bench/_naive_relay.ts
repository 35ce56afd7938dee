/**
 * The naive relay a user writes first with the SDK: one SDK Client connected
 * to the upstream (argv[0], a Streamable HTTP URL), an McpServer per session
 * that re-registers every upstream tool and forwards each call with
 * `client.callTool` — no governance, no sealing, no KV. Its responses are JSON; with a second
 * argument `sse`, SSE streams (the SDK transport's default, without an event store).
 */
import { Hono } from "hono";
// @ts-types="@modelcontextprotocol/sdk/client/index"
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
// @ts-types="@modelcontextprotocol/sdk/client/streamableHttp"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
// @ts-types="@modelcontextprotocol/sdk/server/mcp"
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
// @ts-types="@modelcontextprotocol/sdk/server/webStandardStreamableHttp"
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { z } from "zod";

const upstream = new Client({ name: "naive-relay", version: "1.0.0" });
await upstream.connect(new StreamableHTTPClientTransport(new URL(Deno.args[0])));
const { tools } = await upstream.listTools();

function newServer(): McpServer {
  const server = new McpServer({ name: "relay", version: "1.0.0" });
  for (const tool of tools) {
    server.registerTool(tool.name, {
      description: tool.description ?? "",
      inputSchema: z.object({}).passthrough(),
    }, async (args) =>
      // deno-lint-ignore no-explicit-any -- the upstream's result, relayed as it came
      (await upstream.callTool({ name: tool.name, arguments: args })) as any);
  }
  return server;
}

const transports = new Map<string, WebStandardStreamableHTTPServerTransport>();
const app = new Hono();
app.all("/mcp", async (c) => {
  const id = c.req.header("mcp-session-id");
  if (id) {
    const t = transports.get(id);
    if (!t) return c.json({ error: "unknown session" }, 404);
    return t.handleRequest(c.req.raw);
  }
  const transport = new WebStandardStreamableHTTPServerTransport({
    sessionIdGenerator: () => crypto.randomUUID(),
    enableJsonResponse: Deno.args[1] !== "sse",
    onsessioninitialized: (sid) => {
      transports.set(sid, transport);
    },
  });
  await newServer().connect(transport);
  return transport.handleRequest(c.req.raw);
});

Deno.serve({
  port: 0,
  hostname: "127.0.0.1",
  onListen: ({ port }) => console.log(JSON.stringify({ port })),
}, app.fetch);

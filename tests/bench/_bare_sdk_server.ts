/**
 * The baseline: a bare Hono + MCP SDK server with one echo tool, stateful
 * sessions held in memory (no KV), JSON-response mode — what Warden would be
 * without KV sessions, governance or the vault.
 */
import { Hono } from "hono";
// @ts-types="@modelcontextprotocol/sdk/server/mcp"
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
// @ts-types="@modelcontextprotocol/sdk/server/webStandardStreamableHttp"
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { z } from "zod";

const transports = new Map<string, WebStandardStreamableHTTPServerTransport>();

function newServer(): McpServer {
  const server = new McpServer({ name: "bare", version: "1.0.0" });
  server.registerTool("echo", {
    description: "Echoes its input",
    inputSchema: { text: z.string() },
  }, ({ text }) => ({ content: [{ type: "text", text }] }));
  return server;
}

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
    enableJsonResponse: true,
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

/**
 * The baselines: a bare Hono + MCP SDK server with one echo tool and nothing
 * else (no KV, no governance, no vault) — what Warden would be without them.
 *
 * `--mode json` (default): v1 SDK, stateful sessions in memory, JSON responses.
 * `--mode sse`: the same with SSE responses (the SDK's default; no event store).
 * `--mode modern`: the v2 SDK's `createMcpHandler` answering 2026-07-28
 * requests, a fresh `McpServer` per request from its factory as the SDK documents.
 * `--mode v2-sse`: the v2 SDK's sessionful transport with SSE responses, the SDK Warden's
 * 2025 path is built on (so the bench can tell the SDK line's cost from Warden's own).
 */
import { Hono } from "hono";
// @ts-types="@modelcontextprotocol/sdk/server/mcp"
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
// @ts-types="@modelcontextprotocol/sdk/server/webStandardStreamableHttp"
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import {
  createMcpHandler,
  McpServer as McpServerV2,
  WebStandardStreamableHTTPServerTransport as TransportV2,
} from "@modelcontextprotocol/server";
import { z } from "zod";

const modeAt = Deno.args.indexOf("--mode");
const mode = modeAt >= 0 ? Deno.args[modeAt + 1] : "json";
if (!["json", "sse", "modern", "v2-sse"].includes(mode)) throw new Error(`unknown --mode ${mode}`);

const transports = new Map<string, { handleRequest(req: Request): Promise<Response> }>();

function newServer(): McpServer {
  const server = new McpServer({ name: "bare", version: "1.0.0" });
  server.registerTool("echo", {
    description: "Echoes its input",
    inputSchema: { text: z.string() },
  }, ({ text }) => ({ content: [{ type: "text", text }] }));
  return server;
}

function newModernServer(): McpServerV2 {
  const server = new McpServerV2({ name: "bare", version: "1.0.0" });
  server.registerTool("echo", {
    description: "Echoes its input",
    inputSchema: z.object({ text: z.string() }),
  }, ({ text }) => ({ content: [{ type: "text", text }] }));
  return server;
}

const app = new Hono();
if (mode === "modern") {
  const handler = createMcpHandler(() => newModernServer(), { legacy: "reject" });
  app.all("/mcp", (c) => handler.fetch(c.req.raw));
} else {
  app.all("/mcp", async (c) => {
    const id = c.req.header("mcp-session-id");
    if (id) {
      const t = transports.get(id);
      if (!t) return c.json({ error: "unknown session" }, 404);
      return t.handleRequest(c.req.raw);
    }
    if (mode === "v2-sse") {
      const transport = new TransportV2({
        sessionIdGenerator: () => crypto.randomUUID(),
        onsessioninitialized: (sid) => {
          transports.set(sid, transport);
        },
      });
      await newModernServer().connect(transport);
      return transport.handleRequest(c.req.raw);
    }
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => crypto.randomUUID(),
      enableJsonResponse: mode === "json",
      onsessioninitialized: (sid) => {
        transports.set(sid, transport);
      },
    });
    await newServer().connect(transport);
    return transport.handleRequest(c.req.raw);
  });
}

Deno.serve({
  port: 0,
  hostname: "127.0.0.1",
  onListen: ({ port }) => console.log(JSON.stringify({ port })),
}, app.fetch);

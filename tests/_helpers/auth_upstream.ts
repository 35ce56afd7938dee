/**
 * A small MCP upstream over Streamable HTTP (stateless, the v1 SDK's web
 * standard transport) that demands a credential: `Authorization: Bearer
 * $EXPECT_BEARER`, or header `$EXPECT_HEADER` = `$EXPECT_VALUE`; anything
 * else is 401. It remembers every Authorization and credential header it was
 * sent (`GET /seen`), so a test can check what Warden forwarded. `POST
 * /expect?bearer=…` changes the bearer it demands (a credential rotated at the
 * upstream's side).
 * Run: `PORT=… EXPECT_BEARER=… deno run -A tests/_helpers/auth_upstream.ts`;
 * it prints "listening on port N" when ready.
 */
// @ts-types="@modelcontextprotocol/sdk/server/mcp"
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
// @ts-types="@modelcontextprotocol/sdk/server/webStandardStreamableHttp"
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { z } from "zod";

let bearer = Deno.env.get("EXPECT_BEARER");
const headerName = Deno.env.get("EXPECT_HEADER")?.toLowerCase();
const headerValue = Deno.env.get("EXPECT_VALUE");
const seen: { authorization: string | null; header: string | null }[] = [];

function authorised(req: Request): boolean {
  if (bearer !== undefined) return req.headers.get("authorization") === `Bearer ${bearer}`;
  if (headerName !== undefined) return req.headers.get(headerName) === headerValue;
  return true;
}

Deno.serve({
  port: Number(Deno.env.get("PORT") ?? 0),
  hostname: "127.0.0.1",
  onListen: ({ port }) => console.log(`listening on port ${port}`),
}, async (req) => {
  const url = new URL(req.url);
  if (url.pathname === "/seen") return Response.json(seen);
  if (url.pathname === "/expect" && req.method === "POST") {
    bearer = url.searchParams.get("bearer") ?? undefined;
    return new Response(null, { status: 204 });
  }
  if (url.pathname !== "/mcp") return new Response("not found", { status: 404 });
  seen.push({
    authorization: req.headers.get("authorization"),
    header: headerName ? req.headers.get(headerName) : null,
  });
  if (seen.length > 10_000) seen.shift();
  if (!authorised(req)) {
    return new Response(JSON.stringify({ error: "invalid_token" }), {
      status: 401,
      headers: { "content-type": "application/json", "www-authenticate": "Bearer" },
    });
  }
  const server = new McpServer({ name: "auth-upstream", version: "1.0.0" });
  server.registerTool("whoami", {
    description: "Says that the caller was let in.",
    inputSchema: { note: z.string().optional() },
    annotations: { readOnlyHint: true, openWorldHint: false },
  }, ({ note }) => ({ content: [{ type: "text", text: `let in${note ? `: ${note}` : ""}` }] }));
  const transport = new WebStandardStreamableHTTPServerTransport({
    sessionIdGenerator: undefined,
    enableJsonResponse: true,
  });
  await server.connect(transport);
  return await transport.handleRequest(req);
});

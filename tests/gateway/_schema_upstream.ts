/**
 * A small v2 SDK `McpServer` upstream over Streamable HTTP on loopback with
 * one good tool, `count` (a valid outputSchema), and two whose outputSchemas
 * do not compile: `nonsense` (an unknown type) and `nowhere` (a `$ref` to
 * nowhere). Those are advertised as written — their validator here is a
 * pass-through, as a server that never checks its own schemas would have.
 * `GET /called` answers the tools called so far.
 * Run: `deno run -A tests/gateway/_schema_upstream.ts`; it prints
 * "listening on port N" when ready.
 */
import { createMcpHandler, fromJsonSchema, McpServer } from "@modelcontextprotocol/server";
import { z } from "zod";

/** Schemas the SDK's AJV provider cannot compile, by tool name. */
export const BAD_SCHEMAS: Record<string, Record<string, unknown>> = {
  nonsense: { type: "object", properties: { x: { type: "nonsense" } } },
  nowhere: { type: "object", properties: { x: { $ref: "#/$defs/missing" } } },
};

const passThrough = {
  getValidator: () => (input: unknown) => ({ valid: true, data: input, errorMessage: undefined }),
} as never;

function upstreamServer(called: string[]): McpServer {
  const server = new McpServer({ name: "shapes", version: "1.0.0" });
  server.registerTool("count", {
    description: "Counts to three.",
    inputSchema: z.object({}),
    outputSchema: z.object({ count: z.number() }),
    annotations: { readOnlyHint: true, openWorldHint: false },
  }, () => {
    called.push("count");
    return { content: [{ type: "text", text: "3" }], structuredContent: { count: 3 } };
  });
  for (const [name, schema] of Object.entries(BAD_SCHEMAS)) {
    server.registerTool(name, {
      description: `Answers a ${name} result.`,
      inputSchema: z.object({}),
      outputSchema: fromJsonSchema(schema as never, passThrough),
      annotations: { readOnlyHint: true, openWorldHint: false },
    }, () => {
      called.push(name);
      return { content: [{ type: "text", text: "x" }], structuredContent: { x: 1 } };
    });
  }
  return server;
}

if (import.meta.main) {
  const called: string[] = [];
  const handler = createMcpHandler(() => upstreamServer(called));
  Deno.serve({
    port: 0,
    hostname: "127.0.0.1",
    onListen: ({ port }) => console.log(`listening on port ${port}`),
  }, (req) => new URL(req.url).pathname === "/called" ? Response.json(called) : handler.fetch(req));
}

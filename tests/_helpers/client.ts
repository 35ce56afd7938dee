// deno-lint-ignore-file no-explicit-any -- envelopes are probed field by field by each test
/** SDK clients connected to a test server over each transport. */
// @ts-types="@modelcontextprotocol/sdk/client/index"
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
// @ts-types="@modelcontextprotocol/sdk/client/streamableHttp"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
// @ts-types="@modelcontextprotocol/sdk/client/sse"
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";

import {
  Client as V2Client,
  StreamableHTTPClientTransport as V2Transport,
} from "@modelcontextprotocol/client";

export { Client, SSEClientTransport, StreamableHTTPClientTransport };

/** Connects an SDK client over Streamable HTTP to `${base}/mcp`. */
export async function connectStreamable(
  base: string,
  options: { sessionId?: string; headers?: Record<string, string>; name?: string } = {},
): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), {
    sessionId: options.sessionId,
    requestInit: options.headers ? { headers: options.headers } : undefined,
  });
  const client = new Client({ name: options.name ?? "warden-test", version: "1.0.0" });
  await client.connect(transport);
  return { client, transport };
}

/** Connects an SDK client over legacy SSE to `${base}/sse`. */
export async function connectSse(
  base: string,
): Promise<{ client: Client; transport: SSEClientTransport }> {
  const transport = new SSEClientTransport(new URL(`${base}/sse`));
  const client = new Client({ name: "warden-sse-test", version: "1.0.0" });
  await client.connect(transport);
  return { client, transport };
}

/** The tool's own output inside the envelope a Warden tool returns as structuredContent. */
export function dataOf(result: Record<string, unknown>): unknown {
  return (result.structuredContent as { data?: unknown } | undefined)?.data;
}

/** The envelope a Warden tool returns as structuredContent. */
export function envelopeOf(result: Record<string, unknown>): Record<string, any> {
  return result.structuredContent as Record<string, any>;
}

/** The v1 SDK client on a 2025 session at `${base}/mcp`, sending `Authorization: Bearer secret`. */
export async function connectV1As(base: string, secret: string, name = "warden-test-v1") {
  const client = new Client({ name, version: "1" });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${base}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${secret}` } },
    }),
  );
  return client;
}

/** The v2 SDK client pinned to 2026-07-28 at `${base}/mcp`, sending `Authorization: Bearer secret`. */
export async function connectModernAs(base: string, secret: string, name = "warden-test-v2") {
  const client = new V2Client({ name, version: "1" }, {
    versionNegotiation: { mode: { pin: "2026-07-28" } },
  });
  await client.connect(
    new V2Transport(new URL(`${base}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${secret}` } },
    }),
  );
  if (client.getNegotiatedProtocolVersion() !== "2026-07-28") {
    throw new Error(`negotiated ${client.getNegotiatedProtocolVersion()}, not 2026-07-28`);
  }
  return client;
}

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

/**
 * A fetch that sends each request to the next of `bases` in turn (path and query kept), for one
 * client talking to several processes; `onRequest` sees each request's init before it is sent,
 * `onResponse` each answer with the index of the process that gave it.
 */
export function alternatingFetch(
  bases: string[],
  observe: {
    onRequest?: (i: number, init: RequestInit | undefined) => void;
    onResponse?: (i: number, res: Response) => void;
  } = {},
): (input: string | URL | Request, init?: RequestInit) => Promise<Response> {
  const hosts = bases.map((b) => new URL(b).host);
  let turn = 0;
  return async (input, init) => {
    const i = turn++ % hosts.length;
    const url = new URL(input instanceof Request ? input.url : input);
    url.host = hosts[i];
    observe.onRequest?.(i, init);
    const res = await fetch(url, init);
    observe.onResponse?.(i, res);
    return res;
  };
}

/**
 * The v2 SDK client pinned to 2026-07-28 on `${base}/mcp` with the given capabilities, fetch and
 * bearer token; `setup` runs before connecting (to register request handlers).
 */
export async function connectModern(
  base: string,
  options: {
    name?: string;
    token?: string;
    capabilities?: Record<string, unknown>;
    fetch?: (input: string | URL | Request, init?: RequestInit) => Promise<Response>;
    setup?: (client: V2Client) => void;
  } = {},
): Promise<V2Client> {
  const client = new V2Client({ name: options.name ?? "modern-test", version: "1.0.0" }, {
    ...(options.capabilities ? { capabilities: options.capabilities as never } : {}),
    versionNegotiation: { mode: { pin: "2026-07-28" } },
  });
  options.setup?.(client);
  await client.connect(
    new V2Transport(new URL(`${base}/mcp`), {
      ...(options.fetch ? { fetch: options.fetch } : {}),
      ...(options.token
        ? { requestInit: { headers: { authorization: `Bearer ${options.token}` } } }
        : {}),
    }),
  );
  return client;
}

/** GET `${base}${path}` with `Authorization: Bearer token`, as JSON. */
export async function getJson(base: string, path: string, token?: string): Promise<any> {
  const res = await fetch(`${base}${path}`, {
    ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}),
  });
  return await res.json();
}

/** The vault's entries read over REST (`/vault/entries`), decoded. */
export async function vaultEntriesOver(base: string, token?: string, limit = 1000): Promise<any[]> {
  const page = await getJson(base, `/vault/entries?start=0&limit=${limit}`, token);
  return page.entries.map((e: any) => JSON.parse(atob(e.data)));
}

/** Repeats a call under its hold (`_meta["warden/hold"]`) and returns the envelope it answers. */
export async function callHeld(
  client: { callTool(params: any): Promise<Record<string, unknown>> },
  name: string,
  args: Record<string, unknown>,
  holdId: string,
): Promise<Record<string, any>> {
  return envelopeOf(
    await client.callTool({ name, arguments: args, _meta: { "warden/hold": holdId } }),
  );
}

/** Calls tool `name` through `client`: the result, its envelope and the tool's data. */
export async function callParts(
  client: { callTool(params: any): Promise<any> },
  name: string,
  args: Record<string, unknown>,
): Promise<{ r: any; env: any; data: any }> {
  const r = await client.callTool({ name, arguments: args });
  return { r, env: r.structuredContent, data: r.structuredContent?.data };
}

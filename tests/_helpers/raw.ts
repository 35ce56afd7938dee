// deno-lint-ignore-file no-explicit-any -- test helper: replies are probed field by field by each test
/** Raw JSON-RPC over fetch, for tests that need exact control of headers and bodies. */

export const ACCEPT_BOTH = "application/json, text/event-stream";

/** Parses an SSE body (or JSON body) into the JSON-RPC messages it carries. */
export function parseSseMessages(text: string): { id?: string; data: unknown }[] {
  const out: { id?: string; data: unknown }[] = [];
  for (const block of text.split("\n\n")) {
    let id: string | undefined;
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("id: ")) id = line.slice(4);
      else if (line.startsWith("data: ")) data.push(line.slice(6));
      else if (line.startsWith("data:")) data.push(line.slice(5));
    }
    const joined = data.join("\n").trim();
    if (joined) out.push({ id, data: JSON.parse(joined) });
  }
  return out;
}

/** Reads a JSON or SSE response body as the single JSON-RPC message it answers with. */
export async function readRpc(res: Response): Promise<any> {
  const text = await res.text();
  if ((res.headers.get("content-type") ?? "").includes("text/event-stream")) {
    const msgs = parseSseMessages(text).map((m) => m.data as Record<string, unknown>);
    return msgs.find((m) => "result" in m || "error" in m) ?? null;
  }
  return text ? JSON.parse(text) : null;
}

/** POSTs one `initialize` request for `version` to `${base}/mcp` and returns the raw response. */
export function postInitialize(
  base: string,
  version: string,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(`${base}/mcp`, {
    method: "POST",
    headers: { accept: ACCEPT_BOTH, "content-type": "application/json", ...headers },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: {
        protocolVersion: version,
        capabilities: {},
        clientInfo: { name: "raw", version: "1" },
      },
    }),
  });
}

/** Sends `initialize` + `notifications/initialized` and returns the session id. */
export async function initializeRaw(
  base: string,
  version: string,
  headers: Record<string, string> = {},
): Promise<{ sessionId: string; result: any }> {
  const res = await postInitialize(base, version, headers);
  if (res.status !== 200) throw new Error(`initialize failed: ${res.status} ${await res.text()}`);
  const sessionId = res.headers.get("mcp-session-id")!;
  const body = await readRpc(res);
  const negotiated = body.result.protocolVersion;
  const ack = await fetch(`${base}/mcp`, {
    method: "POST",
    headers: {
      accept: ACCEPT_BOTH,
      "content-type": "application/json",
      "mcp-session-id": sessionId,
      "mcp-protocol-version": negotiated,
      ...headers,
    },
    body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }),
  });
  await ack.body?.cancel();
  return { sessionId, result: body.result };
}

let nextId = 100;

/** One JSON-RPC request on an existing session; returns status and the parsed reply. */
export async function rpc(
  base: string,
  sessionId: string,
  method: string,
  params: unknown,
  options: { version?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(`${base}/mcp`, {
    method: "POST",
    headers: {
      accept: ACCEPT_BOTH,
      "content-type": "application/json",
      "mcp-session-id": sessionId,
      ...(options.version ? { "mcp-protocol-version": options.version } : {}),
      ...options.headers,
    },
    body: JSON.stringify({ jsonrpc: "2.0", id: nextId++, method, params }),
  });
  return { status: res.status, body: await readRpc(res), headers: res.headers };
}

/** The `_meta` a 2026-07-28 request carries, with the client capabilities `caps`. */
export function modernMeta(caps: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": { name: "raw", version: "1" },
    "io.modelcontextprotocol/clientCapabilities": caps,
  };
}

/**
 * One 2026-07-28 request as the conformance harness sends it: the headers mirror the body
 * (`Mcp-Method`, and `Mcp-Name` from the first of `name`, `uri`, `taskId` that is a string;
 * `headers` may override either), `_meta` is `meta` (default {@link modernMeta}). The reply is
 * the last message of an SSE body, or the JSON body.
 */
export async function postModern(
  base: string,
  method: string,
  params: Record<string, unknown> = {},
  options: { id?: unknown; meta?: Record<string, unknown>; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Headers; json: any }> {
  const name = [params.name, params.uri, params.taskId].find((v) => typeof v === "string");
  const res = await fetch(`${base}/mcp`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: ACCEPT_BOTH,
      "mcp-protocol-version": "2026-07-28",
      "mcp-method": method,
      ...(name !== undefined ? { "mcp-name": name as string } : {}),
      ...options.headers,
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: options.id ?? 1,
      method,
      params: { ...params, _meta: options.meta ?? modernMeta() },
    }),
  });
  const text = await res.text();
  const json = res.headers.get("content-type")?.includes("text/event-stream")
    ? JSON.parse(text.split("\n").filter((l) => l.startsWith("data:")).at(-1)!.slice(5))
    : JSON.parse(text);
  return { status: res.status, headers: res.headers, json };
}

/**
 * Opens a 2026-07-28 `subscriptions/listen` stream for `notifications` and returns the response
 * unread (the stream stays open until the body is cancelled or the server ends it).
 */
export function openListen(
  base: string,
  notifications: Record<string, unknown>,
  options: { id?: number; headers?: Record<string, string> } = {},
): Promise<Response> {
  return fetch(`${base}/mcp`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: ACCEPT_BOTH,
      "mcp-protocol-version": "2026-07-28",
      "mcp-method": "subscriptions/listen",
      ...options.headers,
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: options.id ?? 1,
      method: "subscriptions/listen",
      params: { _meta: modernMeta(), notifications },
    }),
  });
}

/** POSTs one `/invoke` call; the status, the answer's length and its parsed body. */
export async function postInvoke(
  base: string,
  tool: string,
  args: Record<string, unknown> = {},
): Promise<{ status: number; bytes: number; body: any }> {
  const res = await fetch(`${base}/invoke`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ tool, arguments: args }),
  });
  const text = await res.text();
  return { status: res.status, bytes: text.length, body: JSON.parse(text) };
}

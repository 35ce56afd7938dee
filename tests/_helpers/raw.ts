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

/** Sends `initialize` + `notifications/initialized` and returns the session id. */
export async function initializeRaw(
  base: string,
  version: string,
  headers: Record<string, string> = {},
): Promise<{ sessionId: string; result: any }> {
  const res = await fetch(`${base}/mcp`, {
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

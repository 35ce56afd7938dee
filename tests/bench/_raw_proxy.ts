/**
 * The floor of one extra HTTP hop: forwards `/mcp` requests to the upstream
 * URL given as its argument, body as bytes and answer as a stream, copying
 * only the MCP headers — no JSON-RPC parsing, no session of its own. Routing
 * cannot cost less than this in Deno; `gateway_cpu.ts` measures it beside
 * Warden's routing and the naive SDK relay. Prints `{"port": N}` once listening.
 *
 * `deno run -A tests/bench/_raw_proxy.ts UPSTREAM_MCP_URL`
 * @module
 */
const upstream = Deno.args[0];
if (!upstream) throw new Error("usage: _raw_proxy.ts UPSTREAM_MCP_URL");
const REQUEST_HEADERS = ["accept", "content-type", "mcp-session-id", "mcp-protocol-version"];
const RESPONSE_HEADERS = ["content-type", "mcp-session-id"];

function pick(from: Headers, names: string[]): Headers {
  const out = new Headers();
  for (const name of names) {
    const value = from.get(name);
    if (value !== null) out.set(name, value);
  }
  return out;
}

Deno.serve({
  port: 0,
  hostname: "127.0.0.1",
  onListen: ({ port }) => console.log(JSON.stringify({ port })),
}, async (req) => {
  const res = await fetch(upstream, {
    method: req.method,
    headers: pick(req.headers, REQUEST_HEADERS),
    body: req.method === "POST" ? await req.arrayBuffer() : undefined,
  });
  return new Response(res.body, {
    status: res.status,
    headers: pick(res.headers, RESPONSE_HEADERS),
  });
});

// deno-lint-ignore-file no-explicit-any -- JSON-RPC bodies are probed field by field
/**
 * Closing Warden ends every stream it holds to an upstream, whatever its clients are doing. The
 * upstream is another real Warden (it speaks 2026-07-28, so the gateway's SDK client holds a
 * `subscriptions/listen` stream to it for list changes),
 * reached through a small recording relay on loopback that counts the upstream streams open. A
 * client of the gateway holds its own listen stream and a 2025 session while the gateway closes.
 * Before, the SDK transport's close() aborted the fetch, but the stream's body, held by the
 * gateway's SSE-answer reader, was never cancelled: the upstream's listen stream (and its socket)
 * stayed open after Warden closed. And a client's listen naming such an upstream's resource (which
 * the SDK will not subscribe to on that era) leaves the gateway's shared connection up.
 */
import assert from "node:assert/strict";
import { parseUpstreams } from "../../src/gateway/mod.ts";
import { connectModern, connectStreamable } from "../_helpers/client.ts";
import { startServer } from "../_helpers/server.ts";

/** Forwards to `target`, counting the event-stream answers still open, by method. */
function recordingRelay(target: string) {
  const open = new Map<string, number>();
  const readers = new Set<ReadableStreamDefaultReader<Uint8Array>>();
  /** Requests seen, by method. */
  const seen = new Map<string, number>();
  const bump = (method: string, by: number) => open.set(method, (open.get(method) ?? 0) + by);
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    const body = req.method === "POST" ? await req.text() : undefined;
    let method = req.method;
    try {
      method = body ? String(JSON.parse(body).method ?? "response") : req.method;
    } catch { /* not JSON */ }
    seen.set(method, (seen.get(method) ?? 0) + 1);
    const res = await fetch(`${target}${url.pathname}${url.search}`, {
      method: req.method,
      headers: req.headers,
      ...(body !== undefined ? { body } : {}),
    });
    if (!res.body || !(res.headers.get("content-type") ?? "").includes("event-stream")) return res;
    bump(method, 1);
    let done = false;
    const end = () => {
      if (!done) bump(method, -1);
      done = true;
    };
    const reader = res.body.getReader();
    readers.add(reader);
    // The gateway hanging up is seen at once (Deno.serve aborts the request's signal), not only
    // when the next event is written.
    req.signal.addEventListener("abort", () => {
      end();
      reader.cancel().catch(() => {});
    }, { once: true });
    const relayed = new ReadableStream<Uint8Array>({
      async pull(c) {
        const { value, done: finished } = await reader.read().catch(() => ({
          value: undefined,
          done: true,
        }));
        if (finished) {
          end();
          c.close();
        } else c.enqueue(value!);
      },
      cancel() {
        end();
        reader.cancel().catch(() => {});
      },
    });
    return new Response(relayed, { status: res.status, headers: res.headers });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    open,
    seen,
    total: () => [...open.values()].reduce((a, b) => a + b, 0),
    // Whatever is still open is cut first, so a failing test does not wait on it forever.
    close: async () => {
      for (const r of readers) await r.cancel().catch(() => {});
      await server.shutdown();
    },
  };
}

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A gateway whose one upstream, "w", is reached through a relay that counts its streams. */
async function gatewayThroughRelay(upstreamUrl: string) {
  const relay = recordingRelay(upstreamUrl);
  const gateway = await startServer({
    upstreams: parseUpstreams(JSON.stringify([{
      name: "w",
      transport: "streamable-http",
      url: `${relay.url}/mcp`,
    }])),
  });
  return { relay, gateway };
}

Deno.test({
  name: "gateway shutdown: closing Warden with clients connected ends every upstream stream",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using upstream = await startServer();
    const { relay, gateway } = await gatewayThroughRelay(upstream.url);
    let closed = false;
    try {
      // The gateway's own connection to a 2026-07-28 upstream listens for list changes.
      const { client: legacy } = await connectStreamable(gateway.url);
      assert.ok((await legacy.listTools()).tools.some((t) => t.name === "w__get_time"));
      await until("the gateway's upstream listen stream", () => relay.total() > 0);
      // A 2026-07-28 client listening on the gateway for list changes.
      const modern: any = await connectModern(gateway.url);
      const sub = await modern.listen({ toolsListChanged: true });
      const before = relay.total();
      assert.ok(before > 0, JSON.stringify([...relay.open]));

      await gateway.close();
      closed = true;
      await until(
        `every upstream stream to end (open: ${JSON.stringify([...relay.open])})`,
        () => relay.total() === 0,
        5_000,
      );
      await sub?.close?.().catch(() => {});
      await modern.close().catch(() => {});
      await legacy.close().catch(() => {});
    } finally {
      if (!closed) await gateway.close();
      await relay.close();
    }
  },
});

Deno.test({
  name: "gateway: a listen naming a 2026-07-28 upstream's resource leaves its connection up",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // Before, the SDK refused resources/subscribe on the 2026-07-28 connection, and the gateway took
    // that refusal for a broken connection: it closed the one connection every caller shares
    // (cutting their calls in flight) and reconnected on the next call. Any principal allowed to
    // read the upstream's resources could do that at will.
    await using upstream = await startServer();
    const { relay, gateway } = await gatewayThroughRelay(upstream.url);
    try {
      const { client } = await connectStreamable(gateway.url);
      const call = async () => {
        const r: any = await client.callTool({ name: "w__get_time", arguments: {} });
        assert.notEqual(r.isError, true, JSON.stringify(r));
      };
      await call();
      const handshakes = relay.seen.get("server/discover") ?? 0;
      assert.ok(handshakes >= 1);
      const modern: any = await connectModern(gateway.url);
      for (let i = 0; i < 3; i++) {
        const sub = await modern.listen({
          resourceSubscriptions: ["upstream://w/warden://vault/head"],
        });
        await call();
        await sub.close?.().catch(() => {});
      }
      assert.equal(relay.seen.get("server/discover") ?? 0, handshakes, "the gateway reconnected");
      assert.equal(relay.open.get("subscriptions/listen"), 1, JSON.stringify([...relay.open]));
      await modern.close().catch(() => {});
      await client.close();
    } finally {
      await gateway.close();
      await relay.close();
    }
  },
});

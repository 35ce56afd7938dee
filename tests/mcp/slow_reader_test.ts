/**
 * A client that opens an SSE stream and then stops reading it must not make the server buffer
 * without bound: once more than 8 MiB wait unsent behind the socket's own buffers, the stream is
 * dropped and its connection closed — a legacy `GET /sse` stream with its session, a Streamable
 * HTTP `GET /mcp` stream alone (the session lives on and may open another). Before, both queued
 * every event in memory for as long as the client held the socket. Over raw TCP (Deno.connect),
 * since fetch() reads what arrives. The caps on how many streams one client may hold are checked
 * the same way, with streams nobody reads.
 */
import assert from "node:assert/strict";
import type { McpServer } from "@modelcontextprotocol/server";
import { initializeRaw, openListen } from "../_helpers/raw.ts";
import { startServer } from "../_helpers/server.ts";
import { pollUntil } from "../_helpers/wait.ts";

const enc = new TextEncoder();

/** A GET of an SSE route on a raw socket; resolves once the response head and `until` arrived. */
async function openUnread(port: number, path: string, until: RegExp, headers: string[] = []) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const head = [`GET ${path} HTTP/1.1`, "Host: 127.0.0.1", "Accept: text/event-stream"];
  await conn.write(enc.encode([...head, ...headers, "", ""].join("\r\n")));
  const buf = new Uint8Array(16 * 1024);
  const dec = new TextDecoder();
  let text = "";
  while (!until.test(text)) {
    const n = await conn.read(buf);
    if (n === null) break;
    text += dec.decode(buf.subarray(0, n), { stream: true });
  }
  return { conn, text };
}

/** Reads `conn` to its end: "closed" when the server ends it within `waitMs`, else "open". */
async function drainToEnd(conn: Deno.Conn, waitMs: number): Promise<"closed" | "open"> {
  const buf = new Uint8Array(256 * 1024);
  const timer = setTimeout(() => {
    try {
      conn.close();
    } catch { /* closed already */ }
  }, waitMs);
  let ended: "closed" | "open" = "open";
  try {
    while (await conn.read(buf) !== null);
    ended = "closed";
  } catch (e) {
    // A reset is the server ending it too; an interrupted read is our own deadline.
    if (e instanceof Deno.errors.ConnectionReset) ended = "closed";
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed already */ }
  }
  return ended;
}

Deno.test({
  name: "legacy SSE: a stream whose client stopped reading is dropped, not buffered without bound",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using server = await startServer({ args: ["--max-body", String(2 << 20)] });
    const { conn, text } = await openUnread(server.port, "/sse", /sessionId=[0-9a-f-]{36}/);
    const sessionId = /sessionId=([0-9a-f-]{36})/.exec(text)![1];
    assert.equal(server.app.sse.liveCount, 1);
    // From here on the client reads nothing. Each POST answers 100 pings down the stream, each
    // answer carrying its ~10 KB id back: about 1 MB per POST.
    const batch = (n: number) =>
      JSON.stringify(Array.from({ length: 100 }, (_, i) => ({
        jsonrpc: "2.0",
        id: `${n}-${i}-`.padEnd(10_000, "x"),
        method: "ping",
      })));
    let accepted = 0;
    let refused: number | undefined;
    for (let n = 0; n < 48 && refused === undefined; n++) {
      const res = await fetch(`${server.url}/messages?sessionId=${sessionId}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: batch(n),
      });
      await res.body?.cancel();
      if (res.status === 202) accepted++;
      else refused = res.status;
      // Let the stream take what it can before the next batch.
      await new Promise((r) => setTimeout(r, 5));
    }
    // ~48 MB asked for; the socket's buffers hold a few MB, the server at most 8 MiB more.
    assert.equal(refused, 404, `every batch accepted (${accepted} MB) and the stream still held`);
    assert.ok(accepted >= 8, `dropped after only ${accepted} MB`);
    const live = await pollUntil(() => server.app.sse.liveCount, (n) => n === 0);
    assert.equal(live, 0);
    assert.equal(await server.app.sessions.get(sessionId), null);
    // The connection itself is closed: what the socket buffered is readable, then its end.
    assert.equal(await drainToEnd(conn, 5_000), "closed");
  },
});

Deno.test({
  name: "legacy SSE: --max-sse-per-client holds against streams nobody reads",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using server = await startServer({ args: ["--max-sse-per-client", "3"] });
    const open = [];
    for (let i = 0; i < 3; i++) {
      open.push(await openUnread(server.port, "/sse", /sessionId=[0-9a-f-]{36}/));
    }
    assert.equal(server.app.sse.liveCount, 3);
    const fourth = await openUnread(server.port, "/sse", /\r\n\r\n[\s\S]*\}/);
    assert.match(fourth.text, /^HTTP\/1\.1 429 /, fourth.text);
    assert.match(fourth.text, /\r\nretry-after: 30\r\n/i, fourth.text);
    assert.match(fourth.text, /--max-sse-per-client/);
    fourth.conn.close();
    assert.equal(server.app.sse.liveCount, 3);
    // A client that goes frees its place.
    open.pop()!.conn.close();
    await pollUntil(() => server.app.sse.liveCount, (n) => n === 2);
    const again = await openUnread(server.port, "/sse", /sessionId=[0-9a-f-]{36}/);
    assert.match(again.text, /^HTTP\/1\.1 200 /);
    for (const s of [...open, again]) s.conn.close();
  },
});

/** The head of a raw `GET /mcp` for `sessionId`. */
function mcpGetHeaders(sessionId: string): string[] {
  return [`Mcp-Session-Id: ${sessionId}`, "Mcp-Protocol-Version: 2025-11-25"];
}

Deno.test({
  name: "Streamable HTTP: one GET stream per session, and one nobody reads is dropped past 8 MiB",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const servers: McpServer[] = [];
    await using server = await startServer({
      // Events over the store's whole bound are not kept: the test's megabyte events stay out of KV.
      args: ["--max-event-bytes", "4096"],
      extensions: [(s, _caller, binding) => void (binding.modern ? undefined : servers.push(s))],
    });
    const { sessionId } = await initializeRaw(server.url, "2025-11-25");
    const session = servers.at(-1)!;
    const first = await openUnread(server.port, "/mcp", /\r\n\r\n/, mcpGetHeaders(sessionId));
    assert.match(first.text, /^HTTP\/1\.1 200 /, first.text);
    // The per-session cap: a second GET stream is refused while the first is held.
    const second = await openUnread(server.port, "/mcp", /\r\n\r\n[\s\S]*\}/, [
      ...mcpGetHeaders(sessionId),
    ]);
    assert.match(second.text, /^HTTP\/1\.1 409 /, second.text);
    second.conn.close();
    // Server-initiated events (no related request) go down the GET stream: ~48 MB of them,
    // none read.
    const data = "x".repeat(1 << 20);
    for (let i = 0; i < 48; i++) {
      await session.sendLoggingMessage({ level: "info", data });
      await new Promise((r) => setTimeout(r, 5));
    }
    // Dropped: the connection ends after what the socket buffered, not 48 MB later.
    assert.equal(await drainToEnd(first.conn, 5_000), "closed");
    // The session lives on, and its place for a GET stream is free again.
    const again = await openUnread(server.port, "/mcp", /\r\n\r\n/, mcpGetHeaders(sessionId));
    assert.match(again.text, /^HTTP\/1\.1 200 /, again.text);
    again.conn.close();
  },
});

/** Opens a 2026-07-28 `subscriptions/listen` stream for list changes; the response, unread. */
function listen(base: string, id: number, headers: Record<string, string> = {}) {
  return openListen(base, { toolsListChanged: true }, { id, headers });
}

Deno.test({
  name: "subscriptions/listen: --max-sse-per-client caps one client's open listen streams",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using server = await startServer({ args: ["--max-sse-per-client", "3"] });
    const open: Response[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await listen(server.url, i + 1);
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /event-stream/);
      open.push(res);
    }
    // Before, one client could hold every place of the process (the SDK's 1024) by itself.
    const fourth = await listen(server.url, 4);
    if (fourth.status === 200) await fourth.body!.cancel();
    assert.equal(fourth.status, 429, "a fourth listen stream was opened");
    const body = await fourth.json();
    assert.equal(fourth.headers.get("retry-after"), "30");
    assert.equal(body.id, 4);
    assert.match(body.error.message, /--max-sse-per-client/);
    // A stream that ends frees its place.
    await open.pop()!.body!.cancel();
    const again = await pollUntil(async () => {
      const res = await listen(server.url, 5);
      if (res.status !== 200) await res.body?.cancel();
      return res;
    }, (res) => res.status === 200);
    assert.equal(again.status, 200);
    for (const res of [...open, again]) await res.body!.cancel();
  },
});

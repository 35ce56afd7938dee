/**
 * A request body that never arrives, or arrives too slowly, is answered 408 within the body
 * timeout (--request-timeout), with `Connection: close`; one that grows past the limit while
 * streaming is 413 at once. Over raw TCP (Deno.connect), since fetch() always finishes a body:
 * a declared Content-Length with part of the body then silence, no body at all, the body trickled
 * a byte at a time, a chunked body that stalls, and a chunked body over the limit — on every route
 * that reads a body: /invoke, /mcp, /messages, /api/servers/register, the OAuth server's /token
 * and /register and the dashboard's sign-in form. Before, the OAuth and dashboard forms had no
 * deadline at all (no answer, ever). The last test records what happens to the socket after a
 * 408 when a declared Content-Length was not met.
 */
import assert from "node:assert/strict";
import { startServer } from "../_helpers/server.ts";

const TIMEOUT_MS = 300;
const REGISTRATION_TOKEN = "a-registration-token-for-tests";
const MAX_BODY = 4096;
const enc = new TextEncoder();

/** What the server answered on one connection. */
interface Outcome {
  status: number;
  head: string;
  body: string;
  /** ms from the request head until the whole answer arrived; Infinity if it did not. */
  answeredMs: number;
}

/**
 * Sends `head`, then each of `parts` (after its delay), reading all the while, until a whole
 * answer (by its Content-Length) arrived or `waitMs` passed.
 */
async function speak(
  port: number,
  head: string,
  parts: { delayMs: number; bytes: Uint8Array }[],
  waitMs = TIMEOUT_MS + 4000,
): Promise<Outcome> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const started = performance.now();
  await conn.write(enc.encode(head));
  let stop = false;
  const writer = (async () => {
    for (const p of parts) {
      if (p.delayMs) await new Promise((r) => setTimeout(r, p.delayMs));
      if (stop) return;
      await conn.write(p.bytes).catch(() => (stop = true));
    }
  })();
  let text = "";
  let answeredMs = Infinity;
  const deadline = setTimeout(() => {
    try {
      conn.close();
    } catch { /* closed already */ }
  }, waitMs);
  const buf = new Uint8Array(16 * 1024);
  const dec = new TextDecoder();
  try {
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += dec.decode(buf.subarray(0, n), { stream: true });
      const split = text.indexOf("\r\n\r\n");
      const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, split));
      if (split >= 0 && length && enc.encode(text.slice(split + 4)).length >= Number(length[1])) {
        answeredMs = performance.now() - started;
        break;
      }
    }
  } catch {
    // closed by the deadline above, or reset
  } finally {
    clearTimeout(deadline);
    stop = true;
    try {
      conn.close();
    } catch { /* closed already */ }
    await writer;
  }
  const [headPart, ...rest] = text.split("\r\n\r\n");
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
  return { status, head: headPart, body: rest.join("\r\n\r\n"), answeredMs };
}

function headOf(path: string, type: string, extra: string[]): string {
  return [
    `POST ${path} HTTP/1.1`,
    "Host: 127.0.0.1",
    `Content-Type: ${type}`,
    "Accept: application/json, text/event-stream",
    ...extra,
    "",
    "",
  ].join("\r\n");
}

const chunk = (text: string) => enc.encode(`${text.length.toString(16)}\r\n${text}\r\n`);
const invoke = JSON.stringify({ tool: "get_time", arguments: {} });

const JSON_TYPE = "application/json";
const FORM_TYPE = "application/x-www-form-urlencoded";

/** Every way a body can stall or overflow, against `path` on `port`. */
async function stallEveryWay(
  t: Deno.TestContext,
  port: number,
  path: string,
  type: string,
  maxBytes: number,
  headers: string[] = [],
) {
  const head = (extra: string[]) => headOf(path, type, [...headers, ...extra]);
  const expectTimedOut = (o: Outcome, what: string) => {
    assert.equal(o.status, 408, `${what}: ${JSON.stringify(o)}`);
    assert.match(o.head, /\r\nconnection: close/i, `${what}: ${o.head}`);
    assert.ok(o.answeredMs >= TIMEOUT_MS - 20, `${what}: answered early, ${o.answeredMs} ms`);
    assert.ok(o.answeredMs < TIMEOUT_MS + 2000, `${what}: answered after ${o.answeredMs} ms`);
  };
  await t.step(`${path}: Content-Length declared, part of the body, then nothing`, async () => {
    const o = await speak(port, head(["Content-Length: 1000"]), [
      { delayMs: 0, bytes: enc.encode('{"tool":') },
    ]);
    expectTimedOut(o, path);
  });
  await t.step(`${path}: Content-Length declared, no body at all`, async () => {
    expectTimedOut(await speak(port, head(["Content-Length: 64"]), []), path);
  });
  await t.step(`${path}: Content-Length declared, trickled a byte every 40 ms`, async () => {
    const body = enc.encode(invoke.padEnd(200, " "));
    const parts = [...body].map((b) => ({ delayMs: 40, bytes: new Uint8Array([b]) }));
    expectTimedOut(await speak(port, head([`Content-Length: ${body.length}`]), parts), path);
  });
  await t.step(`${path}: chunked, one chunk, then nothing`, async () => {
    const o = await speak(port, head(["Transfer-Encoding: chunked"]), [
      { delayMs: 0, bytes: chunk('{"tool":') },
    ]);
    expectTimedOut(o, path);
  });
  await t.step(`${path}: chunked, trickled a chunk every 40 ms`, async () => {
    const parts = Array.from({ length: 100 }, () => ({ delayMs: 40, bytes: chunk(" ") }));
    expectTimedOut(await speak(port, head(["Transfer-Encoding: chunked"]), parts), path);
  });
  await t.step(`${path}: chunked past the limit, slowly: 413 at once`, async () => {
    // Eight chunks, 10 ms apart, whatever the limit: a 16 KiB limit in 1 KiB chunks took 200 of
    // the 300 ms and came in late (408) under the parallel suite's load.
    const pieceBytes = Math.max(1024, Math.ceil(maxBytes / 4));
    const piece = "x".repeat(pieceBytes);
    const parts = Array.from({ length: Math.ceil(maxBytes / pieceBytes) + 4 }, (_, i) => ({
      delayMs: i === 0 ? 0 : 10,
      bytes: chunk(piece),
    }));
    const o = await speak(port, head(["Transfer-Encoding: chunked"]), parts);
    assert.equal(o.status, 413, JSON.stringify(o));
    assert.ok(o.answeredMs < TIMEOUT_MS, `answered after ${o.answeredMs} ms`);
  });
}

Deno.test({
  name:
    "stalled body: /invoke, /mcp, /messages, /api/servers/register and the dashboard's sign-in answer 408 in time, 413 at once",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using server = await startServer({
      args: [
        "--max-body",
        String(MAX_BODY),
        "--request-timeout",
        String(TIMEOUT_MS),
        "--registration-token",
        REGISTRATION_TOKEN,
      ],
    });
    await stallEveryWay(t, server.port, "/invoke", JSON_TYPE, MAX_BODY);
    await stallEveryWay(t, server.port, "/mcp", JSON_TYPE, MAX_BODY);
    await stallEveryWay(t, server.port, "/login?return_to=/dashboard", FORM_TYPE, 16 * 1024);
    await stallEveryWay(t, server.port, "/api/servers/register", JSON_TYPE, MAX_BODY, [
      `Authorization: Bearer ${REGISTRATION_TOKEN}`,
    ]);
    // /messages reads its body before it looks the session up.
    await stallEveryWay(t, server.port, "/messages?sessionId=none", JSON_TYPE, MAX_BODY);
    // A whole body is answered as before, and the server still serves.
    const ok = await fetch(`${server.url}/invoke`, {
      method: "POST",
      headers: { "content-type": JSON_TYPE },
      body: invoke,
    });
    assert.equal(ok.status, 200, await ok.text());
  },
});

Deno.test({
  name: "stalled body: the OAuth server's /token and /register answer 408 in time, 413 at once",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using server = await startServer({
      args: ["--auth", "oauth", "--request-timeout", String(TIMEOUT_MS)],
      verifyPassword: () => Promise.resolve(false),
    });
    await stallEveryWay(t, server.port, "/token", FORM_TYPE, 16 * 1024);
    await stallEveryWay(t, server.port, "/register", JSON_TYPE, 16 * 1024);
    const meta = await fetch(`${server.url}/.well-known/oauth-authorization-server`);
    assert.equal(meta.status, 200, await meta.text());
  },
});

/**
 * Reads `conn` until the server ends it or `waitMs` pass: "closed" or "open". Bytes that arrive
 * are read and dropped.
 */
async function endsWithin(conn: Deno.Conn, waitMs: number): Promise<"closed" | "open"> {
  const buf = new Uint8Array(16 * 1024);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    conn.close();
  }, waitMs);
  try {
    while (await conn.read(buf) !== null);
  } catch (e) {
    if (!timedOut && !(e instanceof Deno.errors.ConnectionReset)) throw e;
  } finally {
    clearTimeout(timer);
  }
  return timedOut ? "open" : "closed";
}

Deno.test({
  name:
    "stalled body: after the 408 the socket is held until the client completes its declared body (Deno.serve's limit), then closed",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using server = await startServer({
      args: ["--max-body", String(MAX_BODY), "--request-timeout", String(TIMEOUT_MS)],
    });
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    await conn.write(enc.encode(headOf("/invoke", JSON_TYPE, ["Content-Length: 1000"])));
    await conn.write(enc.encode('{"tool":'));
    const buf = new Uint8Array(16 * 1024);
    let text = "";
    while (!/\r\n\r\n[\s\S]*\}/.test(text)) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    assert.match(text, /^HTTP\/1\.1 408 /);
    assert.match(text, /\r\nconnection: close\r\n/i);
    // Deno 2.9.6's server reads the rest of a declared body before it honours `Connection:
    // close`, and nothing a handler does changes that (README, Deployment). Should this start
    // failing, the runtime now closes such sockets itself: say so there.
    const held = endsWithin(conn, 1000);
    assert.equal(await held, "open", "the runtime closed the socket before the body was complete");
    const again = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    await again.write(enc.encode(headOf("/invoke", JSON_TYPE, ["Content-Length: 1000"])));
    await again.write(enc.encode('{"tool":'));
    await new Promise((r) => setTimeout(r, TIMEOUT_MS + 200));
    // The client sends what it declared: the answer given, the connection ends at once.
    await again.write(enc.encode(" ".repeat(1000 - 8)));
    assert.equal(await endsWithin(again, 2000), "closed");
  },
});

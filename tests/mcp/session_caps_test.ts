/**
 * Session caps (issue 9 §6): Streamable HTTP sessions per process, per principal and per client
 * IP, and legacy SSE streams per client, each refused past its cap with a clear error naming the
 * flag — a real server on an ephemeral port, raw fetch.
 */
import assert from "node:assert/strict";
import { startServer } from "../_helpers/server.ts";
import { initializeRaw, postInitialize } from "../_helpers/raw.ts";
import { pollUntil } from "../_helpers/wait.ts";

const TOKEN = "cap-test-token-0123456789abcdef";

function initialize(url: string, headers: Record<string, string> = {}) {
  return postInitialize(url, "2025-06-18", headers);
}

Deno.test("session caps: per client IP (429) and per process (503), freed by DELETE", async () => {
  const server = await startServer({ args: ["--max-sessions-per-ip", "3", "--max-sessions", "5"] });
  try {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await initializeRaw(server.url, "2025-06-18")).sessionId);
    const over = await initialize(server.url);
    assert.equal(over.status, 429);
    assert.ok(over.headers.get("retry-after"));
    assert.match((await over.json()).error.message, /--max-sessions-per-ip/);
    assert.equal(server.app.streamable.liveCount, 3);
    // Ending one frees its place.
    const del = await fetch(`${server.url}/mcp`, {
      method: "DELETE",
      headers: { "mcp-session-id": ids[0], "mcp-protocol-version": "2025-06-18" },
    });
    assert.equal(del.status, 200);
    await del.body?.cancel();
    ids.push((await initializeRaw(server.url, "2025-06-18")).sessionId);
  } finally {
    await server.close();
  }
  await using total = await startServer({
    args: ["--max-sessions-per-ip", "10", "--max-sessions", "2"],
  });
  await initializeRaw(total.url, "2025-06-18");
  await initializeRaw(total.url, "2025-06-18");
  const over = await initialize(total.url);
  assert.equal(over.status, 503);
  assert.match((await over.json()).error.message, /--max-sessions\b/);
  assert.equal(total.app.streamable.liveCount, 2);
});

Deno.test("session caps: per authenticated principal", async () => {
  await using server = await startServer({
    args: ["--token", TOKEN, "--max-sessions-per-principal", "2"],
  });
  const auth = { authorization: `Bearer ${TOKEN}` };
  await initializeRaw(server.url, "2025-06-18", auth);
  await initializeRaw(server.url, "2025-06-18", auth);
  const over = await initialize(server.url, auth);
  assert.equal(over.status, 429);
  assert.match((await over.json()).error.message, /--max-sessions-per-principal/);
});

Deno.test("session caps: legacy SSE streams per client", async () => {
  await using server = await startServer({ args: ["--max-sse-per-client", "2"] });
  const open = () => fetch(`${server.url}/sse`, { headers: { accept: "text/event-stream" } });
  const a = await open();
  const b = await open();
  assert.equal(a.status, 200);
  assert.equal(b.status, 200);
  const c = await open();
  assert.equal(c.status, 429);
  assert.match((await c.json()).error.message, /--max-sse-per-client/);
  assert.equal(server.app.sse.liveCount, 2);
  await a.body?.cancel();
  await pollUntil(() => server.app.sse.liveCount, (n) => n <= 1, {
    timeoutMs: 1_000,
    intervalMs: 20,
  });
  const d = await open();
  assert.equal(d.status, 200);
  await b.body?.cancel();
  await d.body?.cancel();
});

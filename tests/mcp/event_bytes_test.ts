/**
 * The event store's bytes per session (issue 9 §6): 100 calls with large results on one SSE
 * session once kept every event (hundreds of megabytes in KV); now the session keeps at most
 * --max-event-bytes, the oldest events (and their chunks) deleted first. A real server on an
 * ephemeral port, raw fetch, the real KV measured.
 */
import assert from "node:assert/strict";
import { startServer, UNTHROTTLED_POLICY } from "../_helpers/server.ts";
import { initializeRaw, rpc } from "../_helpers/raw.ts";
import { eventSessionPrefix } from "../../src/store/mod.ts";

async function storedBytes(kv: Deno.Kv, sessionId: string): Promise<number> {
  let bytes = 0;
  for await (const e of kv.list({ prefix: eventSessionPrefix(sessionId) })) {
    bytes += typeof e.value === "string" ? e.value.length : JSON.stringify(e.value).length;
  }
  return bytes;
}

Deno.test("event store: one session's stored events stay within --max-event-bytes", async () => {
  const cap = 256 * 1024;
  await using server = await startServer({
    args: ["--max-event-bytes", String(cap), "--max-body", "4194304"],
    policy: UNTHROTTLED_POLICY,
  });
  const { sessionId } = await initializeRaw(server.url, "2025-06-18");
  // Each result carries the text twice (content and structured): about 120 KB per event,
  // and every tenth one over the 64 KB KV value limit in one string, so it is chunked.
  for (let i = 0; i < 100; i++) {
    const text = (i % 10 === 0 ? "b" : "a").repeat(i % 10 === 0 ? 90_000 : 60_000);
    const r = await rpc(server.url, sessionId, "tools/call", {
      name: "transform_string",
      arguments: { text, operation: "upper" },
    }, { version: "2025-06-18" });
    assert.equal(r.status, 200);
  }
  await new Promise((r) => setTimeout(r, 500));
  const bytes = await storedBytes(server.kv, sessionId);
  assert.ok(bytes > 0, "events are still kept for resumption");
  // The bound, plus one chunked event's worth of slack for writes still settling.
  assert.ok(bytes <= cap + 200_000, `stored ${bytes} bytes for a ${cap}-byte bound`);
});

import assert from "node:assert/strict";
import { startServer, type TestServer } from "../_helpers/server.ts";
import { testTools } from "../_helpers/tools.ts";
import { ACCEPT_BOTH, initializeRaw, parseSseMessages, rpc } from "../_helpers/raw.ts";
import { tempDir } from "../_helpers/tmp.ts";
import { waitFor } from "../_helpers/wait.ts";
import { eventSessionPrefix } from "../../src/store/mod.ts";

/** Waits until the session's stored events hold the reply to request 42: the tool finished. */
async function replyStored(kv: Deno.Kv, sessionId: string): Promise<void> {
  await waitFor(async () => {
    for await (const e of kv.list({ prefix: eventSessionPrefix(sessionId) })) {
      // An event is kept as { s: stream id, m: the message's JSON }.
      const m = (e.value as { m?: unknown } | null)?.m;
      if (typeof m === "string" && JSON.parse(m).id === 42) return true;
    }
    return false;
  }, "the reply to request 42 is stored");
}

/** Starts a slow call, reads only the priming event, then drops the connection. */
async function startAndDisconnect(server: TestServer, sessionId: string): Promise<string> {
  const ac = new AbortController();
  const res = await fetch(`${server.url}/mcp`, {
    method: "POST",
    signal: ac.signal,
    headers: {
      accept: ACCEPT_BOTH,
      "content-type": "application/json",
      "mcp-session-id": sessionId,
      "mcp-protocol-version": "2025-11-25",
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 42,
      method: "tools/call",
      params: { name: "test_sleep", arguments: { ms: 300 } },
    }),
  });
  assert.equal(res.status, 200);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  while (!buf.includes("\n\n")) buf += (await reader.read()).value ?? "";
  const primingId = /^id: (\S+)$/m.exec(buf)?.[1];
  assert.ok(primingId, `priming event carries an id: ${buf}`);
  ac.abort();
  await reader.cancel().catch(() => {});
  return primingId;
}

async function resume(server: TestServer, sessionId: string, lastEventId: string) {
  const ac = new AbortController();
  const res = await fetch(`${server.url}/mcp`, {
    signal: ac.signal,
    headers: {
      accept: "text/event-stream",
      "mcp-session-id": sessionId,
      "mcp-protocol-version": "2025-11-25",
      "last-event-id": lastEventId,
    },
  });
  assert.equal(res.status, 200);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  const deadline = Date.now() + 5000;
  while (!buf.includes('"id":42') && Date.now() < deadline) {
    buf += (await reader.read()).value ?? "";
  }
  ac.abort();
  await reader.cancel().catch(() => {});
  return parseSseMessages(buf);
}

Deno.test("resumability: a client reconnecting with Last-Event-ID gets the response it missed", async () => {
  await using server = await startServer({ extraTools: testTools });
  const { sessionId } = await initializeRaw(server.url, "2025-11-25");
  const primingId = await startAndDisconnect(server, sessionId);
  await replyStored(server.kv, sessionId); // the tool finishes while nobody listens
  const events = await resume(server, sessionId, primingId);
  const reply = events.find((e) => (e.data as { id?: number }).id === 42);
  assert.ok(reply, "the missed reply was replayed");
  assert.ok(reply.id, "replayed events carry their ids");
  assert.deepEqual(
    (reply.data as { result: { structuredContent: { data: unknown } } }).result.structuredContent
      .data,
    {
      slept_ms: 300,
    },
  );
});

Deno.test("resumability: another process sharing the KV replays the missed events", async () => {
  await using tmp = await tempDir();
  using kvA = await Deno.openKv(`${tmp.path}/w.db`);
  using kvB = await Deno.openKv(`${tmp.path}/w.db`);
  await using a = await startServer({ extraTools: testTools, kv: kvA });
  await using b = await startServer({ extraTools: testTools, kv: kvB });
  const { sessionId } = await initializeRaw(a.url, "2025-11-25");
  const primingId = await startAndDisconnect(a, sessionId);
  await replyStored(kvA, sessionId);
  const events = await resume(b, sessionId, primingId);
  assert.ok(events.some((e) => (e.data as { id?: number }).id === 42));
});

Deno.test("resumability: a malformed Last-Event-ID is refused with 400", async () => {
  await using server = await startServer();
  const { sessionId } = await initializeRaw(server.url, "2025-11-25");
  const res = await fetch(`${server.url}/mcp`, {
    headers: {
      accept: "text/event-stream",
      "mcp-session-id": sessionId,
      "last-event-id": "../../etc/passwd",
    },
  });
  assert.equal(res.status, 400);
  await res.body?.cancel();
});

Deno.test("resumability: stored events are bounded per session", async () => {
  await using server = await startServer({ args: ["--max-events", "20"] });
  const { sessionId } = await initializeRaw(server.url, "2025-11-25");
  const stored = async () => {
    let n = 0;
    for await (const e of server.kv.list({ prefix: ["mcp_event", sessionId] })) {
      if (e.key.length === 3) n++;
    }
    return n;
  };
  for (let i = 0; i < 60; i++) {
    // The SDK's path (taken for a `_meta` key it alone handles) stores every event it sends.
    const r = await rpc(server.url, sessionId, "tools/call", {
      name: "calculate",
      arguments: { expression: `${i}+1` },
      _meta: { "x-test": 1 },
    }, { version: "2025-11-25" });
    assert.equal(r.status, 200);
  }
  await new Promise((r) => setTimeout(r, 200));
  const n = await stored();
  // 60 replies were written (priming events are ids only); pruning keeps the newest 20,
  // running every 10 writes.
  assert.ok(n >= 20 && n < 30, `stored ${n}`);
});

Deno.test("resumability: a direct answer that reached its connection stores no event; one cut off is stored", async () => {
  await using server = await startServer({ extraTools: testTools });
  const { sessionId } = await initializeRaw(server.url, "2025-11-25");
  const count = async () => {
    await new Promise((r) => setTimeout(r, 200)); // anything queued would have committed
    let n = 0;
    for await (const _ of server.kv.list({ prefix: eventSessionPrefix(sessionId) })) n++;
    return n;
  };
  const initialized = await count(); // the initialize reply, on the SDK's path
  const before = server.app.streamable.directCalls;
  for (let i = 0; i < 5; i++) {
    const r = await rpc(server.url, sessionId, "tools/call", {
      name: "calculate",
      arguments: { expression: `${i}+1` },
    }, { version: "2025-11-25" });
    assert.ok(r.body?.result, JSON.stringify(r.body));
  }
  assert.equal(server.app.streamable.directCalls, before + 5);
  assert.equal(await count(), initialized, "answers that reached their connection were stored");
  // Cut off mid-call, the answer is stored when it comes (replayReply's test shows it replays).
  await startAndDisconnect(server, sessionId);
  await replyStored(server.kv, sessionId);
});

// deno-lint-ignore-file no-explicit-any -- SSE events and results are probed field by field
/**
 * The direct path of a 2025-era session's plain `tools/call` (src/mcp/session_direct.ts): taken
 * for the plain request only, and on the wire the same as the SDK's path — headers, the priming
 * event, notifications on the request's stream, the response, its replay through the SDK's GET
 * handler, JSON mode — plus cancellation and the SDK clients of both lines.
 */
import assert from "node:assert/strict";
import {
  Client as V2Client,
  StreamableHTTPClientTransport as V2Transport,
} from "@modelcontextprotocol/client";
import { connectStreamable } from "../_helpers/client.ts";
import { startServer, type TestServer, UNTHROTTLED_POLICY } from "../_helpers/server.ts";
import { ACCEPT_BOTH, initializeRaw, parseSseMessages } from "../_helpers/raw.ts";
import { startEverything } from "../_helpers/upstreams.ts";
import { testTools } from "../_helpers/tools.ts";
import { parseUpstreams } from "../../src/gateway/mod.ts";

const VERSION = "2025-11-25";

interface Event {
  readonly id?: string;
  readonly data: string;
}

/** Every SSE event of a body, the priming event (empty data) included. */
function eventsOf(text: string): Event[] {
  const out: Event[] = [];
  for (const block of text.split("\n\n")) {
    if (block.trim() === "" || block.startsWith(":")) continue;
    let id: string | undefined;
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("id: ")) id = line.slice(4);
      else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
    }
    out.push({ ...(id !== undefined ? { id } : {}), data: data.join("\n") });
  }
  return out;
}

function post(server: TestServer, sessionId: string, body: unknown, version = VERSION) {
  return fetch(`${server.url}/mcp`, {
    method: "POST",
    headers: {
      accept: ACCEPT_BOTH,
      "content-type": "application/json",
      "mcp-session-id": sessionId,
      "mcp-protocol-version": version,
    },
    body: JSON.stringify(body),
  });
}

const call = (id: number, name: string, args: unknown, meta?: unknown) => ({
  jsonrpc: "2.0",
  id,
  method: "tools/call",
  params: { name, arguments: args, ...(meta !== undefined ? { _meta: meta } : {}) },
});

/** The same request on the SDK's path: an extra `_meta` key the direct path does not take. */
const SDK_PATH_META = { "x-test": 1 };

const SSE_HEADERS = [
  "cache-control",
  "connection",
  "content-type",
  "mcp-session-id",
  "x-accel-buffering",
];

function headersOf(res: Response, names: readonly string[]) {
  return Object.fromEntries(names.map((n) => [n, res.headers.get(n)]));
}

/** What two answers of the same call must share (the vault index and timings differ). */
function shapeOf(result: any) {
  return {
    keys: Object.keys(result).sort(),
    isError: result.isError,
    content: result.content.map((c: any) => c.type),
    envelopeKeys: Object.keys(result.structuredContent ?? {}).sort(),
    data: result.structuredContent?.data,
    verdict: result.structuredContent?.verdict,
  };
}

Deno.test("session direct path: a plain tools/call is answered off the SDK's dispatch, with the SDK path's headers, priming event and result", async () => {
  await using server = await startServer({ policy: UNTHROTTLED_POLICY });
  const { sessionId } = await initializeRaw(server.url, VERSION);
  const before = server.app.streamable.directCalls;

  const direct = await post(server, sessionId, call(7, "calculate", { expression: "6*7" }));
  assert.equal(direct.status, 200);
  const directText = await direct.text();
  assert.equal(server.app.streamable.directCalls, before + 1);

  const sdk = await post(
    server,
    sessionId,
    call(8, "calculate", { expression: "6*7" }, SDK_PATH_META),
  );
  assert.equal(sdk.status, 200);
  const sdkText = await sdk.text();
  assert.equal(server.app.streamable.directCalls, before + 1, "the unusual _meta goes to the SDK");

  assert.deepEqual(headersOf(direct, SSE_HEADERS), headersOf(sdk, SSE_HEADERS));
  const [dEvents, sEvents] = [eventsOf(directText), eventsOf(sdkText)];
  assert.equal(dEvents.length, 2, directText);
  assert.equal(sEvents.length, 2, sdkText);
  // The priming event (2025-11-25 with an event store): an id and empty data, on both paths.
  assert.ok(dEvents[0].id && dEvents[0].data === "", directText);
  assert.ok(sEvents[0].id && sEvents[0].data === "", sdkText);
  assert.ok(dEvents[1].id && dEvents[1].id !== dEvents[0].id);
  const [d, s] = [JSON.parse(dEvents[1].data), JSON.parse(sEvents[1].data)];
  assert.equal(d.id, 7);
  assert.equal(s.id, 8);
  assert.deepEqual(Object.keys(d).sort(), Object.keys(s).sort());
  assert.deepEqual(shapeOf(d.result), shapeOf(s.result));
  assert.equal(d.result.structuredContent.data.result, 42);

  // Both were governed and sealed: two tool-call entries for calculate.
  const head = await server.app.ledger.head();
  const calls: any[] = [];
  for await (const e of server.app.ledger.entries(0, head.size)) {
    const v = JSON.parse(new TextDecoder().decode(e.bytes));
    if (v.tool === "calculate") calls.push(v);
  }
  assert.equal(calls.length, 2, JSON.stringify(calls));
  assert.deepEqual(calls.map((c) => c.session), [sessionId, sessionId]);
});

Deno.test("session direct path: Last-Event-ID replays a direct answer through the SDK's GET handler as it replays the SDK's own", async () => {
  await using server = await startServer({ policy: UNTHROTTLED_POLICY });
  const { sessionId } = await initializeRaw(server.url, VERSION);
  const replay = async (body: unknown) => {
    const res = await post(server, sessionId, body);
    const events = eventsOf(await res.text());
    const again = await fetch(`${server.url}/mcp`, {
      headers: {
        accept: "text/event-stream",
        "mcp-session-id": sessionId,
        "mcp-protocol-version": VERSION,
        "last-event-id": events[0].id!,
      },
    });
    assert.equal(again.status, 200);
    return { events, replayed: eventsOf(await again.text()) };
  };
  const before = server.app.streamable.directCalls;
  const direct = await replay(call(11, "calculate", { expression: "1+1" }));
  assert.equal(server.app.streamable.directCalls, before + 1);
  const sdk = await replay(call(12, "calculate", { expression: "1+1" }, SDK_PATH_META));
  for (const { events, replayed } of [direct, sdk]) {
    // The replay holds exactly the response event, with its id and bytes.
    assert.deepEqual(replayed, [events[1]]);
  }
});

Deno.test("session direct path: a call's log and progress notifications reach its stream, in the SDK path's order", async () => {
  await using server = await startServer({ policy: UNTHROTTLED_POLICY });
  const { sessionId } = await initializeRaw(server.url, VERSION);
  const published = await post(
    server,
    sessionId,
    call(20, "bus_publish", { topic: "t1", message: { n: 1 } }),
  );
  // Read to its answer: the publish is committed only when its call has answered (cancelling the
  // stream early let the subscribe below run first on a loaded machine, and find nothing).
  const ack = parseSseMessages(await published.text()).find((m: any) => m.data.id === 20);
  assert.equal((ack?.data as any)?.result?.isError, undefined, JSON.stringify(ack));
  const methods = async (body: unknown) => {
    const res = await post(server, sessionId, body);
    return parseSseMessages(await res.text()).map((m: any) =>
      m.data.method ?? (m.data.result ? "result" : "error")
    );
  };
  const before = server.app.streamable.directCalls;
  const args = { topic: "t1", after_seq: 0, wait_s: 0 };
  const direct = await methods(call(21, "bus_subscribe", args, { progressToken: "p1" }));
  assert.equal(server.app.streamable.directCalls, before + 1);
  const sdk = await methods(
    call(22, "bus_subscribe", args, { progressToken: "p2", ...SDK_PATH_META }),
  );
  assert.deepEqual(direct, ["notifications/message", "notifications/progress", "result"]);
  assert.deepEqual(direct, sdk);
});

Deno.test("session direct path: notifications/cancelled ends a direct call's stream without an answer, and frees its id", async () => {
  await using server = await startServer({ policy: UNTHROTTLED_POLICY });
  const { sessionId } = await initializeRaw(server.url, VERSION);
  const waiting = await post(
    server,
    sessionId,
    call(30, "bus_subscribe", { topic: "quiet", wait_s: 20 }),
  );
  assert.equal(waiting.status, 200);
  const text = waiting.text();
  const cancel = await post(server, sessionId, {
    jsonrpc: "2.0",
    method: "notifications/cancelled",
    params: { requestId: 30, reason: "test" },
  });
  assert.equal(cancel.status, 202);
  const events = eventsOf(await text);
  // Only the priming event: the cancelled call sends no response (it would after 20 s).
  assert.equal(events.length, 1, JSON.stringify(events));
  const reused = await post(server, sessionId, call(30, "calculate", { expression: "2+2" }));
  assert.equal(reused.status, 200);
  const answer = parseSseMessages(await reused.text()).find((m: any) => m.data.id === 30);
  assert.equal((answer?.data as any)?.result?.structuredContent?.data?.result, 4);
});

Deno.test("session direct path: a client that declared sampling or elicitation stays on the SDK's path", async () => {
  await using server = await startServer({ policy: UNTHROTTLED_POLICY });
  for (const capabilities of [{ sampling: {} }, { elicitation: {} }]) {
    const init = await fetch(`${server.url}/mcp`, {
      method: "POST",
      headers: { accept: ACCEPT_BOTH, "content-type": "application/json" },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: { protocolVersion: VERSION, capabilities, clientInfo: { name: "c", version: "1" } },
      }),
    });
    const sessionId = init.headers.get("mcp-session-id")!;
    await init.body?.cancel();
    const before = server.app.streamable.directCalls;
    const res = await post(server, sessionId, call(2, "calculate", { expression: "3*3" }));
    const answer = parseSseMessages(await res.text()).find((m: any) => m.data.id === 2);
    assert.equal((answer?.data as any).result.structuredContent.data.result, 9);
    assert.equal(server.app.streamable.directCalls, before, JSON.stringify(capabilities));
  }
});

Deno.test("session direct path: JSON response mode answers a plain call as JSON with the session header, as the SDK does", async () => {
  await using server = await startServer({
    args: ["--response-mode", "json"],
    policy: UNTHROTTLED_POLICY,
  });
  const { sessionId } = await initializeRaw(server.url, VERSION);
  const before = server.app.streamable.directCalls;
  const direct = await post(server, sessionId, call(5, "calculate", { expression: "10/4" }));
  const sdk = await post(
    server,
    sessionId,
    call(6, "calculate", { expression: "10/4" }, SDK_PATH_META),
  );
  assert.equal(server.app.streamable.directCalls, before + 1);
  const names = ["content-type", "mcp-session-id"];
  assert.deepEqual(headersOf(direct, names), headersOf(sdk, names));
  assert.equal(direct.headers.get("mcp-session-id"), sessionId);
  const [d, s] = [await direct.json(), await sdk.json()];
  assert.deepEqual(Object.keys(d).sort(), Object.keys(s).sort());
  assert.deepEqual(shapeOf(d.result), shapeOf(s.result));
  assert.equal(d.result.structuredContent.data.result, 2.5);
});

Deno.test("session direct path: the v1 and v2 SDK clients' calls take it and read their results", async () => {
  await using server = await startServer({ policy: UNTHROTTLED_POLICY });
  const before = server.app.streamable.directCalls;
  const { client } = await connectStreamable(server.url);
  const v1 = await client.callTool({ name: "calculate", arguments: { expression: "2^10" } });
  assert.equal((v1.structuredContent as any).data.result, 1024);
  await client.close();
  const v2 = new V2Client({ name: "v2-2025", version: "1" }, {
    versionNegotiation: { mode: "legacy" },
  });
  await v2.connect(new V2Transport(new URL(`${server.url}/mcp`)));
  assert.equal(v2.getNegotiatedProtocolVersion(), VERSION);
  const r = await v2.callTool({ name: "calculate", arguments: { expression: "2^11" } });
  assert.equal((r.structuredContent as any).data.result, 2048);
  await v2.close();
  assert.equal(server.app.streamable.directCalls, before + 2);
});

Deno.test({
  name:
    "session direct path: an upstream tool's plain call takes it too, with the SDK path's result",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const up = await startEverything("streamableHttp");
    try {
      await using server = await startServer({
        policy: UNTHROTTLED_POLICY,
        upstreams: parseUpstreams(
          JSON.stringify([{ name: "everything", transport: "streamable-http", url: up.url }]),
        ),
      });
      const { sessionId } = await initializeRaw(server.url, VERSION);
      const before = server.app.streamable.directCalls;
      const answer = async (body: unknown) => {
        const res = await post(server, sessionId, body);
        return (parseSseMessages(await res.text()).find((m: any) => "result" in m.data)
          ?.data as any)
          ?.result;
      };
      const direct = await answer(call(40, "everything__echo", { message: "hi" }));
      assert.equal(server.app.streamable.directCalls, before + 1);
      const sdk = await answer(call(41, "everything__echo", { message: "hi" }, SDK_PATH_META));
      assert.equal(server.app.streamable.directCalls, before + 1);
      assert.deepEqual(direct.content, sdk.content);
      assert.deepEqual(Object.keys(direct).sort(), Object.keys(sdk).sort());
      assert.deepEqual(
        Object.keys(direct._meta["warden/governance"]).sort(),
        Object.keys(sdk._meta["warden/governance"]).sort(),
      );
    } finally {
      await up.stop();
    }
  },
});

Deno.test("session direct path: one shared timer keeps open streams alive, and stops for a stream that ended", async () => {
  const { keepStreamAlive } = await import("../../src/mcp/session_direct.ts");
  const open = (everyMs: number) => {
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const stream = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
    const stop = keepStreamAlive(controller, new TextEncoder(), everyMs);
    return { reader: stream.pipeThrough(new TextDecoderStream()).getReader(), stop, controller };
  };
  // The shared timer is unref'd (it never keeps a process up): this one keeps the test's up.
  const hold = setTimeout(() => {}, 10_000);
  const a = open(100);
  const b = open(100);
  assert.equal((await a.reader.read()).value, ": keepalive\n\n");
  assert.equal((await b.reader.read()).value, ": keepalive\n\n");
  a.stop();
  b.controller.close(); // closed under the ticker: dropped at its next write
  const late = await Promise.race([
    a.reader.read().then(() => "written after stop"),
    new Promise((r) => setTimeout(() => r("quiet"), 1_500)),
  ]);
  assert.equal(late, "quiet");
  assert.equal((await b.reader.read()).done, true);
  a.controller.close();
  clearTimeout(hold);
});

Deno.test("session direct path: a quick call's events go out as one body; a slow one streams what it sent, then the rest", async () => {
  await using server = await startServer({ policy: UNTHROTTLED_POLICY, extraTools: testTools });
  const { sessionId } = await initializeRaw(server.url, VERSION);
  const kinds = (text: string) =>
    eventsOf(text).map((e) => {
      if (e.data === "") return "priming";
      const m = JSON.parse(e.data);
      return m.method ?? (m.result ? "result" : "error");
    });
  const args = (ms: number) => ({ ms, progress_first: true });
  // Quick: priming, the progress sent before the answer, the answer, in the SDK path's order.
  const quick = await post(
    server,
    sessionId,
    call(40, "test_sleep", args(0), { progressToken: 1 }),
  );
  const sdk = await post(
    server,
    sessionId,
    call(41, "test_sleep", args(0), { progressToken: 2, ...SDK_PATH_META }),
  );
  assert.deepEqual(kinds(await quick.text()), ["priming", "notifications/progress", "result"]);
  assert.deepEqual(kinds(await sdk.text()), ["priming", "notifications/progress", "result"]);
  // Slow (past the quick window): the priming event and the early progress arrive while the call
  // still runs — the answer follows on the same stream.
  const slow = await post(
    server,
    sessionId,
    call(42, "test_sleep", args(600), { progressToken: 3 }),
  );
  const reader = slow.body!.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!seen.includes("notifications/progress")) seen += (await reader.read()).value ?? "";
  assert.ok(!seen.includes('"result"'), "the early events waited for the answer");
  for (let r = await reader.read(); !r.done; r = await reader.read()) seen += r.value;
  assert.deepEqual(kinds(seen), ["priming", "notifications/progress", "result"]);
  assert.equal(JSON.parse(eventsOf(seen)[2].data).result.structuredContent.data.slept_ms, 600);
});

/**
 * The upstream fetch that hands the SDK a POST's SSE answer as JSON (src/gateway/sse_answer.ts),
 * against a real HTTP server on an ephemeral port sending the bodies an upstream sends: the
 * 2025-11-25 priming event then the answer becomes JSON; anything else first is the very stream.
 */
import assert from "node:assert/strict";
import { answerAsJson } from "../../src/gateway/sse_answer.ts";

const ANSWER = '{"result":{"content":[{"type":"text","text":"Echo: hi"}]},"jsonrpc":"2.0","id":2}';

/** Serves each POST the chunks of `bodies[path]`, in order, with a pause between chunks. */
function upstream(bodies: Record<string, string[]>) {
  const ac = new AbortController();
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", signal: ac.signal, onListen() {} },
    (req) => {
      const chunks = bodies[new URL(req.url).pathname] ?? [];
      const enc = new TextEncoder();
      let i = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(c) {
          if (i === chunks.length) return c.close();
          await new Promise((r) => setTimeout(r, 5));
          const chunk = chunks[i++];
          if (chunk === "<cut>") return c.error(new Error("cut"));
          c.enqueue(enc.encode(chunk));
        },
      });
      return new Response(body, {
        headers: { "content-type": "text/event-stream", "mcp-session-id": "s-1" },
      });
    },
  );
  return {
    url: (path: string) => `http://127.0.0.1:${server.addr.port}${path}`,
    async [Symbol.asyncDispose]() {
      ac.abort();
      await server.finished;
    },
  };
}

const post = { method: "POST", body: "{}", headers: { "content-type": "application/json" } };

Deno.test("sse answer: a priming event then the answer is handed over as JSON, headers kept", async () => {
  await using up = upstream({
    "/a": ["id: p1\ndata: \n\n", `event: message\nid: e2\ndata: ${ANSWER}\n\n`],
    // The answer split across chunks, and `data:` without its space.
    "/b": [
      "id: p1\ndata: \n\nevent: mess",
      `age\nid: e2\ndata:${ANSWER.slice(0, 9)}`,
      `${ANSWER.slice(9)}\n\n`,
    ],
  });
  const f = answerAsJson(fetch);
  for (const path of ["/a", "/b"]) {
    const res = await f(up.url(path), post);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/json");
    assert.equal(res.headers.get("mcp-session-id"), "s-1");
    assert.deepEqual(await res.json(), JSON.parse(ANSWER));
  }
});

Deno.test("sse answer: a notification, a request, a retry hint or CR line endings first hand over the very stream", async () => {
  const note =
    'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{}}\n\n';
  const ask =
    'event: message\nid: e1\ndata: {"jsonrpc":"2.0","id":7,"method":"sampling/createMessage"}\n\n';
  const bodies: Record<string, string[]> = {
    "/note": ["id: p1\ndata: \n\n", note, `event: message\ndata: ${ANSWER}\n\n`],
    "/ask": [ask, `data: ${ANSWER}\n\n`],
    "/retry": ["id: p1\nretry: 1000\ndata: \n\n", `data: ${ANSWER}\n\n`],
    "/cr": ["id: p1\r\ndata: \r\n\r\n", `data: ${ANSWER}\r\n\r\n`],
    "/end": ["id: p1\ndata: \n\n"],
  };
  await using up = upstream(bodies);
  const f = answerAsJson(fetch);
  for (const [path, chunks] of Object.entries(bodies)) {
    const res = await f(up.url(path), post);
    assert.equal(res.headers.get("content-type"), "text/event-stream", path);
    assert.equal(await res.text(), chunks.join(""), `${path}: the same bytes`);
  }
});

Deno.test("sse answer: a stream cut off before the answer reaches the SDK cut off, after what came", async () => {
  await using up = upstream({ "/cut": ["id: p1\ndata: \n\n", "<cut>"] });
  const res = await answerAsJson(fetch)(up.url("/cut"), post);
  assert.equal(res.headers.get("content-type"), "text/event-stream");
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  assert.equal((await reader.read()).value, "id: p1\ndata: \n\n");
  await assert.rejects(reader.read());
});

Deno.test("sse answer: GETs and JSON answers pass untouched", async () => {
  await using up = upstream({ "/a": [`data: ${ANSWER}\n\n`] });
  const res = await answerAsJson(fetch)(up.url("/a"));
  assert.equal(res.headers.get("content-type"), "text/event-stream");
  assert.equal(await res.text(), `data: ${ANSWER}\n\n`);
});

Deno.test("sse answer: an abort ends a handed-over stream upstream; done streams leave no listener", async () => {
  // A stream that never ends after its first event (a `subscriptions/listen` stream); the server
  // notes when the client hangs up.
  const { promise: hungUp, resolve } = Promise.withResolvers<string>();
  const ac0 = new AbortController();
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", signal: ac0.signal, onListen() {} },
    (req) => {
      const enc = new TextEncoder();
      if (new URL(req.url).pathname === "/answer") {
        return new Response(`id: p1\ndata: \n\nevent: message\ndata: ${ANSWER}\n\n`, {
          headers: { "content-type": "text/event-stream" },
        });
      }
      req.signal.addEventListener("abort", () => resolve("hung up"));
      const note = 'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/message"}\n\n';
      return new Response(
        new ReadableStream({
          start: (c) => c.enqueue(enc.encode(note)),
          cancel: () => resolve("hung up"),
        }),
        { headers: { "content-type": "text/event-stream" } },
      );
    },
  );
  const url = (path: string) => `http://127.0.0.1:${server.addr.port}${path}`;
  try {
    const ac = new AbortController();
    const signal = ac.signal;
    // The transport's signal lives as long as the connection: count what is added to it.
    let listeners = 0;
    const add = signal.addEventListener.bind(signal);
    const remove = signal.removeEventListener.bind(signal);
    signal.addEventListener = ((...a: Parameters<typeof add>) => {
      listeners++;
      add(...a);
    }) as typeof add;
    signal.removeEventListener = ((...a: Parameters<typeof remove>) => {
      listeners--;
      remove(...a);
    }) as typeof remove;
    const f = answerAsJson(fetch);
    for (let i = 0; i < 20; i++) await (await f(url("/answer"), { ...post, signal })).text();
    // The answers' drains end on their own; then nothing of those 20 is left on the signal.
    const until = Date.now() + 2000;
    while (listeners > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    assert.equal(listeners, 0, "listeners left on the transport's signal");

    const listen = await f(url("/listen"), { ...post, signal });
    const reader = listen.body!.getReader();
    assert.ok((await reader.read()).value, "the stream is handed over");
    ac.abort(); // the transport's close()
    await reader.read().catch(() => {});
    // The end reaches the upstream (tests/gateway/shutdown_listen_test.ts: through the SDK it did
    // not, before the reader here cancelled the stream on the abort).
    const seen = await Promise.race([hungUp, new Promise((r) => setTimeout(r, 2000, "open"))]);
    assert.equal(seen, "hung up", "the upstream still holds the stream");
  } finally {
    ac0.abort();
    await server.finished;
  }
});

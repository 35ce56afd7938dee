/**
 * Hostile input (issue 9 §6): deep nesting, huge arrays and ill-typed params of known methods
 * get 400 with -32602 and one short reason — never 500, -32603, a zod dump or a stack overflow;
 * a JSON-RPC id reused while its request is in flight is refused instead of hanging both; legacy
 * SSE refuses requests before initialize. A real server on an ephemeral port, raw fetch.
 */
import assert from "node:assert/strict";
import { startServer, UNTHROTTLED_POLICY } from "../_helpers/server.ts";
import { ACCEPT_BOTH, initializeRaw } from "../_helpers/raw.ts";
import { sleepTool } from "../_helpers/tools.ts";

const deepArray = "[".repeat(10_000) + "]".repeat(10_000);
const deepObject = '{"a":'.repeat(10_000) + "1" + "}".repeat(10_000);

Deno.test("hostile input: deep, wide and ill-typed params are 400/-32602 with a short reason", async () => {
  const server = await startServer({ args: ["--max-body", "4194304"] });
  try {
    const { sessionId } = await initializeRaw(server.url, "2025-06-18");
    const post = (body: string, session = true) =>
      fetch(`${server.url}/mcp`, {
        method: "POST",
        headers: {
          accept: ACCEPT_BOTH,
          "content-type": "application/json",
          ...(session ? { "mcp-session-id": sessionId, "mcp-protocol-version": "2025-06-18" } : {}),
        },
        body,
      });
    const cases: [string, string, boolean?][] = [
      ["10k-deep params", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":${deepObject}}`],
      [
        "10k-deep _meta",
        `{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"_meta":${deepObject}}}`,
      ],
      [
        "10k-deep initialize capabilities",
        `{"jsonrpc":"2.0","id":3,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":${deepObject},"clientInfo":{"name":"x","version":"1"}}}`,
        false,
      ],
      ["10k-deep id", `{"jsonrpc":"2.0","id":${deepArray},"method":"tools/list"}`],
      [
        "300k-element array in params",
        `{"jsonrpc":"2.0","id":4,"method":"tools/list","params":{"_meta":{"x":[${
          Array(300_000).fill(0).join(",")
        }]}}}`,
      ],
      [
        "tools/call name a number",
        `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":5}}`,
      ],
      [
        "tools/call arguments an array",
        `{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"get_time","arguments":[1]}}`,
      ],
      ["tools/call params a string", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":"x"}`],
      [
        "resources/read uri a number",
        `{"jsonrpc":"2.0","id":8,"method":"resources/read","params":{"uri":5}}`,
      ],
      [
        "prompts/get name an array",
        `{"jsonrpc":"2.0","id":9,"method":"prompts/get","params":{"name":[]}}`,
      ],
      [
        "logging/setLevel bad level",
        `{"jsonrpc":"2.0","id":10,"method":"logging/setLevel","params":{"level":"x"}}`,
      ],
      [
        "tools/list cursor a number",
        `{"jsonrpc":"2.0","id":11,"method":"tools/list","params":{"cursor":5}}`,
      ],
    ];
    for (const [name, body, session] of cases) {
      const res = await post(body, session ?? true);
      const text = await res.text();
      assert.equal(res.status, 400, `${name}: ${text.slice(0, 200)}`);
      const reply = JSON.parse(text);
      assert.equal(reply.error.code, -32602, name);
      assert.ok(reply.error.message.length < 400, `${name}: the reason is short`);
      assert.doesNotMatch(reply.error.message, /\n|"code"|invalid_type|call stack/, name);
    }
    // A tool's over-deep arguments are the governed path's to refuse: a sealed VOID, no -32603.
    const deepArgs = await post(
      `{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"get_time","arguments":{"x":${deepArray}}}}`,
    );
    const text = await deepArgs.text();
    assert.equal(deepArgs.status, 200);
    assert.match(text, /VOID/);
    assert.doesNotMatch(text, /-32603|call stack/);
    const health = await fetch(`${server.url}/health`);
    assert.equal(health.status, 200);
    await health.body?.cancel();
  } finally {
    await server.close();
  }
});

Deno.test("hostile input: a JSON-RPC id reused while in flight is refused, and nothing hangs", async () => {
  for (const mode of ["sse", "json"]) {
    const server = await startServer({
      args: ["--response-mode", mode],
      extraTools: [sleepTool],
      policy: UNTHROTTLED_POLICY,
    });
    try {
      const { sessionId } = await initializeRaw(server.url, "2025-06-18");
      const call = (id: number) =>
        fetch(`${server.url}/mcp`, {
          method: "POST",
          headers: {
            accept: ACCEPT_BOTH,
            "content-type": "application/json",
            "mcp-session-id": sessionId,
            "mcp-protocol-version": "2025-06-18",
          },
          body: JSON.stringify({
            jsonrpc: "2.0",
            id,
            method: "tools/call",
            params: { name: "test_sleep", arguments: { ms: 300 } },
          }),
          signal: AbortSignal.timeout(5000),
        }).then(async (r) => ({ status: r.status, text: await r.text() }));
      const replies = await Promise.all([call(42), call(42), call(42)]);
      // One is answered, the others refused at once for reusing an id in flight.
      assert.equal(replies.filter((r) => r.status === 200).length, 1, mode);
      for (const r of replies) {
        if (r.status === 200) assert.match(r.text, /"id":42/, mode);
        else {
          assert.equal(r.status, 400, mode);
          assert.match(r.text, /already used by a request in progress/, mode);
        }
      }
      // Once answered, the id is free again.
      const again = await call(42);
      assert.equal(again.status, 200, mode);
      assert.match(again.text, /"id":42/);
    } finally {
      await server.close();
    }
  }
});

Deno.test("hostile input: legacy SSE refuses tools/call before initialize", async () => {
  const server = await startServer();
  try {
    const stream = await fetch(`${server.url}/sse`, { headers: { accept: "text/event-stream" } });
    const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    while (!buf.includes("\n\n")) buf += (await reader.read()).value ?? "";
    const endpoint = /data: (\S+)/.exec(buf)![1];
    const post = (body: unknown) =>
      fetch(new URL(endpoint, server.url), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    const before = (await server.app.ledger.head()).size;
    const early = await post({
      jsonrpc: "2.0",
      id: 1,
      method: "tools/call",
      params: { name: "generate_uuid", arguments: {} },
    });
    assert.equal(early.status, 400);
    assert.match((await early.json()).error.message, /initialize/);
    const { size } = await server.app.ledger.head();
    assert.equal(size, before, "nothing ran, nothing was sealed");
    const ping = await post({ jsonrpc: "2.0", id: 2, method: "ping" });
    assert.equal(ping.status, 202);
    await ping.body?.cancel();
    await reader.cancel();
  } finally {
    await server.close();
  }
});

/**
 * The HTTP edge under abuse (issue 9 §6, §7): JSON routes require a JSON
 * content type, default Origins are the bound port only, a rate-limited call
 * says "retry after" once and carries Retry-After, PII is counted once per
 * finding however often the same value is echoed.
 */
import assert from "node:assert/strict";
import { startServer } from "../_helpers/server.ts";
import { ACCEPT_BOTH, initializeRaw } from "../_helpers/raw.ts";
import { evaluatePost, evaluatePre } from "../../src/governance/floors.ts";
import { findPii } from "../../src/governance/pii.ts";
import {
  floorOf,
  makeCall,
  makeRates,
  makeResult,
  makeTool,
  policyWith,
} from "../governance/_fixtures.ts";

const listTools = JSON.stringify({ jsonrpc: "2.0", id: 7, method: "tools/list" });

Deno.test("edge: POST /invoke, /mcp and /messages refuse a body that is not application/json", async () => {
  await using server = await startServer();
  const invoke = JSON.stringify({ tool: "get_time", arguments: {} });
  // text/plain and form posts are what a browser may send cross-site without a preflight.
  for (const type of [null, "text/plain", "application/x-www-form-urlencoded", "text/json"]) {
    const headers: Record<string, string> = { accept: ACCEPT_BOTH };
    if (type) headers["content-type"] = type;
    const r1 = await fetch(`${server.url}/invoke`, {
      method: "POST",
      headers,
      body: new TextEncoder().encode(invoke),
    });
    assert.equal(r1.status, 415, `/invoke with ${type}`);
    assert.match((await r1.json()).error.message, /application\/json/);
    const r2 = await fetch(`${server.url}/mcp`, {
      method: "POST",
      headers,
      body: new TextEncoder().encode(listTools),
    });
    assert.equal(r2.status, 415, `/mcp with ${type}`);
    const body = await r2.json();
    assert.match(body.error.message, /application\/json/);
    const r3 = await fetch(`${server.url}/messages?sessionId=x`, {
      method: "POST",
      headers,
      body: new TextEncoder().encode(listTools),
    });
    assert.equal(r3.status, 415, `/messages with ${type}`);
    await r3.body?.cancel();
  }
  // With the right type (parameters allowed, any case) the same bodies go through.
  const ok = await fetch(`${server.url}/invoke`, {
    method: "POST",
    headers: { "content-type": "Application/JSON; charset=utf-8" },
    body: invoke,
  });
  assert.equal(ok.status, 200);
  await ok.body?.cancel();
  const init = await initializeRaw(server.url, "2025-06-18");
  assert.ok(init.sessionId);
});

Deno.test("edge: default allowed Origins are the bound port only", async () => {
  await using server = await startServer();
  const port = server.port;
  const send = (origin: string) =>
    fetch(`${server.url}/mcp`, {
      method: "POST",
      headers: { accept: ACCEPT_BOTH, "content-type": "application/json", origin },
      body: listTools,
    });
  for (const origin of ["http://localhost", "http://127.0.0.1", "http://localhost:3000"]) {
    const r = await send(origin);
    assert.equal(r.status, 403, `${origin} must be refused`);
    await r.body?.cancel();
  }
  for (const origin of [`http://localhost:${port}`, `http://127.0.0.1:${port}`]) {
    const r = await send(origin);
    assert.notEqual(r.status, 403, `${origin} must be allowed`);
    await r.body?.cancel();
  }
});

Deno.test("edge: a rate-limited /invoke is 429 with Retry-After, and the text says it once", async () => {
  await using server = await startServer({
    policy: { rate_limits: { per_ip_per_minute: 1, exempt_loopback: false } },
  });
  const call = () =>
    fetch(`${server.url}/invoke`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ tool: "get_time", arguments: {} }),
    });
  assert.equal((await (await call()).json()).ok, true);
  const r = await call();
  assert.equal(r.status, 429);
  const body = await r.json();
  const after = Number(r.headers.get("retry-after"));
  assert.ok(after >= 1, "Retry-After header");
  assert.equal(body._constitutional.retry_after_s, after);
  for (const text of [body.text, body.message]) {
    assert.equal(text.match(/retry after/gi)?.length, 1, text);
  }
});

Deno.test("edge: PII is counted once per finding, not again for each echo of it", () => {
  // The same value twice is one finding; two values are two.
  assert.deepEqual(findPii({ a: "bob@example.com and bob@example.com" }, "arguments"), [
    { kind: "email", path: "arguments.a", count: 1 },
  ]);
  assert.equal(findPii({ a: "a@b.io", b: "c@d.io" })[0].count, 1);
  assert.equal(findPii({ a: "a@b.io", b: "c@d.io" }).length, 2);
});

Deno.test("edge: an email in the arguments echoed in the result text and data counts once", () => {
  const policy = policyWith({});
  const call = makeCall({ arguments: { to: "bob@example.com" } });
  const pre = evaluatePre({ call, tool: makeTool(), rates: makeRates(), policy });
  const before = floorOf(pre, "F6");
  const post = evaluatePost({
    call,
    tool: makeTool(),
    result: makeResult({ text: "sent to bob@example.com", data: { to: "bob@example.com" } }),
    policy,
  }, pre);
  const after = floorOf(post, "F6");
  assert.equal(after.score, before.score, after.reason);
  assert.match(after.reason, /email ×1\b/);
  // A different address in the result is a new finding.
  const other = evaluatePost({
    call,
    tool: makeTool(),
    result: makeResult({ text: "sent to carol@example.com" }),
    policy,
  }, pre);
  assert.match(floorOf(other, "F6").reason, /email ×2\b/);
});

/**
 * MCP 2026-07-28 on /mcp: the v2 Client pinned to the modern revision, beside
 * 2025-era sessions (v2 and v1 clients) on the same URL; stateless across
 * processes sharing one KV.
 */
import assert from "node:assert/strict";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { spawnServer, startServer } from "../_helpers/server.ts";
import { alternatingFetch, connectModern, connectStreamable, dataOf } from "../_helpers/client.ts";
import { modernMeta, postModern } from "../_helpers/raw.ts";

function modernClient(name = "modern-test") {
  return new Client({ name, version: "1.0.0" }, {
    versionNegotiation: { mode: { pin: "2026-07-28" } },
  });
}

// deno-lint-ignore no-explicit-any
function envelopeOf(result: Record<string, unknown>): any {
  return result.structuredContent;
}

async function rawModern(base: string, method: string, params: Record<string, unknown> = {}) {
  return await postModern(base, method, params);
}

Deno.test("modern: the v2 Client over 2026-07-28 lists and calls tools without a session", async () => {
  await using server = await startServer();
  const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`));
  const client = modernClient();
  await client.connect(transport);
  assert.equal(client.getNegotiatedProtocolVersion(), "2026-07-28");
  const { tools } = await client.listTools();
  assert.ok(tools.some((t) => t.name === "calculate"));
  const r = await client.callTool({ name: "calculate", arguments: { expression: "6*7" } });
  assert.equal((dataOf(r) as { result: number }).result, 42);
  assert.equal(transport.sessionId, undefined);
  // No session was created for it.
  assert.equal(server.app.streamable.liveCount, 0);
  assert.equal(await server.app.sessions.count(), 0);
  await client.close();
});

Deno.test("modern: the v2 Client over 2025-11-25 and a v1 Client keep their sessions on the same URL", async () => {
  await using server = await startServer();
  const v2 = new Client({ name: "v2-legacy", version: "1.0.0" });
  const t2 = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`));
  await v2.connect(t2);
  assert.equal(v2.getNegotiatedProtocolVersion(), "2025-11-25");
  assert.ok(t2.sessionId);
  const { client: v1, transport: t1 } = await connectStreamable(server.url);
  assert.ok(t1.sessionId);
  const modern = modernClient();
  await modern.connect(new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`)));
  for (const [i, c] of [v2, v1, modern].entries()) {
    const listed = await (c as Client).listTools();
    assert.ok(listed.tools.some((t) => t.name === "calculate"));
    const r = await (c as Client).callTool({
      name: "calculate",
      arguments: { expression: `${i}+40` },
    });
    assert.equal((dataOf(r as never) as { result: number }).result, i + 40);
  }
  assert.equal(server.app.streamable.liveCount, 2);
  await Promise.all([v2.close(), v1.close(), modern.close()]);
});

Deno.test("modern: servers come from a pool built once, not one per request", async () => {
  await using server = await startServer();
  const before = server.app.modern.built;
  const client = modernClient();
  await client.connect(new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`)));
  for (let i = 0; i < 40; i++) {
    const r = await client.callTool({ name: "calculate", arguments: { expression: `${i}*2` } });
    assert.equal((dataOf(r) as { result: number }).result, i * 2);
  }
  // 40 sequential calls (plus discover and tools/list) reuse the pre-built servers.
  assert.equal(server.app.modern.built, before);
  assert.equal(server.app.modern.busy, 0);
  // Concurrency grows the pool to the peak, no further.
  await Promise.all(
    Array.from(
      { length: 12 },
      (_, i) => client.callTool({ name: "calculate", arguments: { expression: `${i}+1` } }),
    ),
  );
  assert.ok(server.app.modern.built <= 12 + before);
  const peak = server.app.modern.built;
  for (let i = 0; i < 10; i++) {
    await client.callTool({ name: "calculate", arguments: { expression: "1" } });
  }
  assert.equal(server.app.modern.built, peak);
  assert.equal(server.app.modern.busy, 0);
  await client.close();
});

Deno.test("modern: server/discover, header validation and private caching hints on lists", async () => {
  await using server = await startServer();
  const discover = await rawModern(server.url, "server/discover");
  assert.equal(discover.status, 200);
  assert.deepEqual(discover.json.result.supportedVersions, ["2026-07-28"]);
  assert.ok(discover.json.result.capabilities.tools);
  const list = await rawModern(server.url, "tools/list");
  assert.equal(list.status, 200);
  // The list will depend on the principal (RBAC): no shared cache may keep it.
  assert.equal(list.json.result.cacheScope, "private");
  assert.equal(list.json.result.ttlMs, 10_000);
  // A Mcp-Name header that disagrees with the body is refused.
  const res = await fetch(`${server.url}/mcp`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": "2026-07-28",
      "mcp-method": "tools/call",
      "mcp-name": "uuid_generate",
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 7,
      method: "tools/call",
      params: { name: "calculate", arguments: { expression: "1" }, _meta: modernMeta() },
    }),
  });
  assert.equal(res.status, 400);
  const body = await res.json();
  assert.equal(body.error.code, -32020);
  assert.equal(body.id, 7);
  // 2025-era methods that 2026-07-28 removed are not found on the modern path.
  const init = await rawModern(server.url, "initialize");
  assert.equal(init.status, 404);
  assert.equal(init.json.error.code, -32601);
});

Deno.test("modern: two processes sharing one KV answer one client's alternating requests consistently", async () => {
  const dir = await Deno.makeTempDir();
  const kvPath = `${dir}/warden.db`;
  const a = await spawnServer(["--kv", kvPath]);
  const b = await spawnServer(["--kv", kvPath]);
  try {
    // One client; every request goes to the other process than the one before.
    const hits = [0, 0];
    const client = await connectModern(a.url, {
      name: "alternating",
      fetch: alternatingFetch([a.url, b.url], { onRequest: (i) => hits[i]++ }),
    });
    const anchor = envelopeOf(
      await client.callTool({ name: "anchor_session", arguments: { query: "tidy the docs" } }),
    );
    const sid = anchor.data.session_id;
    assert.match(sid, /^sess_/);
    // The governed session anchored through one process is found by the other.
    const reason = envelopeOf(
      await client.callTool({
        name: "reason_mind",
        arguments: { session_id: sid, query: "the docs are untidy" },
      }),
    );
    assert.equal(reason.session_id ?? reason.data?.session_id ?? sid, sid);
    assert.notEqual(reason.status, "ERROR", JSON.stringify(reason));
    const judged = envelopeOf(
      await client.callTool({ name: "apex_judge", arguments: { session_id: sid } }),
    );
    assert.notEqual(judged.status, "ERROR", JSON.stringify(judged));
    for (let i = 0; i < 6; i++) {
      const r = await client.callTool({ name: "calculate", arguments: { expression: `${i}*5` } });
      assert.equal((dataOf(r) as { result: number }).result, i * 5);
    }
    assert.ok(hits[0] >= 4 && hits[1] >= 4, `both processes answered: ${hits}`);
    await client.close();
  } finally {
    await a.stop();
    await b.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

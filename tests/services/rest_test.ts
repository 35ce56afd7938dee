/**
 * REST parity: `POST /api/mcp/{service}/{action}` is the same governed call
 * as `tools/call` (`/api/mcp/memory/store` → `memory_store`), authenticated
 * like `/mcp`, with a clear 404 for an unknown service or action.
 */
import assert from "node:assert/strict";
import { createToken } from "../../src/identity/mod.ts";
import { startServer } from "../_helpers/server.ts";

Deno.test("rest: /api/mcp/{service}/{action} maps onto the governed memory and file tools", async () => {
  await using server = await startServer({
    args: ["--token", "static-token-0123456789"],
    policy: { rate_limits: { per_principal_per_minute: 0, per_ip_per_minute: 0 } },
  });
  const alice = await createToken(server.kv, { name: "alice" });
  const bob = await createToken(server.kv, { name: "bob" });
  const post = async (path: string, body: unknown, secret?: string) => {
    const res = await fetch(`${server.url}${path}`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(secret ? { authorization: `Bearer ${secret}` } : {}),
      },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  };
  const stored = await post("/api/mcp/memory/store", {
    key: "session_123",
    value: { user: "alice" },
    ttl: 60,
  }, alice.secret);
  assert.equal(stored.status, 200, JSON.stringify(stored.body));
  assert.equal(stored.body.tool, "memory_store");
  assert.equal(stored.body.policy_verdict, "SEAL");
  assert.equal(typeof stored.body._constitutional.vault.index, "number", "sealed");
  const got = await post("/api/mcp/memory/retrieve", { key: "session_123" }, alice.secret);
  assert.deepEqual(got.body.data.value, { user: "alice" });
  // The principal is the caller's: bob cannot read alice's key through REST either.
  const theirs = await post("/api/mcp/memory/retrieve", { key: "session_123" }, bob.secret);
  assert.equal(theirs.body.data.found, false);

  const w = await post("/api/mcp/files/write", { path: "/r.txt", content: "hi" }, alice.secret);
  assert.equal(w.body.data.version, 1, JSON.stringify(w.body));
  const r = await post("/api/mcp/files/read", { path: "/r.txt" }, bob.secret);
  assert.equal(r.body.data.content, "hi");
  const esc = await post("/api/mcp/files/read", { path: "../x" }, bob.secret);
  assert.equal(esc.status, 422);
  assert.match(esc.body.text, /Cannot use path/);

  // Authenticated like /mcp.
  const anon = await post("/api/mcp/memory/retrieve", { key: "k" });
  assert.equal(anon.status, 401);

  // Unknown service or action: 404 saying what exists.
  const svc = await post("/api/mcp/nope/store", {}, alice.secret);
  assert.equal(svc.status, 404);
  assert.match(svc.body.error.message, /unknown service "nope"; services are memory, files/);
  const act = await post("/api/mcp/memory/delete_all", {}, alice.secret);
  assert.equal(act.status, 404);
  assert.match(act.body.error.message, /no action "delete_all"; actions are .*store/);
  const bad = await post("/api/mcp/memory/store", [1], alice.secret);
  assert.equal(bad.status, 400);
});

import assert from "node:assert/strict";
import { createSessionStore, type SessionRecord, touchIntervalMs } from "../../src/mcp/mod.ts";

function record(id: string, lastSeenMs: number): SessionRecord {
  return {
    id,
    transport: "streamable-http",
    protocolVersion: "2025-11-25",
    clientInfo: { name: "t" },
    capabilities: {},
    initializeParams: {},
    principal: "anonymous",
    stage: "000",
    createdAt: new Date(lastSeenMs).toISOString(),
    lastSeenMs,
  };
}

Deno.test("session store: a log level survives a touch from a process holding an older copy", async () => {
  using kv = await Deno.openKv(":memory:");
  const sessions = createSessionStore(kv, { ttlMs: 60_000 });
  const now = Date.now();
  const stale = record("s1", now);
  await sessions.create(stale);
  await sessions.setLogLevel("s1", "warning");
  // Another process refreshes last-seen from the copy it had before the level was set.
  const touched = await sessions.touch(stale, now + 1000);
  assert.equal(touched.logLevel, "warning");
  const stored = await sessions.get("s1", now + 1000);
  assert.equal(stored?.logLevel, "warning");
  assert.equal(stored?.lastSeenMs, now + 1000);
});

Deno.test("session store: setting the level of an ended session is a no-op, not a resurrection", async () => {
  using kv = await Deno.openKv(":memory:");
  const sessions = createSessionStore(kv, { ttlMs: 60_000 });
  await sessions.create(record("s2", Date.now()));
  await sessions.delete("s2");
  await sessions.setLogLevel("s2", "error");
  assert.equal(await sessions.get("s2"), null);
});

Deno.test("session store: a stored last-seen that lags by one refresh interval does not expire a session early", async () => {
  using kv = await Deno.openKv(":memory:");
  const ttlMs = 10_000;
  const sessions = createSessionStore(kv, { ttlMs });
  const stored = Date.now();
  await sessions.create(record("s3", stored));
  // The last request came one refresh interval (TTL/10) after the stored
  // last-seen, so the session has been idle for just under the TTL.
  const idleJustUnder = stored + ttlMs + touchIntervalMs(ttlMs) - 1;
  assert.ok(await sessions.get("s3", idleJustUnder), "still alive");
  // Past the TTL plus that interval it is gone, whatever the lag.
  assert.equal(await sessions.get("s3", stored + ttlMs + touchIntervalMs(ttlMs) + 1), null);
});

import assert from "node:assert/strict";
import { createSessionStore, type SessionRecord } from "../../src/mcp/mod.ts";

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
  const kv = await Deno.openKv(":memory:");
  try {
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
  } finally {
    kv.close();
  }
});

Deno.test("session store: setting the level of an ended session is a no-op, not a resurrection", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const sessions = createSessionStore(kv, { ttlMs: 60_000 });
    await sessions.create(record("s2", Date.now()));
    await sessions.delete("s2");
    await sessions.setLogLevel("s2", "error");
    assert.equal(await sessions.get("s2"), null);
  } finally {
    kv.close();
  }
});

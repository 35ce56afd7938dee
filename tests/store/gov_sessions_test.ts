// deno-lint-ignore-file no-explicit-any -- envelopes are probed field by field
import assert from "node:assert/strict";
import { createGovSessionStore, govSessionKey } from "../../src/store/mod.ts";
import { redact } from "../../src/governance/mod.ts";
import { startServer } from "../_helpers/server.ts";

const redactRetained = <T>(v: T): T => redact(v).value as T;

/** A session record of `principal` whose id sorts before every random UUID. */
function early(principal: string, n: number) {
  const id = `sess_00000000-0000-4000-8000-${String(n).padStart(12, "0")}`;
  const now = new Date().toISOString();
  return {
    id,
    principal,
    actorId: null,
    intent: `someone else's intent ${n}`,
    mcpSession: null,
    createdAt: now,
    updatedAt: now,
    stage: "000",
    claims: [],
    steps: [],
    notes: {},
  };
}

Deno.test("gov sessions: listOwn finds a principal's sessions past 200 sessions of others", async () => {
  using kv = await Deno.openKv(":memory:");
  const store = createGovSessionStore(kv, { ttlMs: 60_000 });
  for (let n = 0; n < 250; n++) {
    const s = early("bob", n);
    await kv.set(govSessionKey(s.id), s);
  }
  const mine = await store.create({
    principal: "alice",
    actorId: null,
    intent: "alice's zebrafish study",
    mcpSession: null,
  });
  const own = await store.listOwn("alice", 10);
  assert.deepEqual(own.map((s) => s.id), [mine.id]);
  assert.deepEqual(await store.listOwn("mallory"), []);
  // An update keeps the index (and the owner) in place.
  await store.update(mine.id, "alice", (s) => ({ ...s, principal: "bob", stage: "333" }));
  assert.equal((await store.listOwn("alice"))[0].stage, "333");
  assert.equal((await store.listOwn("alice"))[0].principal, "alice");
});

Deno.test("gov sessions: intent, actor, claims and notes are redacted before they are written", async () => {
  using kv = await Deno.openKv(":memory:");
  const store = createGovSessionStore(kv, { ttlMs: 60_000, redact: redactRetained });
  const s = await store.create({
    principal: "alice",
    actorId: "bob@example.com",
    intent: "pay with 4111 1111 1111 1111",
    mcpSession: null,
  });
  await store.update(s.id, "alice", (x) => ({
    ...x,
    claims: [{ text: "key sk-abcdefghijklmnopqrstuvwxyz", evidence: [], grounded: false }],
    notes: { plan: "mail carol@example.org" },
  }));
  const raw = JSON.stringify((await kv.get(govSessionKey(s.id))).value);
  assert.doesNotMatch(raw, /4111|bob@|sk-abc|carol@/);
  assert.match(raw, /\[REDACTED:card\]/);
});

Deno.test("recall_memory returns the caller's own sessions past 200 of another principal's, and none of theirs", async () => {
  await using server = await startServer();
  const reg = server.app.registry;
  for (let n = 0; n < 250; n++) {
    const s = early("bob", n);
    await server.kv.set(govSessionKey(s.id), s);
  }
  const bob = await reg.call("anchor_session", { query: "bob's zebrafish secrets" }, {
    principal: "bob",
  });
  assert.equal(bob.envelope?.status, "OK");
  const a = await reg.call("anchor_session", { query: "alice studies zebrafish" }, {
    principal: "alice",
  });
  const aliceSession = (a.envelope as any).data.session_id;
  const recall = await reg.call("recall_memory", {
    current_thought_vector: "zebrafish",
    depth: 50,
  }, { principal: "alice" });
  const items = (recall.envelope as any).data.items as any[];
  assert.ok(items.some((i) => i.id === aliceSession), JSON.stringify(items));
  assert.ok(!JSON.stringify(items).includes("bob"), JSON.stringify(items));
  const search = await reg.call("search_reality", { query: "zebrafish" }, {
    principal: "alice",
  });
  const results = (search.envelope as any).data.results as any[];
  assert.ok(results.length > 0);
  assert.ok(!JSON.stringify(results).includes("bob"), JSON.stringify(results));
});

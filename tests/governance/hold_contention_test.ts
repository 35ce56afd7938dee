// Processes sharing one KV file meet SQLite's write lock: a read or commit made while another
// connection writes may fail at once with "database is locked". Every HoldStore transition must
// retry it, as the vault, tasks and sessions do; otherwise an operator's approve or deny answers
// 500, and a held call run after its approval (a 2026-07-28 task) fails, under load.
import assert from "node:assert/strict";
import {
  createHoldStore,
  generateOperatorKey,
  holdDigest,
  loadOperatorKey,
  signDecision,
} from "../../src/governance/mod.ts";
import { tempDir } from "../_helpers/tmp.ts";

Deno.test("HoldStore: create, decide, release and recordHuman succeed while another connection writes the same KV file", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.path}/shared.db`;
  const kv = await Deno.openKv(path);
  const other = await Deno.openKv(path);
  const store = createHoldStore(kv);
  const key = await generateOperatorKey("alice");
  const alice = await loadOperatorKey(key.keyFile);
  const operators = [{ name: "alice", public_key: key.publicKey }];
  // The other process: writes every 10 ms while the holds are worked on.
  let writing = true;
  const writer = (async () => {
    for (let i = 0; writing; i++) {
      await other.atomic().set(["elsewhere", i % 64], "x".repeat(1024)).commit().catch(() => {});
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  try {
    for (let i = 0; i < 50; i++) {
      const call = { tool: "delete_file", arguments: { path: `/tmp/${i}` }, principal: "agent" };
      const create = (maxOpenPerPrincipal?: number) =>
        store.create({
          digest: holdDigest(call),
          tool: call.tool,
          principal: call.principal,
          session: null,
          reasons: ["F1 destructive"],
          expirySeconds: 60,
          requiredSigners: 1,
          ...(maxOpenPerPrincipal ? { maxOpenPerPrincipal } : {}),
        });
      const approved = await create(1_000);
      const signature = await signDecision(alice, {
        decision: "approve",
        holdId: approved.id,
        digest: approved.digest,
      });
      const decided = await store.decide(approved.id, {
        decision: "approve",
        operator: "alice",
        signature,
        operators,
      });
      assert.equal(decided.status, "approved");
      assert.equal((await store.release(approved.id, approved.digest)).status, "released");
      const denied = await create();
      const no = await signDecision(alice, {
        decision: "deny",
        holdId: denied.id,
        digest: denied.digest,
      });
      const refused = await store.decide(denied.id, {
        decision: "deny",
        operator: "alice",
        signature: no,
        operators,
      });
      assert.equal(refused.status, "denied");
      const asked = await create();
      assert.equal((await store.recordHuman(asked.id, "accept"))?.human?.action, "accept");
      assert.equal((await store.get(asked.id))?.status, "open");
    }
  } finally {
    writing = false;
    await writer;
    other.close();
    kv.close();
  }
});

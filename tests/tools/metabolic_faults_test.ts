// A metabolic step reports an unknown session as the tool's answer (ToolError) but lets a fault
// of the session store through as a fault — before, every error became a ToolError.
import assert from "node:assert/strict";
import { type ToolContext, ToolError } from "../../src/calls/mod.ts";
import { apexJudgeTool, sealVaultTool, simulateHeartTool } from "../../src/tools/metabolic.ts";
import { createTokenService, type TokenService } from "../../src/governance/mod.ts";
import { generateSigner } from "../../src/merkle/mod.ts";
import { createGovSessionStore, type GovSessionStore } from "../../src/store/mod.ts";

const ctx: ToolContext = { principal: "p", signal: new AbortController().signal };
const simulate = (sessions: GovSessionStore) => simulateHeartTool({ sessions });

const args = simulate({} as GovSessionStore).inputSchema.parse({
  query: "delete the logs",
  session_id: "s1",
});

Deno.test("simulate_heart: an unknown session is a ToolError; a store fault is not", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const store = createGovSessionStore(kv, { ttlMs: 60_000 });
    await assert.rejects(
      Promise.resolve(simulate(store).handler(args, ctx)),
      (e: unknown) => e instanceof ToolError && /Unknown session_id s1/.test(e.message),
    );
    const faulty: GovSessionStore = {
      ...store,
      update: () => Promise.reject(new TypeError("s.notes is undefined")),
    };
    await assert.rejects(
      Promise.resolve(simulate(faulty).handler(args, ctx)),
      (e: unknown) => e instanceof TypeError && !(e instanceof ToolError),
    );
    // A session that exists takes the step.
    const s = await store.create({ principal: "p", actorId: null, intent: "x", mcpSession: null });
    const ok = await simulate(store).handler({ ...args, session_id: s.id }, ctx);
    assert.equal(ok.data.session_id, s.id);
    assert.equal((await store.get(s.id, "p")).stage, "555");
  } finally {
    kv.close();
  }
});

Deno.test("apex_judge's review: an unknown session adds nothing; a store fault is not swallowed", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const store = createGovSessionStore(kv, { ttlMs: 60_000 });
    const apex = (sessions: GovSessionStore) =>
      apexJudgeTool({
        sessions,
        governance: {} as never,
        judgeTool: () => Promise.reject(new Error("not called")),
        tokens: {} as never,
      });
    const judge = apex(store).inputSchema.parse({ session_id: "missing" });
    const review = (sessions: GovSessionStore) => apex(sessions).review!(judge, { principal: "p" });
    assert.deepEqual(await review(store), {});
    // Were this swallowed, a session whose impact needs an operator would be judged unheld.
    const faulty: GovSessionStore = {
      ...store,
      get: () => Promise.reject(new TypeError("s.notes is undefined")),
    };
    await assert.rejects(review(faulty), TypeError);
  } finally {
    kv.close();
  }
});

Deno.test("seal_vault: a bad governance_token is a ToolError; a fault of the token service is not", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const sessions = createGovSessionStore(kv, { ttlMs: 60_000 });
    const s = await sessions.create({
      principal: "p",
      actorId: null,
      intent: "x",
      mcpSession: null,
    });
    const tokens = createTokenService(await generateSigner("warden/test"));
    const seal = (t: TokenService) => sealVaultTool({ sessions, tokens: t, ledger: {} as never });
    const input = seal(tokens).inputSchema.parse({
      session_id: s.id,
      summary: "done",
      governance_token: "not-a-token",
    });
    await assert.rejects(
      Promise.resolve(seal(tokens).handler(input, ctx)),
      (e: unknown) => e instanceof ToolError && /Cannot seal: governance_token/.test(e.message),
    );
    const faulty: TokenService = {
      ...tokens,
      verify: () => Promise.reject(new TypeError("key is undefined")),
    };
    await assert.rejects(
      Promise.resolve(seal(faulty).handler(input, ctx)),
      (e: unknown) => e instanceof TypeError,
    );
  } finally {
    kv.close();
  }
});

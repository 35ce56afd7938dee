// A metabolic step reports an unknown session as the tool's answer (ToolError) but lets a fault
// of the session store through as a fault — before, every error became a ToolError.
import assert from "node:assert/strict";
import { type ToolContext, ToolError } from "../../src/calls/mod.ts";
import { simulateHeartTool } from "../../src/tools/metabolic.ts";
import { createGovSessionStore, type GovSessionStore } from "../../src/store/mod.ts";

function ctxWith(sessions: GovSessionStore): ToolContext {
  return {
    principal: "p",
    signal: new AbortController().signal,
    services: { sessions },
  } as unknown as ToolContext;
}

const args = simulateHeartTool.inputSchema.parse({ query: "delete the logs", session_id: "s1" });

Deno.test("simulate_heart: an unknown session is a ToolError; a store fault is not", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const store = createGovSessionStore(kv, { ttlMs: 60_000 });
    await assert.rejects(
      Promise.resolve(simulateHeartTool.handler(args, ctxWith(store))),
      (e: unknown) => e instanceof ToolError && /Unknown session_id s1/.test(e.message),
    );
    const faulty: GovSessionStore = {
      ...store,
      update: () => Promise.reject(new TypeError("s.notes is undefined")),
    };
    await assert.rejects(
      Promise.resolve(simulateHeartTool.handler(args, ctxWith(faulty))),
      (e: unknown) => e instanceof TypeError && !(e instanceof ToolError),
    );
    // A session that exists takes the step.
    const s = await store.create({ principal: "p", actorId: null, intent: "x", mcpSession: null });
    const ok = await simulateHeartTool.handler({ ...args, session_id: s.id }, ctxWith(store));
    assert.equal(ok.data.session_id, s.id);
    assert.equal((await store.get(s.id, "p")).stage, "555");
  } finally {
    kv.close();
  }
});

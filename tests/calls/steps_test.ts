// The step hook over a real governed-session store: an unknown session was already reported by
// the tool (ignored); any other failure is a fault that reaches the call's edge (it was
// swallowed before).
import assert from "node:assert/strict";
import type { ToolDefinition } from "../../src/calls/mod.ts";
import { recordStep } from "../../src/calls/steps.ts";
import type { GovernedResult } from "../../src/governance/mod.ts";
import { createGovSessionStore, type GovSessionStore } from "../../src/store/mod.ts";

const def = { name: "simulate_heart", stage: "555" } as ToolDefinition;
const governed = {
  verdict: { verdict: "SEAL", reasons: [] },
  floors: [{ id: "F1", score: 1 }],
  execution: { isError: false, text: "ok" },
  vault: { index: 7, leafHash: "0".repeat(64) },
} as unknown as GovernedResult;

Deno.test("recordStep appends the step to the principal's session", async () => {
  using kv = await Deno.openKv(":memory:");
  const store = createGovSessionStore(kv, { ttlMs: 60_000 });
  const s = await store.create({ principal: "p", actorId: null, intent: "x", mcpSession: null });
  await recordStep(store, def, s.id, "p", governed);
  const [step] = (await store.get(s.id, "p")).steps;
  assert.deepEqual(
    { tool: step.tool, stage: step.stage, verdict: step.verdict, outcome: step.outcome },
    { tool: "simulate_heart", stage: "555", verdict: "SEAL", outcome: "ok" },
  );
  assert.equal(step.vaultIndex, 7);
  assert.deepEqual(step.floors, { F1: 1000 });
});

Deno.test("recordStep ignores an unknown session but lets a fault through", async () => {
  using kv = await Deno.openKv(":memory:");
  const store = createGovSessionStore(kv, { ttlMs: 60_000 });
  await recordStep(store, def, "no-such-session", "p", governed); // the tool said so already
  const faulty: GovSessionStore = {
    ...store,
    update: () => Promise.reject(new TypeError("Cannot read properties of undefined")),
  };
  await assert.rejects(recordStep(faulty, def, "any", "p", governed), TypeError);
});

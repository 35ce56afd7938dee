// deno-lint-ignore-file no-explicit-any -- envelopes are probed field by field
import assert from "node:assert/strict";
import { connectStreamable, envelopeOf } from "../_helpers/client.ts";
import { startServer } from "../_helpers/server.ts";
import { createCounterTool } from "../_helpers/tools.ts";

const OPERATOR = {
  name: "ops",
  public_key: btoa(String.fromCharCode(...new Uint8Array(32).fill(7))),
};

async function callOnce(policy: unknown, annotations: Record<string, boolean>, name: string) {
  const counter = createCounterTool(name, annotations);
  await using server = await startServer({ extraTools: [counter.tool], policy });
  const { client } = await connectStreamable(server.url);
  const env: any = envelopeOf(await client.callTool({ name, arguments: {} }));
  await client.close();
  return { env, runs: counter.runs(), open: await server.app.governance.holds.listOpen() };
}

Deno.test("a hold no configured operator could release is VOID, naming policy operators", async () => {
  for (
    const [policy, annotations] of [
      [{}, { destructiveHint: true }], // F1
      [{ tools: { test_x: { hold: true } } }, {}], // F13 operator-held tool
      [{ tools: { test_x: { reversible: false } } }, {}], // F1 by policy
    ] as const
  ) {
    const { env, runs, open } = await callOnce(policy, annotations, "test_x");
    assert.equal(env.policy_verdict, "VOID", JSON.stringify(policy));
    assert.match(env.message, /"operators" is empty/);
    assert.equal(runs, 0);
    assert.deepEqual(open, []);
  }
});

Deno.test("a hold that even an approval cannot lift is VOID, naming the policy field", async () => {
  const killed = await callOnce(
    { operators: [OPERATOR], kill_switch: { tools: ["test_k"] } },
    {},
    "test_k",
  );
  assert.equal(killed.env.policy_verdict, "VOID");
  assert.match(killed.env.message, /"kill_switch"/);
  assert.deepEqual(killed.open, []);
  // Anonymous caller, destructive tool: an approval adds only the human witness, 2 of 3.
  const witnessed = await callOnce(
    { operators: [OPERATOR], tri_witness: { required: 3 } },
    { destructiveHint: true },
    "test_w",
  );
  assert.equal(witnessed.env.policy_verdict, "VOID");
  assert.match(witnessed.env.message, /"tri_witness\.required"/);
  assert.deepEqual(witnessed.open, []);
});

Deno.test("a hold an operator can release is still created", async () => {
  const held = await callOnce(
    { operators: [OPERATOR], tools: { test_h: { hold: true } } },
    {},
    "test_h",
  );
  assert.equal(held.env.policy_verdict, "888_HOLD");
  assert.equal(held.env.status, "PENDING");
  assert.equal(held.runs, 0);
  assert.equal(held.open.length, 1);
});

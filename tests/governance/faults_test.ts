// Faults on the hold path reach the call's edge instead of becoming verdicts: a bug while
// releasing an approved hold was sealed as VOID "hold: <the bug's message>", and a failure to
// record a human's answer was logged as the client's elicitation failing.
import assert from "node:assert/strict";
import {
  createGovernance,
  createHoldStore,
  createNoLimiter,
  DEFAULT_POLICY,
  generateOperatorKey,
  type GovernedRequest,
  holdDigest,
  type HoldStore,
  loadOperatorKey,
  signDecision,
} from "../../src/governance/mod.ts";
import { silentLogger } from "../../src/lib/mod.ts";

const args = { path: "/tmp/x" };
const request = (holdId?: string): GovernedRequest => ({
  tool: {
    name: "delete_file",
    registered: true,
    annotations: { readOnlyHint: false, destructiveHint: true },
    hasOutputSchema: false,
  },
  call: {
    tool: "delete_file",
    arguments: args,
    principal: "agent",
    transport: "rest",
    argumentBytes: 20,
    schemaIssues: [],
    ...(holdId ? { holdId } : {}),
  },
});

const operatorKey = await generateOperatorKey("alice");
// With an operator configured a hold can be released, so the pipeline creates one.
const policy = {
  ...DEFAULT_POLICY,
  operators: [{ name: "alice", public_key: operatorKey.publicKey }],
};

function governanceOver(holds: HoldStore) {
  const sealed: Record<string, unknown>[] = [];
  const governance = createGovernance({
    policy,
    policyHash: "0".repeat(64),
    holds,
    rates: createNoLimiter(),
    seal: (fields) => {
      sealed.push(fields);
      return Promise.resolve({ index: sealed.length - 1, leafHash: "0".repeat(64) });
    },
    knownEvidence: () => Promise.resolve(new Set()),
    logger: silentLogger,
  });
  return { governance, sealed };
}

/** A hold for the call, approved by one operator's signature. */
async function approvedHold(holds: HoldStore) {
  const key = operatorKey;
  const hold = await holds.create({
    digest: holdDigest({ tool: "delete_file", arguments: args, principal: "agent" }),
    tool: "delete_file",
    principal: "agent",
    session: null,
    reasons: ["F1 destructive"],
    expirySeconds: 60,
    requiredSigners: 1,
  });
  const signer = await loadOperatorKey(key.keyFile);
  await holds.decide(hold.id, {
    decision: "approve",
    operator: "alice",
    signature: await signDecision(signer, {
      decision: "approve",
      holdId: hold.id,
      digest: hold.digest,
    }),
    operators: [{ name: "alice", public_key: key.publicKey }],
  });
  return hold;
}

Deno.test("an approved hold releases the call; a fault while releasing it is not a verdict", async () => {
  using kv = await Deno.openKv(":memory:");
  const holds = createHoldStore(kv);
  // The real path first: the approval releases the call, which runs.
  const good = await approvedHold(holds);
  let ran = 0;
  const run = () => {
    ran++;
    return Promise.resolve({ isError: false, text: "deleted" });
  };
  const released = await governanceOver(holds).governance.run(request(good.id), run);
  assert.equal(ran, 1);
  assert.notEqual(released.verdict.verdict, "VOID");
  // A store refusal stays a verdict: the hold was used once already.
  const again = await governanceOver(holds).governance.run(request(good.id), run);
  assert.equal(again.verdict.verdict, "VOID");
  assert.match(again.verdict.reasons.join(), /hold: .*already used/);
  assert.equal(ran, 1);

  // A bug inside release() reaches the caller's edge.
  const hold = await approvedHold(holds);
  const faulty: HoldStore = {
    ...holds,
    release: () => Promise.reject(new TypeError("Cannot read properties of undefined")),
  };
  const { governance, sealed } = governanceOver(faulty);
  await assert.rejects(governance.run(request(hold.id), run), TypeError);
  assert.equal(ran, 1, "nothing ran");
  assert.equal(sealed.some((e) => e.verdict === "VOID"), false, "no VOID sealed for a bug");
});

Deno.test("a client that fails to answer a hold prompt leaves the call held; failing to record an answer is a fault", async () => {
  using kv = await Deno.openKv(":memory:");
  const holds = createHoldStore(kv);
  const held = await governanceOver(holds).governance.run(
    request(),
    () => Promise.reject(new Error("must not run")),
    { onHold: () => Promise.reject(new Error("client went away")) },
  );
  assert.equal(held.verdict.verdict, "888_HOLD");

  const faulty: HoldStore = {
    ...holds,
    recordHuman: () => Promise.reject(new TypeError("hold.human is undefined")),
  };
  await assert.rejects(
    governanceOver(faulty).governance.run(
      { ...request(), call: { ...request().call, principal: "other" } },
      () => Promise.reject(new Error("must not run")),
      { onHold: () => Promise.resolve("accept") },
    ),
    TypeError,
  );
});

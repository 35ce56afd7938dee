// deno-lint-ignore-file no-explicit-any -- envelopes are probed field by field
import assert from "node:assert/strict";
import { generateOperatorKey, loadOperatorKey, signDecision } from "../../src/governance/mod.ts";
import { keygenOperator } from "../_helpers/operator.ts";
import { startServer, type TestServer } from "../_helpers/server.ts";
import { createCounterTool } from "../_helpers/tools.ts";

/** Calls `name` through the server's registry as `principal` (under `holdId` if given). */
function caller(server: TestServer, principal = "anonymous") {
  return async (name: string, args: Record<string, unknown>, holdId?: string) => {
    const out = await server.app.registry.call(name, args, {
      principal,
      ...(holdId ? { holdId } : {}),
    });
    return { out, env: out.envelope as any };
  };
}

/** The operator `alice` approves the hold over POST /holds/:id/approve with `keyText` (a key file's text). */
async function approveOverHttp(server: TestServer, keyText: string, holdId: string) {
  const hold = await server.app.governance.holds.get(holdId);
  const key = await loadOperatorKey(keyText);
  const signature = await signDecision(key, { decision: "approve", holdId, digest: hold!.digest });
  return await fetch(`${server.url}/holds/${holdId}/approve`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ operator: "alice", signature }),
  });
}

Deno.test("chain: apex_judge follows the findings; a retried SABAR step stops blocking; a sealed session is closed", async () => {
  await using server = await startServer();
  const call = caller(server, "alice");
  const anchor = await call("anchor_session", { query: "Publish the release notes" });
  const session_id = anchor.env.data.session_id;
  const evidence = session_id; // the anchored session, as search_reality cites it

  // Right after anchor_session: no token, SABAR naming the missing steps, next_tool not seal_vault.
  const early = await call("apex_judge", { session_id });
  assert.equal(early.env.data.verdict, "SABAR");
  assert.equal(early.env.data.governance_token, null);
  assert.match(early.out.text, /^SABAR · /);
  assert.match(early.env.data.reasons.join(), /reason_mind, simulate_heart, critique_thought/);
  assert.equal(early.env.next_tool, "reason_mind");

  // An ungrounded claim is SABAR and says which argument to change; retried with evidence it counts.
  const refused = await call("reason_mind", {
    session_id,
    query: "The release notes were reviewed",
    grounding: [],
  });
  assert.equal(refused.env.policy_verdict, "SABAR");
  assert.match(refused.env.message, /`grounding`/);
  await call("reason_mind", {
    session_id,
    query: "The release notes were reviewed",
    grounding: [evidence],
  });
  await call("simulate_heart", { session_id, query: "publish the release notes" });
  await call("critique_thought", { session_id, plan: { steps: ["publish"] } });
  const judged = await call("apex_judge", { session_id });
  assert.equal(judged.env.data.verdict, "SEAL", judged.env.data.reasons.join());
  assert.equal(judged.env.next_tool, "seal_vault");
  const token = judged.env.data.governance_token;
  assert.ok(token);

  // A contradiction added after judging voids the old token's judgement and is SABAR.
  await call("reason_mind", {
    session_id,
    query: "The release notes were not reviewed",
    grounding: [evidence],
  });
  const stale = await call("seal_vault", { session_id, summary: "x", governance_token: token });
  assert.equal(stale.env.status, "ERROR");
  assert.match(stale.out.text, /^ERROR · .*apex_judge again/);
  const contra = await call("apex_judge", { session_id });
  assert.equal(contra.env.data.verdict, "SABAR");
  assert.match(contra.env.data.fixes.join(), /`retract`/);
  await call("reason_mind", {
    session_id,
    query: "Reviewed by two people",
    grounding: [evidence],
    retract: [1],
  });
  const again = await call("apex_judge", { session_id });
  assert.equal(again.env.data.verdict, "SEAL", again.env.data.reasons.join());
  const sealed = await call("seal_vault", {
    session_id,
    summary: "published",
    governance_token: again.env.data.governance_token,
  });
  assert.equal(sealed.env.status, "OK", sealed.env.message);
  assert.equal(sealed.env.next_tool, null);

  // Closed: every later step is refused.
  for (
    const [name, args] of [
      ["reason_mind", { session_id, query: "more release notes", grounding: [evidence] }],
      ["simulate_heart", { session_id, query: "more" }],
      ["critique_thought", { session_id }],
      ["apex_judge", { session_id }],
      ["recall_memory", { session_id, current_thought_vector: "notes" }],
    ] as const
  ) {
    const r = await call(name, args);
    assert.equal(r.env.status, "ERROR", name);
    assert.match(r.env.message, /already sealed/, name);
    assert.equal(r.env.next_tool, null);
  }
});

Deno.test("chain: an irreversible impact holds apex_judge until an operator approves; overclaims are PARTIAL", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { publicKey: pub, keyFile } = await keygenOperator(dir);
    await using server = await startServer({
      policy: { operators: [{ name: "alice", public_key: pub }] },
    });
    const call = caller(server);
    const anchor = await call("anchor_session", { query: "Clean up old customer data" });
    const session_id = anchor.env.data.session_id;
    const evidence = session_id;
    await call("reason_mind", {
      session_id,
      query: "This will always be safe for customer data",
      grounding: [evidence],
    });
    const heart = await call("simulate_heart", {
      session_id,
      query: "delete all customer records older than 2019",
    });
    assert.equal(heart.env.data.reversibility, "irreversible");
    await call("critique_thought", { session_id });
    const held = await call("apex_judge", { session_id });
    assert.equal(held.env.status, "PENDING");
    assert.match(held.out.text, /^888_HOLD · /);
    const holdId = held.env._constitutional.hold.id;
    // Repeating it before approval gives no token.
    const early = await call("apex_judge", { session_id }, holdId);
    assert.equal(early.env.data?.governance_token ?? null, null);
    const res = await approveOverHttp(server, await Deno.readTextFile(keyFile), holdId);
    assert.equal(res.status, 200, await res.text());
    const approved = await call("apex_judge", { session_id }, holdId);
    assert.equal(approved.env.status, "OK", approved.env.message);
    // Approved, but the claim overclaims ("always"): PARTIAL, still sealable.
    assert.equal(approved.env.data.verdict, "PARTIAL", approved.env.data.reasons.join());
    assert.match(approved.out.text, /^PARTIAL · /);
    assert.ok(approved.env.data.governance_token);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("chain: text summaries start with the real outcome (tool error, declined hold)", async () => {
  const counter = createCounterTool("test_held");
  const op = await generateOperatorKey("alice");
  await using server = await startServer({
    extraTools: [counter.tool],
    policy: {
      tools: { test_held: { hold: true } },
      operators: [{ name: "alice", public_key: op.publicKey }],
    },
  });
  const div = await server.app.registry.call("calculate", { expression: "1/0" }, {
    principal: "anonymous",
  });
  if (div.isError) assert.match(div.text, /^ERROR · /);
  const bad = await server.app.registry.call("apex_judge", {
    session_id: "sess_00000000-0000-4000-8000-000000000000",
  }, { principal: "anonymous" });
  assert.match(bad.text, /^ERROR · .*anchor_session/);
  const declined = await server.app.registry.call("test_held", { note: "x" }, {
    principal: "anonymous",
    client: {
      capabilities: { elicitation: {} },
      log: async () => {},
      progress: async () => {},
      request: () => Promise.resolve({ action: "decline" }),
    },
  });
  assert.match(declined.text, /^DENIED · Denied/);
  assert.equal(counter.runs(), 0);
});

Deno.test("chain: one evidence-id scheme — a fetched URL, its content hash (with or without sha256:) and a search citable ground a claim; irrelevant evidence does not", async () => {
  const ac = new AbortController();
  const { promise: listening, resolve } = Promise.withResolvers<number>();
  const origin = Deno.serve({
    port: 0,
    hostname: "127.0.0.1",
    signal: ac.signal,
    onListen: ({ port }) => resolve(port),
  }, () =>
    new Response(
      "<html><title>Release notes 2.1</title><body>Release notes: the parser was rewritten.</body></html>",
      { headers: { "content-type": "text/html" } },
    ));
  const port = await listening;
  const server = await startServer({ policy: { fetch: { allow_hosts: ["127.0.0.1"] } } });
  try {
    const reg = server.app.registry;
    const who = { principal: "alice" };
    const call = async (name: string, args: Record<string, unknown>) =>
      (await reg.call(name, args, who)).envelope as any;
    const url = `http://127.0.0.1:${port}/notes`;
    const fetched = await call("fetch_content", { id: url });
    assert.equal(fetched.status, "OK", fetched.message);
    const hash = fetched.data.evidence_id;
    const session_id = (await call("anchor_session", { query: "check the parser" })).data
      .session_id;
    const claim = "The release notes say the parser was rewritten";
    for (const ref of [url, hash, `sha256:${hash.toUpperCase()}`]) {
      const r = await call("reason_mind", { session_id, query: claim, grounding: [ref] });
      assert.equal(r.status, "OK", `${ref}: ${r.message}`);
      // A URL is recorded as the content hash it resolved to.
      assert.deepEqual(r.data.claims.at(-1).evidence, [hash]);
    }
    const found = await call("search_reality", { query: "parser rewritten" });
    const citable = found.data.results.map((x: any) => x.id);
    assert.ok(citable.length > 0);
    for (const id of citable) {
      const r = await call("reason_mind", { session_id, query: claim, grounding: [id] });
      assert.equal(r.status, "OK", `${id}: ${r.message}`);
    }
    // Existing, alice's own, but irrelevant: the vault entry of her fetch_content call.
    const off = await call("reason_mind", {
      session_id,
      query: "The parser was rewritten",
      grounding: [`vault:${fetched._constitutional.vault.index}`],
    });
    assert.equal(off.policy_verdict, "SABAR");
    assert.match(off.message, /shares no words.*`grounding`/);
    // A URL never fetched is not evidence.
    const never = await call("reason_mind", {
      session_id,
      query: claim,
      grounding: [`http://127.0.0.1:${port}/other`],
    });
    assert.equal(never.policy_verdict, "SABAR");
  } finally {
    await server.close();
    ac.abort();
    await origin.finished;
  }
});

Deno.test("chain: a milder second simulate_heart, or a harmless one under an irreversible intent, does not wash out the hold", async () => {
  const generated = await generateOperatorKey("alice");
  await using server = await startServer({
    policy: { operators: [{ name: "alice", public_key: generated.publicKey }] },
  });
  const reg = server.app.registry;
  const call = async (name: string, args: Record<string, unknown>) =>
    (await reg.call(name, args, { principal: "alice" })).envelope as any;
  const walk = async (intent: string, simulations: string[]) => {
    const session_id = (await call("anchor_session", { query: intent })).data.session_id;
    await call("reason_mind", {
      session_id,
      query: `The plan to ${intent.toLowerCase()} was reviewed`,
      grounding: [session_id],
    });
    let last: any;
    for (const query of simulations) last = await call("simulate_heart", { session_id, query });
    await call("critique_thought", { session_id, plan: { steps: ["act"] } });
    return { session_id, last, judged: await call("apex_judge", { session_id }) };
  };

  // Simulated as irreversible, then again as a harmless read: the session keeps the worst.
  const retold = await walk("Tidy the reporting tables", [
    "drop every table in production",
    "read the report",
  ]);
  assert.match(retold.last.message, /keeps its earlier finding: irreversible, blast radius high/);
  assert.equal(retold.judged.policy_verdict, "888_HOLD", retold.judged.message);
  assert.equal(retold.judged.data?.governance_token ?? null, null);

  // Anchored for an irreversible action, simulated as a harmless one: held on the intent.
  const hidden = await walk("Wipe the entire customer database", ["read a file"]);
  assert.equal(hidden.judged.policy_verdict, "888_HOLD", hidden.judged.message);
  assert.equal(hidden.judged.data?.governance_token ?? null, null);

  // An honest, harmless session still seals.
  const honest = await walk("Publish the release notes", ["publish the release notes"]);
  assert.equal(honest.judged.data.verdict, "SEAL", honest.judged.data.reasons.join());
  assert.ok(honest.judged.data.governance_token);
});

Deno.test("chain: an approval covers the session as it was held; a step added after the hold is not approved with it", async () => {
  const op = await generateOperatorKey("alice");
  await using server = await startServer({
    policy: { operators: [{ name: "alice", public_key: op.publicKey }] },
  });
  const call = caller(server);
  const intent = "Archive old customer records";
  const session_id = (await call("anchor_session", { query: intent })).env.data.session_id;
  await call("reason_mind", {
    session_id,
    query: `The plan to ${intent.toLowerCase()} was reviewed`,
    grounding: [session_id],
  });
  await call("simulate_heart", { session_id, query: "delete customer records older than 2019" });
  await call("critique_thought", { session_id });
  const held = await call("apex_judge", { session_id });
  assert.equal(held.env.status, "PENDING", held.env.message);
  const holdId = held.env._constitutional.hold.id;

  // While the operator looks, the caller widens the action; the operator approves what was held.
  // Wall time on purpose: steps are stamped with the real clock at ms resolution (no clock is
  // injected there), and the step must be stamped after the hold.
  await new Promise((r) => setTimeout(r, 2));
  await call("simulate_heart", { session_id, query: "drop every table in production" });
  const res = await approveOverHttp(server, op.keyFile, holdId);
  assert.equal(res.status, 200, await res.text());
  const judged = await call("apex_judge", { session_id }, holdId);
  assert.equal(judged.env.data.verdict, "888_HOLD", judged.env.data.reasons.join());
  assert.equal(judged.env.data.governance_token, null);
  assert.match(
    judged.env.data.reasons[0],
    new RegExp(`session changed after hold ${holdId} was made \\(simulate_heart at `),
  );
  assert.match(judged.env.data.fixes[0], /without the hold/);
  // Called again without the hold: held anew, for the session as it is now.
  const again = await call("apex_judge", { session_id });
  assert.equal(again.env.status, "PENDING");
  assert.notEqual(again.env._constitutional.hold.id, holdId);
});

import assert from "node:assert/strict";
import {
  amanah,
  APPROVAL_TOOL,
  clarity,
  commandAuthority,
  type FloorResult,
  genius,
  humility,
  omega0,
  ontology,
  peace,
  sovereign,
  triWitness,
  truth,
} from "../../src/governance/mod.ts";
import {
  assertOff,
  makeCall,
  makeRates,
  makeResult,
  makeTool,
  policyWith,
  withMode,
} from "./_fixtures.ts";

const APPROVED = { approval: { valid: true, signers: 1 } };

// ---- F1 Amanah ----

Deno.test("F1 amanah scores read-only 1, reversible write 0.5, destructive 0", () => {
  const policy = policyWith();
  const read = amanah({ call: makeCall(), tool: makeTool(), policy });
  assert.deepEqual([read.score, read.pass, read.reason], [1, true, "read-only tool get_time"]);
  const write = amanah({
    call: makeCall({ tool: "file_write" }),
    tool: makeTool({
      name: "file_write",
      annotations: { readOnlyHint: false, destructiveHint: false },
    }),
    policy,
  });
  assert.deepEqual([write.score, write.pass, write.reason], [
    0.5,
    true,
    "reversible write tool file_write",
  ]);
});

Deno.test("F1 amanah holds a destructive tool without an operator approval", () => {
  const input = {
    call: makeCall({ tool: "delete_file" }),
    tool: makeTool({ name: "delete_file", annotations: { destructiveHint: true } }),
    policy: policyWith(),
  };
  const held = amanah(input);
  assert.equal(held.pass, false);
  assert.equal(held.score, 0);
  assert.equal(held.action, "hold");
  assert.equal(held.reason, "destructive tool delete_file without an operator approval");
  const released = amanah({ ...input, call: makeCall({ tool: "delete_file", ...APPROVED }) });
  assert.equal(released.pass, true);
  assert.equal(released.score, 0);
  assert.equal(released.reason, "destructive tool delete_file approved by an operator");
});

Deno.test("F1 amanah lets policy overrule the annotations", () => {
  const irreversible = amanah({
    call: makeCall(),
    tool: makeTool(),
    policy: policyWith({ tools: { get_time: { reversible: false } } }),
  });
  assert.equal(irreversible.action, "hold");
  assert.equal(
    irreversible.reason,
    "irreversible by policy tool get_time without an operator approval",
  );
  const reversible = amanah({
    call: makeCall({ tool: "rm" }),
    tool: makeTool({ name: "rm", annotations: { destructiveHint: true } }),
    policy: policyWith({ tools: { rm: { reversible: true } } }),
  });
  assert.deepEqual([reversible.pass, reversible.score], [true, 0.5]);
});

Deno.test("F1 amanah cannot evaluate a tool without annotations", () => {
  const none = amanah({
    call: makeCall(),
    tool: makeTool({ annotations: undefined }),
    policy: policyWith(),
  });
  assert.deepEqual(
    [none.score, none.pass, none.evaluated, none.applicable],
    [0.5, true, false, true],
  );
  assert.equal(none.reason, "no annotations or policy say whether get_time is reversible");
  const partial = amanah({
    call: makeCall(),
    tool: makeTool({ annotations: { readOnlyHint: false } }),
    policy: policyWith(),
  });
  assert.equal(partial.evaluated, false);
  assert.equal(partial.reason, "write tool get_time has no destructiveHint");
});

Deno.test("F1 amanah keeps its hold in soft mode and is neutral when off", () => {
  const input = {
    call: makeCall(),
    tool: makeTool({ annotations: { destructiveHint: true } }),
  };
  assert.equal(amanah({ ...input, policy: withMode("F1", "soft") }).action, "hold");
  assertOff(amanah({ ...input, policy: withMode("F1", "off") }));
});

// ---- F2 Truth ----

const known = (id: string) => id.startsWith("vault:");

Deno.test("F2 truth passes when every claim cites known evidence", () => {
  const result = truth({
    call: makeCall({
      claims: [{ text: "a", evidence: ["x", "vault:1"] }, { text: "b", evidence: ["vault:2"] }],
      knownEvidence: known,
    }),
    policy: policyWith(),
  });
  assert.deepEqual([result.pass, result.score], [true, 1]);
  assert.equal(result.reason, "2 of 2 claims grounded in known evidence");
});

Deno.test("F2 truth asks for evidence (SABAR) and lists the ungrounded claims", () => {
  const result = truth({
    call: makeCall({
      claims: [
        { text: "a", evidence: ["vault:1"] },
        { text: "b", evidence: ["made-up"] },
        { text: "c", evidence: [] },
      ],
      knownEvidence: known,
    }),
    policy: policyWith(),
  });
  assert.equal(result.pass, false);
  assert.equal(result.action, "sabar");
  assert.equal(result.score, 0.333);
  assert.equal(
    result.reason,
    "1 of 3 claims grounded in known evidence, below the threshold 1; " +
      "claims[1]: no cited id is known (made-up); add a vault:N, content hash or fetched URL to `claims[1].evidence`; " +
      "claims[2]: add an evidence id (vault:N, a content hash or a fetched URL) to `claims[2].evidence`",
  );
  assert.deepEqual(result.details?.ungrounded, [1, 2]);
  // Each fix names the argument to change (here the claims carry no argument name).
  assert.deepEqual(result.details?.fixes, [
    "claims[1]: no cited id is known (made-up); add a vault:N, content hash or fetched URL to `claims[1].evidence`",
    "claims[2]: add an evidence id (vault:N, a content hash or a fetched URL) to `claims[2].evidence`",
  ]);
});

Deno.test("F2 truth: cited evidence must share a word with the claim; the fix names the argument", () => {
  const texts: Record<string, string> = {
    "vault:0": '{"type":"policy_loaded","source":"built-in default"}',
    "vault:1": '{"type":"tool_call","tool":"fetch_content","note":"release notes 2.1"}',
  };
  const result = truth({
    call: makeCall({
      claims: [
        { text: "The release notes were reviewed", evidence: ["vault:0"], argument: "grounding" },
        { text: "The release notes were reviewed", evidence: ["vault:1"], argument: "grounding" },
      ],
      knownEvidence: (id) => id in texts,
      evidenceText: (id) => texts[id],
    }),
    policy: policyWith(),
  });
  assert.equal(result.pass, false);
  assert.deepEqual(result.details?.ungrounded, [0]);
  assert.match(String((result.details?.fixes as string[])[0]), /shares no words.*`grounding`/);
});

Deno.test("F2 truth applies its threshold, is n/a without claims and unevaluated without an index", () => {
  const claims = [{ text: "a", evidence: ["vault:1"] }, { text: "b", evidence: [] }];
  const half = truth({
    call: makeCall({ claims, knownEvidence: known }),
    policy: policyWith({ floors: { F2: { threshold: 0.5 } } }),
  });
  assert.deepEqual([half.pass, half.score], [true, 0.5]);
  const none = truth({ call: makeCall({ claims: [] }), policy: policyWith() });
  assert.deepEqual([none.applicable, none.pass, none.reason], [false, true, "no claims to ground"]);
  const blind = truth({ call: makeCall({ claims }), policy: policyWith() });
  assert.deepEqual([blind.applicable, blind.evaluated, blind.pass], [true, false, true]);
  assert.equal(blind.reason, "2 claims but no evidence index to check them against");
});

Deno.test("F2 truth in soft mode warns; off skips", () => {
  const call = makeCall({ claims: [{ text: "a", evidence: [] }], knownEvidence: known });
  assert.equal(truth({ call, policy: withMode("F2", "soft") }).action, "partial");
  assertOff(truth({ call, policy: withMode("F2", "off") }));
});

// ---- F3 Tri-Witness ----

Deno.test("F3 tri-witness applies only to high-stakes calls", () => {
  const result = triWitness({ call: makeCall(), tool: makeTool(), policy: policyWith() });
  assert.deepEqual([result.applicable, result.pass, result.reason], [
    false,
    true,
    "not a high-stakes call",
  ]);
});

Deno.test("F3 tri-witness holds an anonymous high-stakes call without a signature", () => {
  const policy = policyWith({ tools: { transfer: { high_stakes: true } } });
  const tool = makeTool({
    name: "transfer",
    annotations: { readOnlyHint: false, destructiveHint: false },
  });
  const held = triWitness({
    call: makeCall({ tool: "transfer", principal: "anonymous" }),
    tool,
    policy,
  });
  assert.equal(held.pass, false);
  assert.equal(held.action, "hold");
  assert.equal(held.score, 0.333);
  assert.equal(held.reason, "high-stakes call to transfer: 1 of 3 witnesses (policy), 2 required");
  const named = triWitness({ call: makeCall({ tool: "transfer" }), tool, policy });
  assert.deepEqual([named.pass, named.score], [true, 0.667]);
  assert.equal(named.reason, "2 of 3 witnesses (policy, principal), 2 required");
  const all = triWitness({ call: makeCall({ tool: "transfer", ...APPROVED }), tool, policy });
  assert.equal(all.score, 1);
});

Deno.test("F3 tri-witness counts a destructive tool as high-stakes and honours required", () => {
  const tool = makeTool({ name: "rm", annotations: { destructiveHint: true } });
  const strict = policyWith({ tri_witness: { required: 3 } });
  const held = triWitness({ call: makeCall({ tool: "rm" }), tool, policy: strict });
  assert.equal(held.action, "hold");
  assert.equal(
    triWitness({ call: makeCall({ tool: "rm" }), tool, policy: withMode("F3", "soft") }).pass,
    true,
  );
  const soft = triWitness({
    call: makeCall({ tool: "rm", principal: "anonymous" }),
    tool,
    policy: withMode("F3", "soft"),
  });
  assert.equal(soft.action, "partial");
  assertOff(triWitness({ call: makeCall({ tool: "rm" }), tool, policy: withMode("F3", "off") }));
});

// ---- F4 Clarity ----

Deno.test("F4 clarity passes valid arguments within the size limit", () => {
  const result = clarity({ call: makeCall(), policy: policyWith() });
  assert.deepEqual([result.pass, result.score, result.reason], [
    true,
    1,
    "arguments valid and within size limits",
  ]);
});

Deno.test("F4 clarity returns the schema issues and the size problem to fix", () => {
  const result = clarity({
    call: makeCall({
      arguments: { timezone: 7, note: "x".repeat(40) },
      schemaIssues: ["`timezone`: expected string"],
      argumentBytes: 300000,
    }),
    policy: policyWith(),
  });
  assert.equal(result.action, "sabar");
  assert.equal(result.score, 0.333);
  // Each names the argument to change: the size problem the largest one.
  const issues = [
    "`timezone`: expected string",
    "arguments are 300000 bytes, over the limit of 262144; shorten `note` (42 bytes)",
  ];
  assert.deepEqual(result.details?.issues, issues);
  assert.deepEqual(result.details?.fixes, issues);
  assert.equal(result.reason, `arguments need fixing: ${issues.join("; ")}`);
  const small = clarity({
    call: makeCall({ argumentBytes: 101 }),
    policy: policyWith({ limits: { max_argument_bytes: 100 } }),
  });
  assert.equal(small.score, 0.5);
  assert.equal(
    clarity({ call: makeCall({ schemaIssues: ["x"] }), policy: withMode("F4", "soft") }).action,
    "partial",
  );
  assertOff(clarity({ call: makeCall({ schemaIssues: ["x"] }), policy: withMode("F4", "off") }));
});

// ---- F5 Peace² ----

Deno.test("F5 peace scores 1 − utilisation within the limits", () => {
  const result = peace({
    call: makeCall(),
    tool: makeTool(),
    rates: makeRates({ principalCallsLastMinute: 150, principalInFlight: 16 }),
    policy: policyWith(),
  });
  assert.deepEqual([result.pass, result.score], [true, 0.5]);
  assert.equal(result.reason, "within rate limits (utilisation 50%)");
});

Deno.test("F5 peace asks to retry (SABAR) over a per-minute limit", () => {
  const result = peace({
    call: makeCall(),
    tool: makeTool(),
    rates: makeRates({ principalCallsLastMinute: 600, retryAfterS: 12.2 }),
    policy: policyWith(),
  });
  assert.equal(result.pass, false);
  assert.equal(result.action, "sabar");
  assert.equal(result.score, 0);
  assert.equal(
    result.reason,
    "principal alice made 600 calls in the last minute (limit 600); retry after 13 s",
  );
  assert.deepEqual(result.details, {
    retry_after_s: 13,
    fixes: ["no argument to change: repeat the same call after 13 s"],
  });
});

Deno.test("F5 peace checks the tool limit, concurrency and the circuit breaker", () => {
  const policy = policyWith({
    rate_limits: { per_tool_per_minute: 10, max_concurrent_per_principal: 2 },
  });
  const tool = peace({
    call: makeCall(),
    tool: makeTool(),
    rates: makeRates({ toolCallsLastMinute: 10 }),
    policy,
  });
  assert.equal(
    tool.reason,
    "tool get_time was called 10 times in the last minute (limit 10); retry after 60 s",
  );
  const busy = peace({
    call: makeCall(),
    tool: makeTool(),
    rates: makeRates({ principalInFlight: 2 }),
    policy,
  });
  assert.equal(busy.reason, "principal alice has 2 calls in flight (limit 2); retry after 60 s");
  const open = peace({
    call: makeCall(),
    tool: makeTool({ upstream: "github" }),
    rates: makeRates({ circuitOpen: true, retryAfterS: 30 }),
    policy,
  });
  assert.equal(open.reason, "circuit breaker for upstream github is open; retry after 30 s");
  assert.equal(open.score, 0);
  // 0 = unlimited
  const unlimited = peace({
    call: makeCall(),
    tool: makeTool(),
    rates: makeRates({ principalCallsLastMinute: 10_000 }),
    policy: policyWith({ rate_limits: { per_principal_per_minute: 0 } }),
  });
  assert.equal(unlimited.pass, true);
});

Deno.test("F5 peace in soft mode warns; off skips", () => {
  const rates = makeRates({ principalInFlight: 99 });
  const input = { call: makeCall(), tool: makeTool(), rates };
  assert.equal(peace({ ...input, policy: withMode("F5", "soft") }).action, "partial");
  assertOff(peace({ ...input, policy: withMode("F5", "off") }));
});

// ---- F7 Humility ----

function stub(id: FloorResult["id"], evaluated: boolean, applicable = true): FloorResult {
  return { id, name: id, score: 1, pass: true, evaluated, applicable, reason: "" };
}

Deno.test("F7 humility computes Ω0 over applicable floors, excluding itself", () => {
  const floors = [
    stub("F1", false),
    stub("F2", false, false),
    stub("F3", true),
    stub("F4", true),
    stub("F7", false),
    stub("F8", false),
  ];
  assert.deepEqual(omega0(floors), { omega0: 0.5, applicable: 4, unevaluated: ["F1", "F8"] });
  const result = humility(floors, policyWith());
  assert.equal(result.pass, false);
  assert.equal(result.action, "partial");
  assert.equal(result.score, 0.5);
  assert.equal(
    result.reason,
    "Ω0 = 0.5: 2 of 4 applicable floors could not be evaluated (F1, F8), above the threshold 0.34",
  );
  assert.deepEqual(result.details, { omega_0: 0.5, unevaluated: ["F1", "F8"], applicable: 4 });
});

Deno.test("F7 humility passes at or below its threshold", () => {
  const floors = [stub("F1", false), stub("F3", true), stub("F4", true)];
  const result = humility(floors, policyWith());
  assert.deepEqual([result.pass, result.score], [true, 0.667]);
  assert.equal(humility(floors, policyWith({ floors: { F7: { threshold: 0.3 } } })).pass, false);
  assert.equal(humility([], policyWith()).score, 1);
  assert.equal(
    humility(floors, policyWith({ floors: { F7: { mode: "hard", threshold: 0 } } })).action,
    "partial",
  );
  assertOff(humility(floors, withMode("F7", "off")));
});

// ---- F8 Genius ----

Deno.test("F8 genius passes a result matching its output schema", () => {
  const result = genius({ result: makeResult(), policy: policyWith() });
  assert.deepEqual([result.pass, result.score, result.reason], [
    true,
    1,
    "result matches the output schema",
  ]);
});

Deno.test("F8 genius warns (soft by default) or voids (hard) on schema issues", () => {
  const bad = makeResult({ outputSchemaIssues: ["time: expected string"] });
  const soft = genius({ result: bad, policy: policyWith() });
  assert.equal(soft.action, "partial");
  assert.equal(soft.reason, "result does not match the output schema: time: expected string");
  assert.equal(genius({ result: bad, policy: withMode("F8", "hard") }).action, "void");
  const malformed = genius({
    result: makeResult({ wellFormed: false }),
    policy: withMode("F8", "hard"),
  });
  assert.equal(malformed.action, "void");
  assert.equal(malformed.reason, "result is not a well-formed tool result");
  assertOff(genius({ result: bad, policy: withMode("F8", "off") }));
});

Deno.test("F8 genius does not fail tool errors and cannot evaluate without a schema", () => {
  const error = genius({
    result: makeResult({ isError: true, outputSchemaIssues: ["x"] }),
    policy: policyWith(),
  });
  assert.deepEqual([error.pass, error.applicable], [true, false]);
  const none = genius({
    result: makeResult({ outputSchemaIssues: undefined }),
    policy: policyWith(),
  });
  assert.deepEqual([none.pass, none.evaluated, none.score, none.reason], [
    true,
    false,
    0.5,
    "no output schema",
  ]);
});

// ---- F10 Ontology ----

Deno.test("F10 ontology voids an unknown tool and holds a changed definition", () => {
  const policy = policyWith();
  const unknown = ontology({ tool: makeTool({ name: "nope", registered: false }), policy });
  assert.deepEqual([unknown.pass, unknown.action, unknown.reason], [
    false,
    "void",
    "unknown tool nope",
  ]);
  const changed = ontology({ tool: makeTool({ pinnedHash: "aa", definitionHash: "bb" }), policy });
  assert.equal(changed.action, "hold");
  assert.equal(changed.reason, "definition of get_time changed since it was pinned");
  const same = ontology({ tool: makeTool({ pinnedHash: "aa", definitionHash: "aa" }), policy });
  assert.deepEqual([same.pass, same.reason], [
    true,
    "registered tool get_time matches its pinned definition",
  ]);
  assert.equal(ontology({ tool: makeTool(), policy }).reason, "registered tool get_time");
  assert.equal(
    ontology({
      tool: makeTool({ pinnedHash: "aa", definitionHash: "bb" }),
      policy: withMode("F10", "soft"),
    }).action,
    "partial",
  );
  assertOff(ontology({ tool: makeTool({ registered: false }), policy: withMode("F10", "off") }));
});

// ---- F11 Command authority ----

Deno.test("F11 command authority permits a principal with a listed role", () => {
  const policy = policyWith({ tools: { get_time: { roles: ["user", "admin"] } } });
  const result = commandAuthority({ call: makeCall(), policy });
  assert.deepEqual([result.pass, result.reason], [true, "principal alice may call get_time"]);
});

Deno.test("F11 command authority voids denied tools, missing roles and unidentified callers", () => {
  const denied = commandAuthority({
    call: makeCall(),
    policy: policyWith({ tools: { get_time: { deny: true } } }),
  });
  assert.deepEqual([denied.action, denied.reason], ["void", "policy denies tool get_time"]);
  const role = commandAuthority({
    call: makeCall(),
    policy: policyWith({ tools: { get_time: { roles: ["admin"] } } }),
  });
  assert.equal(role.action, "void");
  assert.equal(
    role.reason,
    "principal alice (roles: user) lacks a role permitted for get_time (admin)",
  );
  const nobody = commandAuthority({ call: makeCall({ principal: "" }), policy: policyWith() });
  assert.deepEqual([nobody.action, nobody.reason], ["void", "caller not identified"]);
  // A tool named like an Object.prototype member has no rule unless one is written.
  assert.equal(
    commandAuthority({ call: makeCall({ tool: "constructor" }), policy: policyWith() }).pass,
    true,
  );
  assert.equal(
    commandAuthority({
      call: makeCall(),
      policy: policyWith({
        floors: { F11: { mode: "soft" } },
        tools: { get_time: { deny: true } },
      }),
    })
      .action,
    "partial",
  );
  assertOff(
    commandAuthority({ call: makeCall({ principal: "" }), policy: withMode("F11", "off") }),
  );
});

// ---- F13 Sovereign ----

Deno.test("F13 sovereign holds on a kill switch for the tool, principal or upstream", () => {
  const policy = policyWith({
    kill_switch: { tools: ["get_time"], principals: ["mallory"], upstreams: ["gh"] },
  });
  const tool = sovereign({ call: makeCall(), tool: makeTool(), policy });
  assert.deepEqual([tool.pass, tool.action, tool.reason], [
    false,
    "hold",
    "kill switch engaged on tool get_time",
  ]);
  const who = sovereign({
    call: makeCall({ tool: "x", principal: "mallory" }),
    tool: makeTool({ name: "x" }),
    policy,
  });
  assert.equal(who.reason, "kill switch engaged on principal mallory");
  const up = sovereign({
    call: makeCall({ tool: "x" }),
    tool: makeTool({ name: "x", upstream: "gh" }),
    policy,
  });
  assert.equal(up.reason, "kill switch engaged on upstream gh");
  // An approval does not lift a kill switch.
  assert.equal(sovereign({ call: makeCall(APPROVED), tool: makeTool(), policy }).action, "hold");
});

Deno.test("F13 sovereign holds a policy-held tool until an operator approves", () => {
  const policy = policyWith({ tools: { deploy: { hold: true } } });
  const input = { tool: makeTool({ name: "deploy" }), policy };
  const held = sovereign({ ...input, call: makeCall({ tool: "deploy" }) });
  assert.deepEqual([held.action, held.reason], [
    "hold",
    "policy requires an operator to approve deploy",
  ]);
  const released = sovereign({ ...input, call: makeCall({ tool: "deploy", ...APPROVED }) });
  assert.deepEqual([released.pass, released.reason], [true, "operator approved deploy"]);
  const ok = sovereign({ call: makeCall(), tool: makeTool(), policy });
  assert.deepEqual([ok.pass, ok.score, ok.reason], [true, 1, "no operator veto"]);
});

Deno.test("F13 sovereign voids an AI actor approving a hold, even in soft mode", () => {
  const call = makeCall({ tool: APPROVAL_TOOL, actor: "ai" });
  const tool = makeTool({ name: APPROVAL_TOOL });
  const result = sovereign({ call, tool, policy: policyWith() });
  assert.deepEqual([result.action, result.reason], ["void", "an AI actor can never approve"]);
  assert.equal(sovereign({ call, tool, policy: withMode("F13", "soft") }).action, "void");
  assert.equal(
    sovereign({
      call: makeCall({ tool: APPROVAL_TOOL, actor: "human" }),
      tool,
      policy: policyWith(),
    }).pass,
    true,
  );
  const held = policyWith({ floors: { F13: { mode: "soft" } }, tools: { deploy: { hold: true } } });
  assert.equal(
    sovereign({
      call: makeCall({ tool: "deploy" }),
      tool: makeTool({ name: "deploy" }),
      policy: held,
    }).action,
    "hold",
  );
  assertOff(sovereign({ call, tool, policy: withMode("F13", "off") }));
});

Deno.test("F10 never echoes a long or ill-formed unknown tool name in full", () => {
  const policy = policyWith();
  const long = ontology({
    tool: makeTool({ name: "x".repeat(100_000), registered: false }),
    policy,
  });
  assert(long.reason.length < 200, `reason is ${long.reason.length} characters`);
  assert(long.reason.includes("100000 characters"));
  const bad = ontology({ tool: makeTool({ name: "a\ud800", registered: false }), policy });
  assert(bad.reason.isWellFormed());
});

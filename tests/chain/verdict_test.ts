import assert from "node:assert/strict";
import {
  assessImpact,
  contradicts,
  critique,
  judgeSession,
  needsOperator,
} from "../../src/chain/mod.ts";
import type { GovSession } from "../../src/store/mod.ts";

type Step = GovSession["steps"][number];
const at = "2026-01-01T00:00:00.000Z";
const ok = (tool: string, stage: string, verdict = "SEAL"): Step => ({
  tool,
  stage,
  verdict,
  floors: { F2: 1000 },
  at,
  outcome: "ok",
});
const walked: Step[] = [
  ok("anchor_session", "000"),
  ok("reason_mind", "333"),
  ok("simulate_heart", "555"),
  ok("critique_thought", "666"),
];
const claim = (text: string) => ({ text, evidence: ["vault:1"], grounded: true });
const lowImpact = assessImpact("read the release notes", []);

Deno.test("chain verdict: right after anchor_session it is SABAR naming the missing steps", () => {
  const j = judgeSession({ steps: [ok("anchor_session", "000")], claims: [], notes: {} }, {
    approved: false,
  });
  assert.equal(j.verdict, "SABAR");
  assert.deepEqual(j.missing_steps, ["reason_mind", "simulate_heart", "critique_thought"]);
  assert.match(j.reasons.join(), /reason_mind, simulate_heart, critique_thought/);
  assert.match(j.fixes.join(), /`grounding`/);
  assert.equal(j.next_tool, "reason_mind");
});

Deno.test("chain verdict: a walked, clean session is SEAL and points at seal_vault", () => {
  const j = judgeSession({
    steps: walked,
    claims: [claim("The notes were reviewed")],
    notes: { impact: lowImpact },
  }, { approved: false });
  assert.equal(j.verdict, "SEAL", j.reasons.join());
  assert.equal(j.next_tool, "seal_vault");
});

Deno.test("chain verdict: irreversible or high-blast impact is 888_HOLD unless an operator approved", () => {
  for (
    const [query, who] of [
      ["delete the customer table", []],
      ["update every account in production", [
        "ops",
        "billing",
        "support",
        "users",
        "sales",
        "legal",
      ]],
    ] as const
  ) {
    const impact = assessImpact(query, who);
    assert.ok(needsOperator(impact), query);
    const s = { steps: walked, claims: [claim("ok")], notes: { impact } };
    const held = judgeSession(s, { approved: false });
    assert.equal(held.verdict, "888_HOLD", query);
    assert.notEqual(held.next_tool, "seal_vault");
    assert.equal(judgeSession(s, { approved: true }).verdict, "SEAL");
  }
});

Deno.test("chain verdict: contradictions are SABAR naming `retract`; retracting one clears it", () => {
  const claims = [
    claim("The backup is safe to restore"),
    claim("The backup isn't safe to restore"),
  ];
  const j = judgeSession({ steps: walked, claims, notes: { impact: lowImpact } }, {
    approved: false,
  });
  assert.equal(j.verdict, "SABAR");
  assert.match(j.fixes.join(), /`retract`/);
  assert.equal(j.next_tool, "reason_mind");
  const fixed = judgeSession({
    steps: walked,
    claims: [{ ...claims[0], retracted: true }, claims[1]],
    notes: { impact: lowImpact },
  }, { approved: false });
  assert.equal(fixed.verdict, "SEAL");
});

Deno.test("chain verdict: overclaims in claims or the critiqued plan are PARTIAL (still sealable)", () => {
  const a = judgeSession({
    steps: walked,
    claims: [claim("This migration will always succeed")],
    notes: { impact: lowImpact },
  }, { approved: false });
  assert.equal(a.verdict, "PARTIAL");
  assert.equal(a.next_tool, "seal_vault");
  const b = judgeSession({
    steps: walked,
    claims: [claim("ok")],
    notes: { impact: lowImpact, critique: { overclaims: ["guaranteed"] } },
  }, { approved: false });
  assert.equal(b.verdict, "PARTIAL");
});

Deno.test("chain verdict: a SABAR step retried successfully no longer blocks; one not retried does", () => {
  const refused = { ...ok("reason_mind", "333", "SABAR"), outcome: "not_executed" };
  const blocked = judgeSession({
    steps: [ok("anchor_session", "000"), ok("reason_mind", "333"), refused, ...walked.slice(2)],
    claims: [claim("ok")],
    notes: { impact: lowImpact },
  }, { approved: false });
  assert.equal(blocked.verdict, "SABAR");
  assert.equal(blocked.next_tool, "reason_mind");
  const retried = judgeSession({
    steps: [ok("anchor_session", "000"), refused, ...walked.slice(1)],
    claims: [claim("ok")],
    notes: { impact: lowImpact },
  }, { approved: false });
  assert.equal(retried.verdict, "SEAL", retried.reasons.join());
  // A step that ran but failed is not done either.
  const failed = judgeSession({
    steps: [
      ...walked.slice(0, 2),
      { ...ok("simulate_heart", "555"), outcome: "tool_error" },
      walked[3],
    ],
    claims: [claim("ok")],
    notes: {},
  }, { approved: false });
  assert.equal(failed.verdict, "SABAR");
  assert.equal(failed.next_tool, "simulate_heart");
});

Deno.test("chain critique: contradictions beyond exact negation; unrelated claims are not contradictions", () => {
  const pairs: [string, string][] = [
    ["The deploy is safe", "The deploy is not safe"],
    ["The backup can be restored", "The backup cannot be restored"],
    ["The change is reversible", "The change is irreversible"],
    ["The tests passed and the build is correct", "The tests passed and the build is incorrect"],
    ["Tests fail on main", "Tests never fail on main"],
  ];
  for (const [a, b] of pairs) assert.ok(contradicts(a, b), `${a} / ${b}`);
  for (
    const [a, b] of [
      ["The deploy is safe", "The deploy is safe"],
      ["The deploy is safe", "The database is not reachable"],
    ]
  ) assert.ok(!contradicts(a, b), `${a} / ${b}`);
  const found = critique([claim("x is true"), claim("x is false")], { note: "no risk at all" });
  assert.deepEqual(found.contradicting, [[0, 1]]);
  assert.deepEqual(found.overclaims, ["no risk"]);
});

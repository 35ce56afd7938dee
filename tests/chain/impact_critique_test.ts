/**
 * The chain's impact, critique and evidence-id rules (issue 8 §3: unit tests for chain/), without
 * MCP: each expected value follows from the rule as written in src/chain/.
 */
import assert from "node:assert/strict";
import {
  assessImpact,
  canonicalEvidenceId,
  contradicts,
  critique,
  needsOperator,
  parseEvidenceRef,
} from "../../src/chain/mod.ts";

Deno.test("assessImpact() scores reversibility, width and stakeholders into a blast radius", () => {
  // irreversible (2) + wide (2) = 4: high, operator needed.
  const wipe = assessImpact("Delete all customer records", []);
  assert.equal(wipe.reversibility, "irreversible");
  assert.equal(wipe.blast_radius, "high");
  assert.deepEqual(wipe.affected, ["customer", "records"]);
  assert.equal(needsOperator(wipe), true);
  // reversible (1) + 3 stakeholders (1) = 2: medium; no operator.
  const update = assessImpact("update the user's email", ["a", "b", "c"]);
  assert.equal(update.reversibility, "reversible");
  assert.equal(update.blast_radius, "medium");
  assert.deepEqual(update.affected, ["user", "email"]);
  assert.deepEqual(update.stakeholders.map((s) => s.impact), ["medium", "medium", "medium"]);
  assert.equal(needsOperator(update), false);
  // read only (0): low, whatever it names.
  const read = assessImpact("list the files", []);
  assert.equal(read.reversibility, "read_only");
  assert.equal(read.blast_radius, "low");
  assert.equal(read.recommendation, "Low impact; proceed.");
  // irreversible (2) alone is medium but still needs an operator.
  const drop = assessImpact("drop table t", []);
  assert.equal(drop.blast_radius, "medium");
  assert.equal(needsOperator(drop), true);
  // A wide reversible change with 6+ stakeholders: 1 + 2 + 2 = 5, high.
  assert.equal(
    assessImpact("publish to everyone", ["1", "2", "3", "4", "5", "6"]).blast_radius,
    "high",
  );
});

Deno.test("contradicts() needs opposite polarity over mostly the same content words", () => {
  assert.equal(contradicts("The backup is safe", "The backup isn't safe"), true);
  assert.equal(contradicts("The backup is safe", "The backup is not safe"), true);
  assert.equal(contradicts("The backup is safe", "The backup is safe"), false, "same polarity");
  assert.equal(
    contradicts("The backup is safe", "The deploy is not finished"),
    false,
    "other subject",
  );
  assert.equal(contradicts("not not safe", "safe"), false, "a double negation is positive");
});

Deno.test("critique() reports overclaims, ungrounded and contradicting claims, skipping retracted ones", () => {
  const found = critique([
    { text: "The migration is safe", grounded: true },
    { text: "The migration isn't safe", grounded: false },
    { text: "The migration is not safe", grounded: true, retracted: true },
  ], { steps: ["run it"] });
  assert.deepEqual(found.contradicting, [[0, 1]]);
  assert.deepEqual(found.ungrounded, ["The migration isn't safe"]);
  assert.equal(found.contradictions.length, 1);
  assert.match(found.contradictions[0], /^claims\[0\] "The migration is safe" vs claims\[1\]/);
  assert.deepEqual(critique([], {}).contradicting, []);
});

Deno.test("parseEvidenceRef() gives every accepted form one canonical id", () => {
  const hex = "AB".repeat(32);
  assert.deepEqual(parseEvidenceRef(" 12 "), { kind: "vault", index: 12, id: "vault:12" });
  assert.equal(canonicalEvidenceId("VAULT:007"), "vault:7");
  assert.equal(canonicalEvidenceId(`sha256:${hex}`), hex.toLowerCase());
  assert.equal(parseEvidenceRef(hex).kind, "hash");
  const session = "sess_" + "0123abcd-0000-4000-8000-00000000abcd";
  assert.equal(parseEvidenceRef(session).kind, "session");
  assert.equal(parseEvidenceRef("https://example.org/a").kind, "url");
  assert.equal(parseEvidenceRef("https://example.org/a b").kind, "unknown");
  assert.equal(parseEvidenceRef("1".repeat(16)).kind, "unknown", "past 15 digits is not an index");
  assert.equal(parseEvidenceRef("sess_nope").kind, "unknown");
});

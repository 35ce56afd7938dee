import assert from "node:assert/strict";
import {
  type FailureAction,
  FLOOR_IDS,
  FLOOR_NAMES,
  type FloorId,
  type FloorResult,
  floorScores,
  synthesize,
  telemetry,
} from "../../src/governance/mod.ts";

function passing(id: FloorId, score = 1): FloorResult {
  return {
    id,
    name: FLOOR_NAMES[id],
    score,
    pass: true,
    evaluated: true,
    applicable: true,
    reason: "ok",
  };
}

function failing(
  id: FloorId,
  action: FailureAction | undefined,
  details?: Record<string, unknown>,
): FloorResult {
  const result: FloorResult = { ...passing(id, 0), pass: false, reason: `${id} failed` };
  if (action) result.action = action;
  if (details) result.details = details;
  return result;
}

/** Thirteen passing floors with the given failures swapped in. */
function floors(...failures: FloorResult[]): FloorResult[] {
  return FLOOR_IDS.map((id) => failures.find((f) => f.id === id) ?? passing(id));
}

Deno.test("synthesize() seals when every floor passes", () => {
  assert.deepEqual(synthesize(floors()), { verdict: "SEAL", failed: [], reasons: [] });
});

Deno.test("synthesize() maps a single failure's action to its verdict", () => {
  const table: [FailureAction, string][] = [
    ["void", "VOID"],
    ["hold", "888_HOLD"],
    ["sabar", "SABAR"],
    ["partial", "PARTIAL"],
  ];
  for (const [action, verdict] of table) {
    const out = synthesize(floors(failing("F4", action)));
    assert.equal(out.verdict, verdict, action);
    assert.deepEqual(out.failed, ["F4"]);
    assert.deepEqual(out.reasons, ["F4 Clarity (ΔS): F4 failed"]);
  }
});

Deno.test("synthesize() orders void > hold > sabar > partial in every mixed case", () => {
  const order: FailureAction[] = ["void", "hold", "sabar", "partial"];
  const verdicts = { void: "VOID", hold: "888_HOLD", sabar: "SABAR", partial: "PARTIAL" };
  const ids: FloorId[] = ["F13", "F10", "F5", "F1"];
  // Every non-empty subset of actions, each on a different floor.
  for (let mask = 1; mask < 16; mask++) {
    const chosen = order.filter((_, i) => mask & (1 << i));
    const failures = chosen.map((action, i) => failing(ids[i], action));
    const out = synthesize(floors(...failures));
    assert.equal(out.verdict, verdicts[chosen[0]], chosen.join("+"));
    assert.deepEqual(
      out.failed,
      failures.map((f) => f.id).sort((a, b) => FLOOR_IDS.indexOf(a) - FLOOR_IDS.indexOf(b)),
    );
  }
});

Deno.test("synthesize() treats a failure without an action as VOID (fail closed)", () => {
  assert.equal(synthesize(floors(failing("F2", undefined), failing("F3", "hold"))).verdict, "VOID");
});

Deno.test("synthesize() lists fixes and retry-after for SABAR only", () => {
  const sabar = synthesize(floors(
    failing("F4", "sabar", { issues: ["a: required"], fixes: ["a: required"] }),
    failing("F5", "sabar", { retry_after_s: 13, fixes: ["retry after 13 s"] }),
    failing("F7", "partial"),
  ));
  assert.equal(sabar.verdict, "SABAR");
  assert.deepEqual(sabar.fixes, ["a: required", "retry after 13 s"]);
  assert.equal(sabar.retryAfterS, 13);
  assert.deepEqual(sabar.failed, ["F4", "F5", "F7"]);
  const voided = synthesize(
    floors(failing("F4", "sabar", { fixes: ["x"] }), failing("F9", "void")),
  );
  assert.equal(voided.verdict, "VOID");
  assert.equal(voided.fixes, undefined);
  assert.equal(synthesize(floors(failing("F4", "partial", { fixes: ["x"] }))).fixes, undefined);
});

Deno.test("telemetry() derives ΔS, Peace², κr and Ω0 from the floors", () => {
  const list = floors();
  list[3] = passing("F4", 0.5);
  list[4] = passing("F5", 0.9);
  list[5] = passing("F6", 0.75);
  list[0] = { ...passing("F1", 0.5), evaluated: false };
  list[7] = { ...passing("F8", 0.5), evaluated: false };
  assert.deepEqual(telemetry(list), {
    delta_s: -0.5,
    peace_squared: 0.81,
    kappa_r: 0.75,
    omega_0: 0.167, // 2 of the 12 applicable floors other than F7
  });
  assert.deepEqual(telemetry([]), { delta_s: -1, peace_squared: 1, kappa_r: 1, omega_0: 0 });
  const zero = telemetry(floors(failing("F4", "sabar")));
  assert.ok(Object.is(zero.delta_s, 0));
});

Deno.test("floorScores() maps every floor id to its score", () => {
  const list = floors(failing("F2", "sabar"));
  const scores = floorScores(list);
  assert.deepEqual(Object.keys(scores), [...FLOOR_IDS]);
  assert.equal(scores.F2, 0);
  assert.equal(scores.F13, 1);
});

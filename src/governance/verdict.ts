/**
 * Verdict synthesis: thirteen floor results become one verdict, with the
 * reasons, what to fix, and the telemetry the response envelope carries.
 *
 * @module
 */

import { omega0, round3 } from "./floors.ts";
import { FLOOR_IDS, type FloorId, type FloorResult } from "./types.ts";

/** The five verdicts, from refusal to approval. */
export type VerdictName = "SEAL" | "PARTIAL" | "SABAR" | "VOID" | "888_HOLD";

/** The outcome of synthesis. */
export interface Verdict {
  verdict: VerdictName;
  /** Failed floors, in floor order. */
  failed: FloorId[];
  /** `"F4 Clarity (ΔS): …"` for each failed floor, in floor order. */
  reasons: string[];
  /** Seconds to wait, when F5 failed. */
  retryAfterS?: number;
  /** For SABAR only: what the caller should change before retrying. */
  fixes?: string[];
}

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((x): x is string => typeof x === "string") : [];
}

/**
 * Combines floor results, in this order: any failure whose action is `void`
 * → VOID; any `hold` → 888_HOLD; any `sabar` → SABAR; any `partial` →
 * PARTIAL; else SEAL. A failure without an action counts as `void` (fail
 * closed). `fixes` collects the `details.fixes` of the SABAR floors (schema
 * issues, ungrounded claims, retry-after).
 *
 * @example
 * ```ts
 * import { synthesize } from "./verdict.ts";
 * synthesize([]).verdict; // "SEAL"
 * ```
 */
export function synthesize(floors: readonly FloorResult[]): Verdict {
  const failures = floors.filter((f) => !f.pass).sort((a, b) =>
    FLOOR_IDS.indexOf(a.id) - FLOOR_IDS.indexOf(b.id)
  );
  const actions = new Set(failures.map((f) => f.action ?? "void"));
  const verdict: VerdictName = actions.has("void")
    ? "VOID"
    : actions.has("hold")
    ? "888_HOLD"
    : actions.has("sabar")
    ? "SABAR"
    : actions.has("partial")
    ? "PARTIAL"
    : "SEAL";
  const out: Verdict = {
    verdict,
    failed: failures.map((f) => f.id),
    reasons: failures.map((f) => `${f.id} ${f.name}: ${f.reason}`),
  };
  const retry = failures.find((f) => f.id === "F5")?.details?.retry_after_s;
  if (typeof retry === "number") out.retryAfterS = retry;
  if (verdict === "SABAR") {
    out.fixes = failures.filter((f) => f.action === "sabar").flatMap((f) =>
      stringList(f.details?.fixes)
    );
  }
  return out;
}

/** The envelope's `_constitutional.telemetry`. */
export interface Telemetry {
  delta_s: number;
  peace_squared: number;
  kappa_r: number;
  omega_0: number;
}

function scoreOf(floors: readonly FloorResult[], id: FloorId): number {
  return floors.find((f) => f.id === id)?.score ?? 1;
}

/**
 * Telemetry derived from floor scores, all rounded to 3 decimals:
 * `delta_s` = −F4 score (clearer arguments are more negative, entropy
 * reduced), `peace_squared` = F5 score², `kappa_r` = F6 score, `omega_0` =
 * Ω0 as F7 defines it (computed from the floors, so it is reported even when
 * F7 is off). A missing floor counts as score 1.
 *
 * @example
 * ```ts
 * import { telemetry } from "./verdict.ts";
 * telemetry([]); // { delta_s: -1, peace_squared: 1, kappa_r: 1, omega_0: 0 }
 * ```
 */
export function telemetry(floors: readonly FloorResult[]): Telemetry {
  const peace = scoreOf(floors, "F5");
  return {
    delta_s: round3(-scoreOf(floors, "F4")),
    peace_squared: round3(peace * peace),
    kappa_r: round3(scoreOf(floors, "F6")),
    omega_0: omega0(floors).omega0,
  };
}

/**
 * Floor id → score, for the envelope's `_constitutional.floors`; a missing
 * floor is left out.
 *
 * @example
 * ```ts
 * import { floorScores } from "./verdict.ts";
 * floorScores([]); // {}
 * ```
 */
export function floorScores(floors: readonly FloorResult[]): Record<FloorId, number> {
  const scores = {} as Record<FloorId, number>;
  for (const id of FLOOR_IDS) {
    const floor = floors.find((f) => f.id === id);
    if (floor) scores[id] = floor.score;
  }
  return scores;
}

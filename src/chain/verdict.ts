/**
 * The session verdict apex_judge (888) gives: it follows what the chain found,
 * not only how each step was governed. Worst wins, VOID > 888_HOLD > SABAR >
 * PARTIAL > SEAL:
 * - a step whose latest attempt was refused or held still blocks (a step that
 *   returned SABAR and was then retried successfully does not);
 * - a required step never completed → SABAR naming it;
 * - an irreversible or high-blast-radius impact → 888_HOLD unless an operator
 *   approved this judgement;
 * - contradicting claims → SABAR; ungrounded claims → SABAR;
 * - overclaiming words in the claims or the critiqued plan → PARTIAL.
 * Every non-SEAL reason comes with a fix naming the tool and argument to change,
 * and `next_tool` is the call that fixes the first problem (never one that would
 * be refused).
 * @module
 */
import type { GovSession } from "../store/mod.ts";
import { critique } from "./critique.ts";
import { needsOperator, sessionImpact } from "./impact.ts";

/** The metabolic chain's tool names, 000 → 999. */
export const CHAIN = [
  "anchor_session",
  "reason_mind",
  "recall_memory",
  "simulate_heart",
  "critique_thought",
  "eureka_forge",
  "apex_judge",
  "seal_vault",
] as const;

/** Steps a session must have completed before apex_judge can seal it, and how to do each. */
export const REQUIRED_STEPS: Readonly<Record<string, string>> = {
  reason_mind: "call reason_mind with a `query` (the claim) and `grounding` (evidence ids)",
  simulate_heart: "call simulate_heart with the intended action as `query`",
  critique_thought: "call critique_thought with the `plan` to critique",
};

/** Verdicts from worst to best. */
export const VERDICT_ORDER = ["VOID", "888_HOLD", "SABAR", "PARTIAL", "SEAL"] as const;

/** One session verdict. */
export type ChainVerdict = typeof VERDICT_ORDER[number];

/** What apex_judge decides, and how to get further. */
export interface SessionJudgement {
  readonly verdict: ChainVerdict;
  /** Why, one line per finding (empty for a clean SEAL). */
  readonly reasons: string[];
  /** For each reason, what to change: a tool and its argument. */
  readonly fixes: string[];
  /** The call that fixes the first problem; "seal_vault" only when sealable. */
  readonly next_tool: string | null;
  /** Lowest score per floor over the steps taken, per-mille. */
  readonly floors: Record<string, number>;
  readonly missing_steps: string[];
}

/** The worse of two verdicts. */
export function worse(a: ChainVerdict, b: ChainVerdict): ChainVerdict {
  return VERDICT_ORDER.indexOf(a) <= VERDICT_ORDER.indexOf(b) ? a : b;
}

function asVerdict(v: string): ChainVerdict {
  return (VERDICT_ORDER as readonly string[]).includes(v) ? v as ChainVerdict : "VOID";
}

/** A step counts as done when it was allowed and its tool ran without error. */
function succeeded(step: GovSession["steps"][number]): boolean {
  return (step.verdict === "SEAL" || step.verdict === "PARTIAL") &&
    (step.outcome === undefined || step.outcome === "ok");
}

/**
 * Judges a session from its steps, claims and notes.
 *
 * @example
 * ```ts
 * import { judgeSession } from "./verdict.ts";
 * const j = judgeSession({ steps: [], claims: [], notes: {} }, { approved: false });
 * j.verdict; // "SABAR" (reason_mind, simulate_heart and critique_thought are missing)
 * j.next_tool; // "reason_mind"
 * ```
 */
export function judgeSession(
  session: Pick<GovSession, "steps" | "claims" | "notes"> & { sealed?: unknown; intent?: string },
  options: { approved: boolean },
): SessionJudgement {
  const reasons: string[] = [];
  const fixes: string[] = [];
  let verdict: ChainVerdict = "SEAL";
  let next: string | null = null;
  const problem = (v: ChainVerdict, reason: string, fix: string, tool: string | null) => {
    verdict = worse(verdict, v);
    reasons.push(reason);
    fixes.push(fix);
    if (next === null && v !== "PARTIAL") next = tool;
  };

  if (session.sealed) {
    problem(
      "VOID",
      "the session is already sealed",
      "anchor a new session with anchor_session",
      "anchor_session",
    );
  }

  const floors: Record<string, number> = {};
  const latest = new Map<string, GovSession["steps"][number]>();
  const done = new Set<string>();
  for (const s of session.steps) {
    if (s.tool === "apex_judge" || s.tool === "seal_vault") continue;
    latest.set(s.tool, s);
    if (succeeded(s)) {
      done.add(s.tool);
      for (const [id, score] of Object.entries(s.floors)) {
        floors[id] = Math.min(floors[id] ?? 1000, score);
      }
    }
  }
  for (const [tool, s] of latest) {
    if (succeeded(s)) continue;
    const v = asVerdict(s.verdict);
    const what = s.outcome && s.outcome !== "ok" && (v === "SEAL" || v === "PARTIAL")
      ? `failed (${s.outcome})`
      : v;
    problem(
      v === "SEAL" || v === "PARTIAL" ? "SABAR" : v,
      `${tool} (${s.stage}): last attempt ${what}`,
      s.fix
        ? `retry ${tool} after this change: ${s.fix}`
        : `retry ${tool}, changing the arguments of its last attempt (${what})`,
      tool,
    );
  }

  const missing = Object.keys(REQUIRED_STEPS).filter((t) => !done.has(t) && !latest.has(t));
  if (missing.length > 0) {
    problem(
      "SABAR",
      `required steps missing: ${missing.join(", ")}`,
      missing.map((t) => REQUIRED_STEPS[t]).join("; "),
      CHAIN.find((t) => missing.includes(t)) ?? missing[0],
    );
  }

  const impact = sessionImpact(session);
  if (impact && needsOperator(impact) && !options.approved) {
    problem(
      "888_HOLD",
      impact.source === "intent"
        ? `the session's anchored intent is ${impact.reversibility}, blast radius ${impact.blast_radius} (whatever simulate_heart was told): an operator must approve`
        : `simulate_heart found the action ${impact.reversibility}, blast radius ${impact.blast_radius}: an operator must approve`,
      "an operator approves the hold this call created (warden approve <hold id>); then call apex_judge again with the hold id",
      "apex_judge",
    );
  }

  const planOverclaims = ((session.notes.critique as { overclaims?: unknown } | undefined)
    ?.overclaims ?? []) as unknown[];
  const found = critique(session.claims, {});
  for (const [i, j] of found.contradicting) {
    problem(
      "SABAR",
      `claims[${i}] and claims[${j}] contradict each other`,
      `withdraw one with reason_mind \`retract\`: [${i}] or [${j}]`,
      "reason_mind",
    );
  }
  const ungrounded = session.claims
    .map((c, i) => ({ c, i }))
    .filter(({ c }) => !c.retracted && !c.grounded);
  for (const { i } of ungrounded) {
    problem(
      "SABAR",
      `claims[${i}] is not grounded in evidence`,
      "add an evidence id to `grounding` of reason_mind (vault:N, a content hash or a fetched URL)",
      "reason_mind",
    );
  }
  const overclaims = [
    ...new Set([...found.overclaims, ...planOverclaims.filter((w) => typeof w === "string")]),
  ];
  if (overclaims.length > 0) {
    problem(
      "PARTIAL",
      `overclaiming: ${overclaims.join(", ")}`,
      "restate the claim (reason_mind `query`) or plan (critique_thought `plan`) without absolute words",
      null,
    );
  }
  const sealable = verdict === "SEAL" || verdict === "PARTIAL";
  return {
    verdict,
    reasons,
    fixes,
    next_tool: sealable ? "seal_vault" : next,
    floors,
    missing_steps: missing,
  };
}

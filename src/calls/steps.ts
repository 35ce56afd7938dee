/**
 * The step hook: every governed step of the metabolic chain is remembered in
 * its governed session (tool, stage, verdict, floor scores, outcome, vault
 * index), which is what apex_judge later judges.
 *
 * @module
 */
import type { GovernedResult } from "../governance/mod.ts";
import { GovSessionError, type GovSessionStore } from "../store/mod.ts";
import type { ToolDefinition } from "./tool.ts";

/** Appends the step `def` just took to governed session `sessionId` of `principal`. */
export async function recordStep(
  sessions: GovSessionStore,
  def: ToolDefinition,
  sessionId: string,
  principal: string,
  governed: GovernedResult,
): Promise<void> {
  const floors: Record<string, number> = {};
  for (const f of governed.floors) floors[f.id] = Math.round(f.score * 1000);
  const v = governed.verdict;
  const fix = v.verdict === "SABAR" || v.verdict === "VOID"
    ? [...(v.fixes ?? []), ...(v.fixes?.length ? [] : v.reasons)].join("; ").slice(0, 500)
    : undefined;
  try {
    await sessions.update(sessionId, principal, (s) => ({
      ...s,
      steps: [...s.steps, {
        tool: def.name,
        stage: def.stage!,
        verdict: governed.verdict.verdict,
        floors,
        outcome: governed.execution
          ? (governed.execution.isError ? governed.execution.errorKind ?? "tool_error" : "ok")
          : "not_executed",
        at: new Date().toISOString(),
        ...(governed.vault ? { vaultIndex: governed.vault.index } : {}),
        // What to change, for apex_judge to repeat (bounded: the session record is kept in KV).
        ...(fix ? { fix } : {}),
      }],
    }));
  } catch (e) {
    // An unknown or contended session was already reported by the tool itself.
    if (!(e instanceof GovSessionError)) throw e;
  }
}

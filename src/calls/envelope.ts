/**
 * The UnifiedResponse envelope every Warden tool returns in
 * `structuredContent` (seed 002): status, stage, verdict, the tool's own
 * output under `data`, and the constitutional record (floor scores,
 * telemetry, vault position).
 */
import { z } from "zod";
import {
  type FloorResult,
  floorScores,
  type GovernedResult,
  type Telemetry,
} from "../governance/mod.ts";

/** Versions reported in `_schema`. */
export const ENVELOPE_VERSION = "1.0";

const FloorScores = z.record(z.string(), z.number()).describe("F1…F13 scores in [0,1]");

/** The envelope's schema around a tool's own output schema. */
export function envelopeSchema(data: z.ZodType | undefined) {
  return z.object({
    status: z.enum(["OK", "ERROR", "BLOCKED", "PENDING"]),
    session_id: z.string(),
    stage: z.string(),
    message: z.string(),
    policy_verdict: z.enum(["SEAL", "PARTIAL", "SABAR", "VOID", "888_HOLD"]),
    next_tool: z.string().nullable(),
    data: (data ?? z.record(z.string(), z.unknown())).nullable(),
    _constitutional: z.object({
      floors: FloorScores,
      telemetry: z.object({
        delta_s: z.number(),
        peace_squared: z.number(),
        kappa_r: z.number(),
        omega_0: z.number(),
      }),
      verdict: z.string(),
      vault: z.object({ index: z.number(), leaf_hash: z.string() }).nullable(),
      reasons: z.array(z.string()),
      fixes: z.array(z.string()).optional(),
      retry_after_s: z.number().optional(),
      hold: z.object({ id: z.string(), status: z.string(), expires_at: z.string() }).optional(),
      policy_sha256: z.string(),
    }),
    _schema: z.object({ envelope: z.string(), tool: z.string() }),
    _debug: z.record(z.string(), z.unknown()).optional(),
  });
}

/** An envelope as sent. */
export type Envelope = z.infer<ReturnType<typeof envelopeSchema>>;

/** The envelope's status for a governed result. */
export function statusOf(result: GovernedResult): Envelope["status"] {
  const v = result.verdict.verdict;
  if (v === "888_HOLD") return "PENDING";
  if (v === "VOID" || v === "SABAR") return "BLOCKED";
  return result.execution?.isError ? "ERROR" : "OK";
}

function holdMessage(result: GovernedResult): string {
  const id = result.hold?.id ?? "?";
  if (result.hold?.status === "denied") {
    return `Denied: hold ${id} was declined${
      result.hold.deniedBy ? ` by ${result.hold.deniedBy}` : ""
    }; this call will not run (${result.verdict.reasons.join("; ")})`;
  }
  return `Held for operator approval (888_HOLD), hold ${id}: ${
    result.verdict.reasons.join("; ")
  }. ` +
    `An operator approves with \`warden approve ${id} --key operator.key --url <server>\`; ` +
    `then repeat the same call with _meta {"warden/hold": "${id}"} (REST: "hold_id").`;
}

function messageOf(result: GovernedResult, status: Envelope["status"]): string {
  const v = result.verdict;
  switch (status) {
    case "PENDING":
      return holdMessage(result);
    case "BLOCKED":
      if (v.verdict === "SABAR") {
        // Each thing once: a fix the reasons already state, or a retry time already given, is
        // not repeated.
        const newFixes = (v.fixes ?? []).filter((f) => !v.reasons.some((r) => r.includes(f)));
        const fixes = newFixes.length ? ` Fix: ${newFixes.join("; ")}.` : "";
        const saidRetry = [...v.reasons, ...newFixes].some((t) => /retry after/i.test(t));
        const retry = v.retryAfterS && !saidRetry ? ` Retry after ${v.retryAfterS} s.` : "";
        return `Not executed (SABAR): ${v.reasons.join("; ")}.${fixes}${retry}`;
      }
      return `Blocked (VOID): ${v.reasons.join("; ")}`;
    default: {
      const text = result.execution?.text ?? "";
      return v.verdict === "PARTIAL" ? `${text} (PARTIAL: ${v.reasons.join("; ")})` : text;
    }
  }
}

function debugOf(floors: readonly FloorResult[], result: GovernedResult): Record<string, unknown> {
  return {
    floors: floors.map((f) => ({
      id: f.id,
      name: f.name,
      score: f.score,
      pass: f.pass,
      evaluated: f.evaluated,
      applicable: f.applicable,
      reason: f.reason,
      ...(f.action ? { action: f.action } : {}),
      ...(f.details ? { details: f.details } : {}),
    })),
    latency_ms: Math.round(result.latencyMs * 1000) / 1000,
    executed: result.executed,
  };
}

/** Builds the envelope for one governed call. */
export function buildEnvelope(input: {
  tool: string;
  stage: string;
  nextTool: string | null;
  sessionId: string;
  result: GovernedResult;
  policyHash: string;
  debug?: boolean;
  telemetry?: Telemetry;
}): Envelope {
  const { result } = input;
  const status = statusOf(result);
  const v = result.verdict;
  return {
    status,
    session_id: input.sessionId,
    stage: input.stage,
    message: messageOf(result, status),
    policy_verdict: v.verdict,
    next_tool: status === "OK" ? input.nextTool : null,
    data: status === "OK" || status === "ERROR" ? (result.execution?.data ?? null) : null,
    _constitutional: {
      floors: floorScores(result.floors),
      telemetry: result.telemetry,
      verdict: v.verdict,
      vault: result.vault ? { index: result.vault.index, leaf_hash: result.vault.leafHash } : null,
      reasons: v.reasons,
      ...(v.fixes?.length ? { fixes: v.fixes } : {}),
      ...(v.retryAfterS !== undefined && v.verdict === "SABAR"
        ? { retry_after_s: v.retryAfterS }
        : {}),
      ...(result.hold
        ? {
          hold: {
            id: result.hold.id,
            status: result.hold.status,
            expires_at: new Date(result.hold.expiresAtMs).toISOString(),
          },
        }
        : {}),
      policy_sha256: input.policyHash,
    },
    _schema: { envelope: ENVELOPE_VERSION, tool: input.tool },
    ...(input.debug ? { _debug: debugOf(result.floors, result) } : {}),
  };
}

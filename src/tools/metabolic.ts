/**
 * The metabolic chain (000 → 999): eight tools an agent walks to take an
 * action through governance explicitly. Each step records itself in the
 * governed session and names the next tool. Names and arguments follow the
 * arifOS API so its clients work unchanged. These are thin MCP adapters: the
 * impact, critique and session-verdict logic lives in `src/chain/`.
 */
import { z } from "zod";
import {
  assessImpact,
  canonicalEvidenceId,
  CHAIN,
  critique,
  type Impact,
  judgeSession,
  needsOperator,
  parseEvidenceRef,
  sessionImpact,
  VERDICT_ORDER,
  worse,
  worstImpact,
} from "../chain/mod.ts";
import {
  type Claim,
  type Governance,
  type Policy,
  TokenError,
  type TokenService,
} from "../governance/mod.ts";
import type { ShellService } from "../execution/mod.ts";
import {
  type EvidenceStore,
  type GovSession,
  GovSessionError,
  govSessionSealKey,
  type GovSessionStore,
} from "../store/mod.ts";
import { EntryExistsError, type Ledger } from "../vault/mod.ts";
import { digestJson, toBase64 } from "../lib/mod.ts";
import {
  defineTool,
  InputRequiredError,
  type NestedCalls,
  sampledUsage,
  type ToolContext,
  ToolError,
} from "../calls/mod.ts";
import { type CorpusSources, searchCorpus } from "../evidence/mod.ts";
import { READ_ONLY, WRITE } from "./_annotations.ts";
import { toolFamily } from "./_services.ts";

const SessionId = z.string().min(1).max(64).describe("session_id returned by anchor_session");
export { CHAIN };

/** Raised inside an update when the session was sealed meanwhile. */
class SessionClosed extends Error {}

function closedMessage(s: GovSession): string {
  return `Session ${s.id} is already sealed at vault index ${
    s.sealed!.index
  } and closed; anchor a new session with anchor_session`;
}

async function sessionOf(
  sessions: GovSessionStore,
  ctx: ToolContext,
  id: string,
): Promise<GovSession> {
  let s: GovSession;
  try {
    s = await sessions.get(id, ctx.principal);
  } catch (e) {
    if (e instanceof GovSessionError) throw new ToolError(e.message);
    throw e;
  }
  // After seal_vault the session is closed: no step may change or judge it.
  if (s.sealed) throw new ToolError(closedMessage(s));
  return s;
}

async function step(
  sessions: GovSessionStore,
  ctx: ToolContext,
  id: string,
  stage: string,
  change: (s: GovSession) => Partial<GovSession> = () => ({}),
): Promise<GovSession> {
  try {
    return await sessions.update(
      id,
      ctx.principal,
      (s) => {
        if (s.sealed) throw new SessionClosed(closedMessage(s));
        return { ...s, ...change(s), stage };
      },
    );
  } catch (e) {
    // An unknown, contended or closed session is the caller's to fix; a bug in `change` is not.
    if (e instanceof GovSessionError || e instanceof SessionClosed) throw new ToolError(e.message);
    throw e;
  }
}

/** How long a seal claim holds before another call may take it over (its process died). */
const SEAL_CLAIM_MS = 60_000;
/** How long a call that lost the race waits for the winner's seal before answering. */
const SEAL_WAIT_MS = 5_000;

/**
 * Claims `id` for sealing with `claim`, or throws a ToolError saying where another call sealed
 * it (after waiting up to SEAL_WAIT_MS for a claim in progress to finish).
 */
async function claimSeal(
  sessions: GovSessionStore,
  ctx: ToolContext,
  id: string,
  claim: string,
): Promise<void> {
  const deadline = Date.now() + SEAL_WAIT_MS;
  for (;;) {
    let holder: { claim: string; atMs: number } | undefined;
    let closed: string | undefined;
    try {
      await sessions.update(id, ctx.principal, (s) => {
        holder = undefined;
        closed = undefined;
        if (s.sealed) {
          closed = closedMessage(s);
          return s;
        }
        if (s.sealing && Date.now() - s.sealing.atMs < SEAL_CLAIM_MS) {
          holder = s.sealing;
          return s;
        }
        return { ...s, sealing: { claim, atMs: Date.now() } };
      });
    } catch (e) {
      if (e instanceof GovSessionError) throw new ToolError(`Cannot seal: ${e.message}`);
      throw e;
    }
    if (closed) throw new ToolError(`Cannot seal: ${closed} (by another seal_vault call)`);
    if (!holder) return;
    if (Date.now() >= deadline) {
      throw new ToolError(
        `Cannot seal: session ${id} is being sealed by another seal_vault call; call seal_vault again in a few seconds to read where it was sealed`,
      );
    }
    if (ctx.signal.aborted) throw new ToolError("Cannot seal: the call was cancelled");
    await new Promise((r) => setTimeout(r, 50));
  }
}

// ---------------------------------------------------------------- 000 anchor_session

/** 000: opens a governed session for a stated intent; the pipeline has already scanned it. */
export function anchorSessionTool({ sessions }: Pick<MetabolicToolServices, "sessions">) {
  return defineTool({
    name: "anchor_session",
    title: "000 Anchor session",
    description:
      "Open a governed session for a stated intent (000). The intent is scanned by every floor before " +
      "the session exists: prompt injection, secrets and claims of sentience are refused. Returns the " +
      "session_id every later step needs. Next: reason_mind.",
    inputSchema: z.object({
      query: z.string().min(1).max(10_000).describe("The stated intent of the session"),
      actor_id: z.string().max(128).optional().describe(
        "Who (or which agent) acts in this session",
      ),
      debug: z.boolean().optional().describe(
        "Include the _debug block in every envelope of this call",
      ),
    }),
    outputSchema: z.object({
      session_id: z.string(),
      intent: z.string(),
      actor_id: z.string().nullable(),
      created_at: z.string(),
      chain: z.array(z.string()),
    }),
    annotations: WRITE,
    stage: "000",
    nextTool: "reason_mind",
    async handler(args, ctx) {
      const session = await sessions.create({
        principal: ctx.principal,
        actorId: args.actor_id ?? null,
        intent: args.query,
        mcpSession: ctx.sessionId ?? null,
      });
      return {
        data: {
          session_id: session.id,
          intent: session.intent,
          actor_id: session.actorId,
          created_at: session.createdAt,
          chain: [...CHAIN],
        },
        text: `Session ${session.id} anchored for: ${args.query.slice(0, 120)}`,
      };
    },
  });
}

// ---------------------------------------------------------------- 333 reason_mind

const ReasonInput = z.object({
  query: z.string().min(1).max(20_000).describe("The claim or reasoning to record"),
  session_id: SessionId,
  grounding: z.array(z.string().min(1).max(2048)).max(50).default([]).describe(
    'Evidence for the claim, each about it: vault indices ("vault:12" or "12"), content hashes from ' +
      "fetch_content, URLs fetch_content fetched, or ids search_reality / recall_memory returned",
  ),
  retract: z.array(z.number().int().min(0).max(10_000)).max(50).default([]).describe(
    "Indices of earlier claims of this session to withdraw (e.g. one side of a contradiction)",
  ),
});

/** 333: records a claim with its evidence; F2 (truth) judges how much of it is grounded. */
export function reasonMindTool(
  { sessions, evidence: evidenceStore }: Pick<MetabolicToolServices, "sessions" | "evidence">,
) {
  return defineTool({
    name: "reason_mind",
    title: "333 Reason",
    description:
      "Record a claim with the evidence it rests on (333). F2 checks every cited evidence id exists " +
      "(a vault entry, fetched content or URL, a session search returned) and shares words with the " +
      "claim; ungrounded claims get SABAR naming `grounding`. `retract` withdraws earlier claims. " +
      "Next: recall_memory.",
    inputSchema: ReasonInput,
    outputSchema: z.object({
      session_id: z.string(),
      claims: z.array(
        z.object({ text: z.string(), evidence: z.array(z.string()), grounded: z.boolean() }),
      ),
      grounded_ratio: z.number(),
    }),
    annotations: WRITE,
    stage: "333",
    nextTool: "recall_memory",
    claims: (args): Claim[] => [{
      text: args.query,
      evidence: args.grounding.map(canonicalEvidenceId),
      argument: "grounding",
    }],
    async handler(args, ctx) {
      // One id scheme: a fetched URL is recorded as the content hash it resolved to.
      const evidence = await Promise.all(args.grounding.map(async (ref) => {
        const parsed = parseEvidenceRef(ref);
        return parsed.kind === "url"
          ? (await evidenceStore.resolveUrl(parsed.url)) ?? parsed.id
          : parsed.id;
      }));
      // The pipeline already refused ungrounded claims (F2); what reaches here is grounded.
      const claim = { text: args.query, evidence, grounded: evidence.length > 0 };
      const current = await sessionOf(sessions, ctx, args.session_id);
      const unknown = args.retract.filter((i) => i >= current.claims.length);
      if (unknown.length > 0) {
        throw new ToolError(
          `Cannot retract claims[${
            unknown.join("], claims[")
          }]: the session has ${current.claims.length} claim(s); change \`retract\``,
        );
      }
      const session = await step(
        sessions,
        ctx,
        args.session_id,
        "333",
        (s) => ({
          claims: [
            ...s.claims.map((c, i) => args.retract.includes(i) ? { ...c, retracted: true } : c),
            claim,
          ],
        }),
      );
      const grounded = session.claims.filter((c) => c.grounded).length;
      return {
        data: {
          session_id: session.id,
          claims: session.claims.map((c) => ({
            text: c.text,
            evidence: [...c.evidence],
            grounded: c.grounded,
          })),
          grounded_ratio: session.claims.length
            ? Math.round((grounded / session.claims.length) * 1000) / 1000
            : 1,
        },
        text: `Recorded claim with ${evidence.length} evidence reference(s)`,
      };
    },
  });
}

// ---------------------------------------------------------------- 444 recall_memory

/** 444: ranked retrieval over what Warden knows: sessions, fetched evidence and the vault. */
export function recallMemoryTool(
  services: Pick<MetabolicToolServices, "sessions" | "evidence" | "ledger" | "context">,
) {
  const { sessions } = services;
  return defineTool({
    name: "recall_memory",
    title: "444 Recall memory",
    description:
      "Ranked retrieval (444) over governed sessions, fetched evidence and recent vault entries, by " +
      "term overlap with the query. Later memory and context stores plug into the same corpus. Next: simulate_heart.",
    inputSchema: z.object({
      current_thought_vector: z.string().min(1).max(10_000).describe("What to recall (query text)"),
      session_id: SessionId.optional(),
      depth: z.number().int().min(1).max(50).default(5).describe("How many items to return"),
    }),
    outputSchema: z.object({
      query: z.string(),
      items: z.array(z.object({
        source: z.string(),
        id: z.string(),
        title: z.string(),
        snippet: z.string(),
        score: z.number(),
      })),
    }),
    annotations: READ_ONLY,
    stage: "444",
    nextTool: "simulate_heart",
    async handler(args, ctx) {
      if (args.session_id) await step(sessions, ctx, args.session_id, "444");
      const items = await searchCorpus(services, {
        principal: ctx.principal,
        query: args.current_thought_vector,
        limit: args.depth,
      });
      return {
        data: { query: args.current_thought_vector, items },
        text: `${items.length} item(s) recalled`,
      };
    },
  });
}

// ---------------------------------------------------------------- 555 simulate_heart

/** 555: impact of the intended action on its stakeholders. */
export function simulateHeartTool({ sessions }: Pick<MetabolicToolServices, "sessions">) {
  return defineTool({
    name: "simulate_heart",
    title: "555 Simulate impact",
    description:
      "Assess the impact of an intended action (555): reversibility, affected data, blast radius and " +
      "stakeholders, by deterministic rules. Next: critique_thought.",
    inputSchema: z.object({
      query: z.string().min(1).max(10_000).describe("The intended action"),
      session_id: SessionId,
      stakeholders: z.array(z.string().min(1).max(200)).max(100).default([]),
    }),
    outputSchema: z.object({
      session_id: z.string(),
      reversibility: z.string(),
      blast_radius: z.string(),
      affected: z.array(z.string()),
      stakeholders: z.array(z.object({ name: z.string(), impact: z.string() })),
      recommendation: z.string(),
    }),
    annotations: WRITE,
    stage: "555",
    nextTool: "critique_thought",
    async handler(args, ctx) {
      const impact = assessImpact(args.query, args.stakeholders);
      // The session keeps the worst of its simulations: a milder retelling of the action cannot
      // wash out an irreversible or wide finding (only an operator's approval answers that).
      let kept: Impact = impact;
      await step(sessions, ctx, args.session_id, "555", (s) => {
        const prior = s.notes.impact as Impact | undefined;
        kept = prior ? worstImpact(prior, impact) : impact;
        return { notes: { ...s.notes, impact: kept } };
      });
      const keptWorse = kept.reversibility !== impact.reversibility ||
        kept.blast_radius !== impact.blast_radius;
      return {
        data: { session_id: args.session_id, ...impact },
        text: `Impact: ${impact.reversibility}, blast radius ${impact.blast_radius}${
          keptWorse
            ? ` (the session keeps its earlier finding: ${kept.reversibility}, blast radius ${kept.blast_radius})`
            : ""
        }`,
      };
    },
  });
}

// ---------------------------------------------------------------- 666 critique_thought

/** 666: contradictions and overclaiming; asks the client's model through sampling when offered. */
export function critiqueThoughtTool(
  { sessions, policy }: Pick<MetabolicToolServices, "sessions" | "policy">,
) {
  return defineTool({
    name: "critique_thought",
    title: "666 Critique",
    description:
      "Critique the session's plan (666): contradictions between claims, ungrounded claims and " +
      "overclaiming, by deterministic rules — and, when the client offers MCP sampling, a second opinion " +
      "from the client's own model. The envelope says whether sampling was used. Next: eureka_forge.",
    inputSchema: z.object({
      session_id: SessionId,
      plan: z.record(z.string(), z.unknown()).default({}).describe("The plan to critique"),
    }),
    outputSchema: z.object({
      session_id: z.string(),
      overclaims: z.array(z.string()),
      ungrounded_claims: z.array(z.string()),
      contradictions: z.array(z.string()),
      sampling: z.object({
        used: z.boolean(),
        reason: z.string(),
        critique: z.string().optional(),
        model: z.string().optional(),
      }),
      /** Tokens the client reported for its answer (charged to the caller's usage and budget). */
      usage: z.object({ input_tokens: z.number().int(), output_tokens: z.number().int() })
        .optional(),
    }),
    annotations: { ...READ_ONLY, idempotentHint: false },
    stage: "666",
    nextTool: "eureka_forge",
    async handler(args, ctx) {
      const session = await sessionOf(sessions, ctx, args.session_id);
      const found = critique(session.claims, args.plan);
      let sampling: { used: boolean; reason: string; critique?: string; model?: string };
      let usage: { input_tokens: number; output_tokens: number } | undefined;
      const offered = ctx.client !== undefined && "sampling" in ctx.client.capabilities;
      if (!offered) {
        sampling = { used: false, reason: "the client does not offer MCP sampling" };
      } else if (!policy.sampling.prefer) {
        sampling = { used: false, reason: "policy sampling.prefer is false" };
      } else {
        try {
          const reply = await ctx.client!.request("sampling/createMessage", {
            messages: [{
              role: "user",
              content: {
                type: "text",
                text:
                  "Critique this plan for contradictions, unsupported claims and overclaiming. " +
                  "Answer in at most five bullet points.\n\nClaims:\n" +
                  session.claims.map((c) => `- ${c.text}${c.grounded ? "" : " (no evidence)"}`)
                    .join(
                      "\n",
                    ) +
                  `\n\nPlan:\n${JSON.stringify(args.plan).slice(0, 8000)}`,
              },
            }],
            maxTokens: 400,
            systemPrompt: "You are a careful reviewer. Be concrete and brief.",
          });
          const content = reply.content as { type?: string; text?: string } | undefined;
          const reported = sampledUsage(reply);
          sampling = {
            used: true,
            reason: "asked the client's model via MCP sampling",
            critique: content?.type === "text"
              ? String(content.text).slice(0, 4000)
              : "[non-text reply]",
            model: reported.model,
          };
          if (reported.reported) {
            usage = { input_tokens: reported.input_tokens, output_tokens: reported.output_tokens };
          }
        } catch (e) {
          // 2026-07-28: the client's model answers in a retried request; this round ends here.
          if (e instanceof InputRequiredError) throw e;
          sampling = { used: false, reason: `sampling failed: ${(e as Error).message}` };
        }
      }
      await step(
        sessions,
        ctx,
        args.session_id,
        "666",
        (s) => ({ notes: { ...s.notes, critique: { ...found, sampling: sampling.used } } }),
      );
      return {
        data: {
          session_id: args.session_id,
          overclaims: found.overclaims,
          ungrounded_claims: found.ungrounded,
          contradictions: found.contradictions,
          sampling,
          ...(usage ? { usage } : {}),
        },
        text:
          `${found.contradictions.length} contradiction(s), ${found.overclaims.length} overclaim(s); sampling ${
            sampling.used ? "used" : "not used"
          }`,
      };
    },
  });
}

// ---------------------------------------------------------------- 777 eureka_forge

// Advisory only: text patterns cannot bound what a shell does ($(…), backticks,
// interpreters, find -delete…). The bubblewrap sandbox is the boundary; a match
// is reported in the result so a reader of the vault sees what was attempted.
const DESTRUCTIVE_COMMAND =
  /(^|[;&|]\s*|\s)(rm|rmdir|dd|mkfs\S*|shred|truncate|chmod|chown|kill|killall|pkill|shutdown|reboot|halt|mv|git\s+(push|reset|clean)|curl|wget)\b|>/;

/** 777: executes a proposed action — a tool call through the gates, or (if enabled) a sandboxed command. */
export function eurekaForgeTool(
  { sessions, shell, callTool }: Pick<MetabolicToolServices, "sessions" | "shell" | "callTool">,
) {
  return defineTool({
    name: "eureka_forge",
    title: "777 Forge (execute)",
    description:
      "Execute the proposed action (777): either `action` {tool, arguments}, which runs that tool through " +
      "the full governance pipeline as its own governed call, or `command`, a shell command — refused " +
      "(VOID) unless policy shell.enabled, then run with /bin/sh in a bubblewrap sandbox: read-only " +
      "system files only, a private writable /work that is discarded, no network, a cleared " +
      "environment, CPU/time/output limits. Next: apex_judge.",
    inputSchema: z.object({
      session_id: SessionId,
      action: z.object({
        tool: z.string().min(1).max(128),
        arguments: z.record(z.string(), z.unknown()).default({}),
      }).optional(),
      command: z.string().min(1).max(4096).optional(),
    }).refine((a) => (a.action === undefined) !== (a.command === undefined), {
      message: "give exactly one of action or command",
    }),
    outputSchema: z.object({
      session_id: z.string(),
      kind: z.enum(["tool", "command"]),
      status: z.string(),
      verdict: z.string().optional(),
      result: z.unknown(),
    }),
    annotations: {
      readOnlyHint: false,
      destructiveHint: false,
      idempotentHint: false,
      openWorldHint: true,
    },
    stage: "777",
    nextTool: "apex_judge",
    refusal(args) {
      // Refused outright, never held: no operator approval can make a missing shell run.
      return args.command !== undefined && !shell.available
        ? `eureka_forge command refused: ${shell.reason}`
        : undefined;
    },
    async handler(args, ctx) {
      await sessionOf(sessions, ctx, args.session_id);
      if (args.action) {
        if (args.action.tool === "eureka_forge") {
          throw new ToolError("eureka_forge cannot run itself");
        }
        const nested = await callTool(args.action.tool, args.action.arguments, ctx);
        const env = nested.envelope as { status?: string; policy_verdict?: string } | undefined;
        await step(sessions, ctx, args.session_id, "777", (s) => ({
          notes: {
            ...s.notes,
            action: { tool: args.action!.tool, verdict: env?.policy_verdict ?? "VOID" },
          },
        }));
        return {
          data: {
            session_id: args.session_id,
            kind: "tool" as const,
            status: env?.status ?? (nested.isError ? "ERROR" : "OK"),
            verdict: env?.policy_verdict,
            result: nested.envelope ?? { text: nested.text },
          },
          text: `${args.action.tool}: ${nested.text}`,
        };
      }
      if (!shell.available) throw new ToolError(`Cannot run the command: ${shell.reason}`);
      const run = await shell.sandbox.run(args.command!, { signal: ctx.signal });
      const advisory = DESTRUCTIVE_COMMAND.test(args.command!)
        ? "the command matches a destructive pattern; it ran confined to the sandbox"
        : null;
      const result = {
        exit_code: run.exitCode,
        signal: run.signal,
        stdout: run.stdout,
        stderr: run.stderr,
        timed_out: run.timedOut,
        output_truncated: run.outputTruncated,
        duration_ms: run.durationMs,
        advisory,
      };
      await step(
        sessions,
        ctx,
        args.session_id,
        "777",
        (s) => ({ notes: { ...s.notes, command: { exit_code: run.exitCode } } }),
      );
      return {
        data: {
          session_id: args.session_id,
          kind: "command" as const,
          status: run.exitCode === 0 ? "OK" : "ERROR",
          result,
        },
        text: run.timedOut
          ? `command killed after the ${shell.sandbox.limits.timeoutMs} ms limit`
          : run.outputTruncated
          ? "command killed: output over the limit"
          : run.exitCode === null
          ? `command killed by ${run.signal}`
          : `command exited with ${run.exitCode}`,
      };
    },
  });
}

// ---------------------------------------------------------------- 888 apex_judge

/** What a judgement covered: steps other than judging and sealing, and claims. */
function judgedState(s: GovSession): { steps: number; claims: number } {
  return {
    steps: s.steps.filter((x) => x.tool !== "apex_judge" && x.tool !== "seal_vault").length,
    claims: s.claims.length,
  };
}

const ApexJudgeInput = z.object({
  session_id: SessionId,
  query: z.string().max(10_000).default(""),
  proposed_verdict: z.enum(["SEAL", "PARTIAL", "SABAR", "VOID", "888_HOLD"]).optional(),
  action: z.object({
    tool: z.string().min(1).max(128),
    arguments: z.record(z.string(), z.unknown()).default({}),
  }).optional(),
});

const ApexJudgeOutput = z.object({
  session_id: z.string(),
  verdict: z.string(),
  proposed_verdict: z.string().nullable(),
  agrees_with_proposal: z.boolean().nullable(),
  reasons: z.array(z.string()),
  fixes: z.array(z.string()),
  missing_steps: z.array(z.string()),
  floors: z.record(z.string(), z.number()),
  dry_run: z.object({ tool: z.string(), verdict: z.string(), reasons: z.array(z.string()) })
    .nullable(),
  governance_token: z.string().nullable(),
  token_expires_at: z.string().nullable(),
});

/**
 * Whether the hold this call was released with approves the session as it is. An operator's
 * approval covers the session as it was when the hold was made: a step taken since (a claim, a
 * simulation, an action) was never shown to the operator, so it does not ride on that approval —
 * the judgement holds again and the repeat is held anew (`unapproved` says why).
 */
async function approvalOf(
  governance: Pick<Governance, "holds">,
  session: GovSession,
  approvedHold: string | undefined,
): Promise<{ approved: boolean; unapproved?: string }> {
  if (approvedHold === undefined) return { approved: false };
  const hold = await governance.holds.get(approvedHold);
  const since = hold
    ? session.steps.find((s) =>
      s.tool !== "apex_judge" && s.tool !== "seal_vault" && s.at > hold.createdAt
    )
    : undefined;
  if (hold && !since) return { approved: true };
  return {
    approved: false,
    unapproved: since
      ? `the session changed after hold ${approvedHold} was made (${since.tool} at ${since.at}), so the operator's approval does not cover it`
      : `hold ${approvedHold} is gone`,
  };
}

/** 888: the verdict over the session; also a dry run of a proposed action. Issues a signed governance token. */
export function apexJudgeTool(
  { sessions, governance, judgeTool, tokens }: Pick<
    MetabolicToolServices,
    "sessions" | "governance" | "judgeTool" | "tokens"
  >,
) {
  return defineTool({
    name: "apex_judge",
    title: "888 Judge",
    description:
      "The verdict over the session (888), following what the chain found: required steps missing " +
      "(reason_mind, simulate_heart, critique_thought) → SABAR naming them; an irreversible or high " +
      "blast-radius impact → 888_HOLD until an operator approves; contradicting claims → SABAR; " +
      "overclaiming → PARTIAL. A step refused and then retried successfully no longer counts. " +
      "Optionally dry-runs a proposed action (nothing is executed). Returns a signed governance_token " +
      "(session, verdict, floors digest, expiry) that seal_vault requires, only when sealable. " +
      "Next: seal_vault, or the step that fixes the first problem.",
    inputSchema: ApexJudgeInput,
    outputSchema: ApexJudgeOutput,
    annotations: { ...READ_ONLY, idempotentHint: false },
    stage: "888",
    nextTool: "seal_vault",
    async review(args, ctx) {
      // A session whose impact needs an operator makes judging it a destructive act: F1 holds
      // this call, and an operator's approval of that hold is what lets the judgement seal.
      try {
        const s = await sessions.get(args.session_id, ctx.principal);
        const impact = sessionImpact(s);
        return impact && needsOperator(impact) && !s.sealed
          ? { readOnlyHint: false, destructiveHint: true }
          : {};
      } catch (e) {
        // An unknown session is reported by the handler itself. Anything else is a fault: were it
        // swallowed, a session that needs an operator would be judged without a hold.
        if (e instanceof GovSessionError) return {};
        throw e;
      }
    },
    async handler(args, ctx) {
      const session = await sessionOf(sessions, ctx, args.session_id);
      const { approved, unapproved } = await approvalOf(governance, session, ctx.approvedHold);
      const judged = judgeSession(session, { approved });
      if (unapproved !== undefined && judged.verdict === "888_HOLD") {
        judged.reasons.unshift(unapproved);
        judged.fixes.unshift(
          "call apex_judge again without the hold, to be held for the session as it is now",
        );
      }
      let dryRun: { tool: string; verdict: string; reasons: string[] } | null = null;
      let verdict = judged.verdict;
      const reasons = [...judged.reasons];
      const fixes = [...judged.fixes];
      let next = judged.next_tool;
      if (args.action) {
        const j = await judgeTool(args.action.tool, args.action.arguments, ctx);
        dryRun = { tool: args.action.tool, verdict: j.verdict, reasons: j.reasons };
        const v = (VERDICT_ORDER as readonly string[]).includes(j.verdict)
          ? j.verdict as typeof verdict
          : "VOID";
        if (v !== "SEAL") {
          reasons.push(...j.reasons.map((r) => `dry run of ${args.action!.tool}: ${r}`));
          fixes.push(`change \`action\` (${args.action.tool} would be ${v})`);
        }
        verdict = worse(verdict, v);
        if (verdict !== "SEAL" && verdict !== "PARTIAL" && next === "seal_vault") next = null;
      }
      const sealable = verdict === "SEAL" || verdict === "PARTIAL";
      const floorsDigest = digestJson(judged.floors);
      const token = sealable
        ? await tokens.issue({ sessionId: session.id, verdict, floorsDigest })
        : null;
      await step(
        sessions,
        ctx,
        args.session_id,
        "888",
        (s) => ({
          notes: { ...s.notes, judgement: { verdict, floorsDigest, judged: judgedState(session) } },
        }),
      );
      const expires = token
        ? JSON.parse(
          new TextDecoder().decode(
            Uint8Array.fromBase64(token.split(".")[0], { alphabet: "base64url" }),
          ),
        ).expires_at
        : null;
      return {
        data: {
          session_id: session.id,
          verdict,
          proposed_verdict: args.proposed_verdict ?? null,
          agrees_with_proposal: args.proposed_verdict ? args.proposed_verdict === verdict : null,
          reasons,
          fixes,
          missing_steps: judged.missing_steps,
          floors: Object.fromEntries(Object.entries(judged.floors).map(([k, v]) => [k, v / 1000])),
          dry_run: dryRun,
          governance_token: token,
          token_expires_at: expires ? new Date(expires).toISOString() : null,
        },
        outcome: verdict,
        nextTool: sealable ? "seal_vault" : next,
        text: `Session verdict ${verdict}${
          token ? " (governance token issued)" : " (no token: not sealable)"
        }${reasons.length ? `: ${reasons.join("; ")}` : ""}${
          !sealable && fixes.length ? `. Fix: ${fixes.join("; ")}` : ""
        }`,
      };
    },
  });
}

// ---------------------------------------------------------------- 999 seal_vault

/** 999: commits the session to the vault with its inclusion proof and a fresh checkpoint. */
export function sealVaultTool(
  { sessions, tokens, ledger }: Pick<MetabolicToolServices, "sessions" | "tokens" | "ledger">,
) {
  return defineTool({
    name: "seal_vault",
    title: "999 Seal",
    description:
      "Commit the session (999): refused without a valid governance_token from apex_judge for this " +
      "session. Appends the session's summary and verdict to the vault and returns its index, leaf hash, " +
      "inclusion proof and a signed checkpoint that covers it.",
    inputSchema: z.object({
      session_id: SessionId,
      summary: z.string().min(1).max(20_000),
      governance_token: z.string().min(1).max(4096),
    }),
    outputSchema: z.object({
      session_id: z.string(),
      index: z.number(),
      leaf_hash: z.string(),
      tree_size: z.number(),
      inclusion_proof: z.array(z.string()),
      checkpoint: z.string(),
      verdict: z.string(),
    }),
    annotations: WRITE,
    stage: "999",
    nextTool: null,
    async handler(args, ctx) {
      const session = await sessionOf(sessions, ctx, args.session_id);
      let token;
      try {
        token = await tokens.verify(args.governance_token, session.id);
      } catch (e) {
        if (e instanceof TokenError) throw new ToolError(`Cannot seal: ${e.message}`);
        throw e;
      }
      // The token seals what apex_judge judged: a step or claim added since needs a new judgement.
      const judged = (session.notes.judgement as { judged?: { steps: number; claims: number } })
        ?.judged;
      const now = judgedState(session);
      if (!judged || judged.steps !== now.steps || judged.claims !== now.claims) {
        throw new ToolError(
          "Cannot seal: the session changed after apex_judge judged it; call apex_judge again for a new `governance_token`",
        );
      }
      // One seal per session, across processes: claim it under the session record's atomic
      // check first; a racing call waits for the winner and answers with where it was sealed.
      const claim = crypto.randomUUID();
      await claimSeal(sessions, ctx, session.id, claim);
      let receipt;
      try {
        // The claim only spares racing calls the work: the vault itself takes one session_seal per
        // session (its once key), so a claim taken over from a call that was slow, not dead, cannot
        // seal the session a second time when that call resumes.
        receipt = await ledger.append({
          type: "session_seal",
          session_id: session.id,
          principal: ctx.principal,
          intent_sha256: digestJson(session.intent),
          summary_sha256: digestJson(args.summary),
          verdict: token.verdict,
          floors_digest: token.floors_digest,
          steps: session.steps.length,
          claims: session.claims.length,
        }, { once: govSessionSealKey(session.id) });
      } catch (e) {
        if (e instanceof EntryExistsError) {
          // Sealed by another call; its record may never have said so (it died after the append).
          const sealedAt = await ledger.entry(e.index);
          const closed = await sessions.update(session.id, ctx.principal, (s) => ({
            ...s,
            sealed: s.sealed ?? { index: e.index, leafHash: sealedAt?.leafHash ?? "" },
            ...(s.sealing?.claim === claim ? { sealing: undefined } : {}),
          })).catch((u) => {
            if (u instanceof GovSessionError) return undefined;
            throw u;
          });
          throw new ToolError(
            `Cannot seal: ${
              closed
                ? closedMessage(closed)
                : `session ${session.id} is already sealed at vault index ${e.index}`
            } (by another seal_vault call)`,
          );
        }
        // Nothing was appended: give the claim back so the session can be sealed by a retry.
        await sessions.update(
          session.id,
          ctx.principal,
          (s) => s.sealing?.claim === claim ? { ...s, sealing: undefined } : s,
        ).catch(() => {});
        throw e;
      }
      await step(sessions, ctx, args.session_id, "999", (s) => ({
        sealed: { index: receipt.index, leafHash: receipt.leafHash },
        ...(s.sealing?.claim === claim ? { sealing: undefined } : {}),
      }));
      await ledger.flush();
      const checkpoint = (await ledger.signCheckpoint())!;
      const size = Number(checkpoint.split("\n")[1]);
      const proof = await ledger.inclusionProof(receipt.index, size);
      return {
        data: {
          session_id: session.id,
          index: receipt.index,
          leaf_hash: receipt.leafHash,
          tree_size: size,
          inclusion_proof: proof.map(toBase64),
          checkpoint,
          verdict: token.verdict,
        },
        text: `Sealed session ${session.id} at vault index ${receipt.index}`,
      };
    },
  });
}

/**
 * The services the metabolic tools use, and only those: the governed sessions every step records
 * in, the evidence store (reason_mind resolves fetched URLs), the stores the local corpus
 * searches (recall_memory), the sampling policy (critique_thought), the shell and nested calls
 * (eureka_forge), held approvals, a dry run and tokens (apex_judge), and the vault (seal_vault).
 */
export interface MetabolicToolServices extends CorpusSources, NestedCalls {
  readonly sessions: GovSessionStore;
  readonly evidence: EvidenceStore;
  readonly ledger: Ledger;
  readonly policy: Pick<Policy, "sampling">;
  readonly governance: Pick<Governance, "holds">;
  readonly tokens: TokenService;
  readonly shell: ShellService;
}

/**
 * The eight metabolic tools, in chain order, given exactly the services they use (checked here,
 * when the tools are made).
 */
export const createMetabolicTools = toolFamily<MetabolicToolServices>(
  "metabolic",
  [
    "sessions",
    "evidence",
    "ledger",
    "context",
    "policy",
    "governance",
    "tokens",
    "shell",
    "callTool",
    "judgeTool",
  ],
  [
    anchorSessionTool,
    reasonMindTool,
    recallMemoryTool,
    simulateHeartTool,
    critiqueThoughtTool,
    eurekaForgeTool,
    apexJudgeTool,
    sealVaultTool,
  ],
);

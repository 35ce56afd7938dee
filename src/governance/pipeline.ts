/**
 * The one wrapper around every tool call: pre-floors → verdict → execute
 * only on SEAL or PARTIAL → post-floors → seal the decision into the vault →
 * respond. A tool cannot bypass it: the registry hands it nothing but an
 * `execute` thunk, which runs only when the verdict allows.
 */
import { lenientDigestJson, type Logger } from "../lib/mod.ts";
import { type AppendOptions, entryProblem } from "../vault/mod.ts";
import { evaluatePost, evaluatePre } from "./floors.ts";
import {
  elicitationAction,
  holdDigest,
  HoldError,
  type HoldRecord,
  type HoldStore,
} from "./holds.ts";
import { redact } from "./pii.ts";
import { type Policy, toolPermission } from "./policy.ts";
import { principalFields, rolesFor } from "./roles.ts";
import type { RateLimiter, RateSubject } from "./rates.ts";
import {
  boundReasons,
  boundRedacted,
  boundText,
  MAX_RECORDED_NAME,
  unrecordableCall,
} from "./sealable.ts";
import type { CallFacts, Claim, FloorId, FloorResult, RateFacts, ToolFacts } from "./types.ts";
import { floorScores, synthesize, type Telemetry, telemetry, type Verdict } from "./verdict.ts";

/** What execution produced, as the pipeline sees it. */
export interface Execution {
  readonly isError: boolean;
  /** "tool_error", "timeout", "fault"… when isError. */
  readonly errorKind?: string;
  readonly text: string;
  readonly data?: Record<string, unknown>;
  readonly content?: readonly Record<string, unknown>[];
  /** Output-schema problems (undefined when the tool declares no schema). */
  readonly outputSchemaIssues?: string[];
  /**
   * What the vault records instead of `data` and `text` (a read's digest,
   * not the content read).
   */
  readonly recorded?: { readonly data: Record<string, unknown>; readonly text: string };
}

/** One call to govern. */
export interface GovernedRequest {
  readonly tool: ToolFacts;
  /** The upstream's circuit breaker when the call arrives (gateway tools; F5). */
  readonly circuit?: { readonly open: boolean; readonly retryAfterS?: number };
  readonly call: {
    readonly tool: string;
    readonly arguments: unknown;
    readonly principal: string;
    readonly sessionId?: string;
    readonly actor?: "human" | "ai" | "unknown";
    readonly transport: string;
    readonly argumentBytes: number;
    readonly schemaIssues: string[];
    readonly claims?: Claim[];
    /**
     * What the vault records instead of `arguments` (a stored value's digest,
     * not the value); the floors judge `arguments`.
     */
    readonly recorded?: Record<string, unknown>;
    /** A hold id the caller presents to release an approved call. */
    readonly holdId?: string;
    /** The client's address (unauthenticated callers are rate-limited per IP). */
    readonly clientIp?: string;
  };
}

/** The decision and everything the response envelope reports. */
export interface GovernedResult {
  readonly verdict: Verdict;
  readonly floors: FloorResult[];
  readonly telemetry: Telemetry;
  readonly executed: boolean;
  readonly execution?: Execution;
  /** The hold created (888_HOLD) or released (approved call). */
  readonly hold?: HoldRecord;
  readonly vault?: { index: number; leafHash: string };
  readonly latencyMs: number;
}

/**
 * Appends one vault entry; resolves once committed. `digests` names fields to
 * fill with the SHA-256 of a value's canonical JSON: the vault computes them
 * and never stores the values.
 */
export type SealFn = (
  fields: Record<string, unknown>,
  options?: AppendOptions,
) => Promise<{ index: number; leafHash: string }>;

/** Everything the pipeline needs; all resources are passed in. */
export interface GovernanceDeps {
  readonly policy: Policy;
  readonly policyHash: string;
  readonly holds: HoldStore;
  readonly rates: RateLimiter;
  /** Absent when sealing is off (benchmarks only). */
  readonly seal?: SealFn;
  /** Which of these evidence ids exist (vault indices, content hashes). */
  /** Which ids exist; a Map also says what each one says (F2 checks relevance then). */
  readonly knownEvidence: (
    ids: readonly string[],
    principal: string,
  ) => Promise<ReadonlySet<string> | ReadonlyMap<string, string>>;
  readonly logger: Logger;
}

/** Called when a hold is created, e.g. to ask a human through MCP elicitation. */
export type OnHold = (hold: HoldRecord) => Promise<string | undefined>;

/** The governance service. */
export interface Governance {
  readonly policy: Policy;
  readonly policyHash: string;
  readonly holds: HoldStore;
  readonly rates: RateLimiter;
  run(
    request: GovernedRequest,
    execute: () => Promise<Execution>,
    options?: { onHold?: OnHold },
  ): Promise<GovernedResult>;
  /** Dry run: the pre-floors and verdict for a call, nothing executed or held. */
  judge(
    request: GovernedRequest,
  ): Promise<{ verdict: Verdict; floors: FloorResult[]; telemetry: Telemetry }>;
  /**
   * Dry run of a query and a response (POST /judge {query, response}): the
   * pre-floors on the query and the post-floors on the response text.
   */
  judgeText(input: { query: string; response: string; principal: string }): {
    verdict: Verdict;
    floors: FloorResult[];
    telemetry: Telemetry;
  };
  /**
   * Whether `principal` may call `tool` by the policy's tool rules and role
   * grants (F11's authorisation), used to show each caller only what it may call.
   */
  permits(principal: string, tool: string): boolean;
  /**
   * Why a call of `tool` by `principal` would be refused whatever its arguments (a denied tool,
   * a role without the grant, a kill switch), or undefined: what `next_tool` must never suggest.
   */
  refusal(principal: string, tool: string): string | undefined;
  /** Seals a governance event (hold decisions, policy loads) into the vault. */
  record(fields: Record<string, unknown>): Promise<{ index: number; leafHash: string } | undefined>;
}

/** Held arguments kept for the operator to read: redacted, and only up to 16 KiB. */
function operatorView(args: unknown): {
  arguments?: unknown;
  argumentsRedacted: number;
  argumentsOmitted?: string;
} {
  const { value, findings } = redact(args ?? {});
  let size = 0;
  try {
    size = new TextEncoder().encode(JSON.stringify(value)).byteLength;
  } catch {
    size = Infinity;
  }
  if (size > 16 * 1024) {
    return {
      argumentsRedacted: findings.length,
      argumentsOmitted: `arguments are ${size} bytes, over the 16384 kept for display`,
    };
  }
  return { arguments: value, argumentsRedacted: findings.length };
}

/** Floor scores in per-mille: vault entries hold integers only. */
function perMille(floors: readonly FloorResult[]): Record<FloorId, number> {
  const scores = floorScores(floors);
  const out = {} as Record<FloorId, number>;
  for (const [id, score] of Object.entries(scores)) out[id as FloorId] = Math.round(score * 1000);
  return out;
}

function hasFindings(floor: FloorResult | undefined, prefix: string): boolean {
  const findings = floor?.details?.findings;
  return Array.isArray(findings) &&
    findings.some((f) => String((f as { path?: string }).path ?? "").startsWith(prefix));
}

/** The keys a call is rate-limited under; a gateway tool's upstream is its `<upstream>__` prefix. */
function rateSubject(request: GovernedRequest): RateSubject {
  const { call, tool } = request;
  const split = call.tool.indexOf("__");
  const upstream = tool.upstream ?? (split > 0 ? call.tool.slice(0, split) : undefined);
  return {
    principal: call.principal,
    tool: call.tool,
    ...(upstream ? { upstream } : {}),
    ...(call.clientIp ? { clientIp: call.clientIp } : {}),
  };
}

function evidenceIdsOf(claims: readonly Claim[] | undefined): string[] {
  return [...new Set((claims ?? []).flatMap((c) => c.evidence))];
}

/**
 * Why a held call could never be released, or undefined when operators can
 * release it: too few configured operators for `approval.required_signers`,
 * or a hold that even a valid approval does not lift (a kill switch, a
 * tri-witness requirement an approval cannot meet, a changed pinned tool).
 */
function whyUnreleasable(input: {
  call: CallFacts;
  request: GovernedRequest;
  policy: Policy;
  rates: RateLimiter;
}): string | undefined {
  const { call, request, policy } = input;
  const operators = policy.operators.length;
  const required = policy.approval.required_signers;
  if (operators === 0) {
    return 'no operator can release it: policy "operators" is empty ' +
      "(add an operator's public key from `warden keygen`, or change the rule that holds this call)";
  }
  if (operators < required) {
    return `no operator can release it: policy "approval.required_signers" is ${required} ` +
      `but "operators" lists only ${operators}`;
  }
  const approved = evaluatePre({
    call: { ...call, approval: { valid: true, signers: operators } },
    tool: request.tool,
    // Only floors that hold matter here, and F5 never holds: quiet rates suffice.
    rates: { principalCallsLastMinute: 0, toolCallsLastMinute: 0, principalInFlight: 0 },
    policy,
  });
  // A changed upstream definition (F10) is released by an operator re-approving it
  // (`warden approve-tool`, which re-pins it); the held call then runs once approved.
  const repinnable = (f: FloorResult) => f.id === "F10" && request.tool.upstream !== undefined;
  const still = approved.filter((f) => !f.pass && f.action === "hold" && !repinnable(f));
  if (still.length === 0) return undefined;
  const fields = still.map((f) =>
    f.id === "F13" && /kill switch/.test(f.reason)
      ? 'policy "kill_switch"'
      : f.id === "F3"
      ? 'policy "tri_witness.required"'
      : `${f.id} ${f.name}`
  );
  return `no operator approval can release it (${[...new Set(fields)].join(", ")}: ${
    still.map((f) => f.reason).join("; ")
  })`;
}

/**
 * Creates the pipeline.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createGovernance } from "./pipeline.ts";
 * import { createHoldStore } from "./holds.ts";
 * import { createNoLimiter, DEFAULT_POLICY } from "./mod.ts";
 * import { silentLogger } from "../lib/mod.ts";
 * const kv = await Deno.openKv(":memory:");
 * const governance = createGovernance({
 *   policy: DEFAULT_POLICY,
 *   policyHash: "0".repeat(64),
 *   holds: createHoldStore(kv),
 *   rates: createNoLimiter(),
 *   knownEvidence: () => Promise.resolve(new Set()),
 *   logger: silentLogger,
 * });
 * const result = await governance.run({
 *   tool: { name: "now", registered: true, annotations: { readOnlyHint: true }, hasOutputSchema: false },
 *   call: {
 *     tool: "now",
 *     arguments: {},
 *     principal: "alice",
 *     transport: "rest",
 *     argumentBytes: 2,
 *     schemaIssues: [],
 *   },
 * }, () => Promise.resolve({ isError: false, text: "12:00" }));
 * assert.equal(result.verdict.verdict, "SEAL");
 * assert.equal(result.execution?.text, "12:00");
 * kv.close();
 * ```
 */
// Kept whole: the pipeline factory's closures share the policy, the refusal memory and the hold
// store; run() below is the one call path and is documented there.
export function createGovernance(deps: GovernanceDeps): Governance {
  const { policy, holds, rates, logger } = deps;
  const store = policy.store_bodies;

  async function facts(
    request: GovernedRequest,
    approval?: CallFacts["approval"],
  ): Promise<CallFacts> {
    const { call } = request;
    const ids = evidenceIdsOf(call.claims);
    const known = ids.length > 0
      ? await deps.knownEvidence(ids, call.principal)
      : new Set<string>();
    return {
      tool: call.tool,
      arguments: call.arguments,
      principal: call.principal,
      roles: rolesFor(policy, call.principal),
      sessionId: call.sessionId,
      actor: call.actor,
      argumentBytes: call.argumentBytes,
      schemaIssues: call.schemaIssues,
      ...(call.claims
        ? {
          claims: call.claims,
          knownEvidence: (id: string) => known.has(id),
          evidenceText: (id: string) => known instanceof Map ? known.get(id) : undefined,
        }
        : {}),
      ...(approval ? { approval } : {}),
    };
  }

  /** The upstream's circuit breaker joins the rate facts F5 judges. */
  function withCircuit(request: GovernedRequest, snapshot: RateFacts): RateFacts {
    const circuit = request.circuit;
    return circuit?.open
      ? { ...snapshot, circuitOpen: true, retryAfterS: circuit.retryAfterS ?? 30 }
      : snapshot;
  }

  async function seal(fields: Record<string, unknown>, options?: AppendOptions) {
    if (!deps.seal) return undefined;
    const who = typeof fields.principal === "string" ? principalFields(fields.principal) : {};
    return await deps.seal({ ...fields, ...who }, options);
  }

  /**
   * The vault entry for one decision. Only redacted data ever reaches the
   * vault: a digest of a card number is as good as the number (its keyspace
   * is small enough to search), so flagged values are redacted first.
   */
  function sealRecord(input: {
    req: GovernedRequest["call"];
    tool: ToolFacts;
    floors: FloorResult[];
    verdict: Verdict;
    execution?: Execution;
    hold?: HoldRecord;
    latencyMs: number;
    intentIndex?: number;
  }): [Record<string, unknown>, AppendOptions] {
    const { req, floors, verdict, execution, hold, tool } = input;
    const f6 = floors.find((f) => f.id === "F6");
    const argsFlagged = hasFindings(f6, "arguments");
    const resultFlagged = hasFindings(f6, "result");
    const recordedArgs = req.recorded ?? req.arguments ?? {};
    const redactedArgs = argsFlagged || store ? redact(recordedArgs).value : recordedArgs;
    const resultView = execution
      ? {
        is_error: execution.isError,
        text: execution.recorded?.text ?? execution.text,
        data: execution.recorded?.data ?? execution.data ?? null,
      }
      : null;
    const redactedResult = resultView && (resultFlagged || store)
      ? redact(resultView).value
      : resultView;
    const fields: Record<string, unknown> = {
      type: "tool_call",
      session: req.sessionId ?? null,
      principal: boundText(req.principal, MAX_RECORDED_NAME),
      transport: req.transport,
      tool: boundRedacted(req.tool, MAX_RECORDED_NAME),
      // A gateway call names the upstream, its version and the definition it ran against.
      ...(tool.upstream !== undefined
        ? {
          upstream: boundText(tool.upstream, MAX_RECORDED_NAME),
          upstream_version: tool.upstreamVersion !== undefined
            ? boundText(tool.upstreamVersion, MAX_RECORDED_NAME)
            : null,
          upstream_credential: tool.upstreamCredential !== undefined
            ? boundText(tool.upstreamCredential, MAX_RECORDED_NAME)
            : null,
          definition_sha256: tool.definitionHash ?? null,
        }
        : {}),
      ...(redactedResult ? {} : { result_sha256: null }),
      outcome: execution
        ? (execution.isError ? execution.errorKind ?? "tool_error" : "ok")
        : "not_executed",
      verdict: verdict.verdict,
      floors: perMille(floors),
      failed: verdict.failed,
      reasons: boundReasons(verdict.reasons),
      policy_sha256: deps.policyHash,
      latency_us: Math.round(input.latencyMs * 1000),
      ...(hold ? { hold_id: hold.id } : {}),
      ...(input.intentIndex !== undefined ? { intent_index: input.intentIndex } : {}),
    };
    // Only `store_bodies` keeps a body. A call with one detected secret once kept its redacted
    // body, so an undetected secret beside it reached the permanent log; without the
    // setting a flagged call keeps only digests of its redacted arguments and result.
    const body = store
      ? { arguments: redactedArgs, ...(redactedResult ? { result: redactedResult } : {}) }
      : undefined;
    const digests: Record<string, unknown> = redactedResult
      ? { args_sha256: redactedArgs, result_sha256: redactedResult }
      : { args_sha256: redactedArgs };
    return [fields, body === undefined ? { digests } : { body, digests }];
  }

  /**
   * The smallest record of a refused call: bounded name, principal and
   * reasons, and a digest of the arguments only when they can be digested.
   */
  function minimalRecord(
    req: GovernedRequest["call"],
    verdict: Verdict,
    extra: Record<string, unknown> = {},
  ): Record<string, unknown> {
    let argsDigest: string | null = null;
    if (unrecordableCall({ tool: "", arguments: req.arguments }) === undefined) {
      try {
        argsDigest = lenientDigestJson(req.recorded ?? req.arguments ?? {});
      } catch {
        argsDigest = null; // nothing that cannot be hashed is recorded
      }
    }
    return {
      type: "tool_call",
      session: req.sessionId === undefined ? null : boundText(req.sessionId, MAX_RECORDED_NAME),
      principal: boundText(req.principal, MAX_RECORDED_NAME),
      transport: boundText(req.transport, 40),
      tool: boundRedacted(req.tool, MAX_RECORDED_NAME),
      outcome: "not_executed",
      verdict: verdict.verdict,
      failed: verdict.failed,
      reasons: boundReasons(verdict.reasons),
      args_sha256: argsDigest,
      result_sha256: null,
      policy_sha256: deps.policyHash,
      minimal: true,
      ...extra,
    };
  }

  // Rate-limited refusals of one principal are sealed at most once a second;
  // the ones in between are counted into the next sealed one
  // (`suppressed_refusals`), so a flood cannot grow the append-only log at
  // its own pace.
  const refusals = new Map<string, { since: number; suppressed: number }>();
  /** -1: do not seal this refusal (counted); otherwise how many to report as suppressed. */
  function coalesceRefusal(principal: string): number {
    const t = Date.now();
    const seen = refusals.get(principal);
    if (seen && t - seen.since < 1000) {
      seen.suppressed++;
      return -1;
    }
    refusals.delete(principal);
    if (refusals.size >= 10_000) refusals.delete(refusals.keys().next().value!);
    refusals.set(principal, { since: t, suppressed: 0 });
    return seen?.suppressed ?? 0;
  }

  /** Whether policy wants an intent entry sealed before this tool runs. */
  function wantsIntent(tool: ToolFacts): boolean {
    return policy.seal_intent === "all" || tool.annotations?.readOnlyHint !== true;
  }

  return {
    policy,
    policyHash: deps.policyHash,
    holds,
    rates,
    record: (fields) => seal({ ...fields, policy_sha256: deps.policyHash }),
    permits: (principal, tool) => toolPermission(policy, rolesFor(policy, principal), tool).allowed,
    refusal(principal, tool) {
      const permission = toolPermission(policy, rolesFor(policy, principal), tool);
      if (!permission.allowed) return permission.reason;
      const kill = policy.kill_switch;
      if (kill.tools.includes(tool)) return `kill switch engaged on tool ${tool}`;
      if (kill.principals.includes(principal)) {
        return `kill switch engaged on principal ${principal}`;
      }
      return undefined;
    },

    async judge(request) {
      const call = await facts(request);
      const floors = evaluatePre({
        call,
        tool: request.tool,
        rates: withCircuit(request, await rates.snapshot(rateSubject(request))),
        policy,
      });
      return { verdict: synthesize(floors), floors, telemetry: telemetry(floors) };
    },

    judgeText(input) {
      const call: CallFacts = {
        tool: "respond",
        arguments: { query: input.query },
        principal: input.principal,
        roles: rolesFor(policy, input.principal),
        argumentBytes: new TextEncoder().encode(input.query).byteLength,
        schemaIssues: [],
      };
      const tool: ToolFacts = {
        name: "respond",
        registered: true,
        annotations: { readOnlyHint: true, destructiveHint: false },
        hasOutputSchema: false,
      };
      const pre = evaluatePre({
        call,
        tool,
        rates: { principalCallsLastMinute: 0, toolCallsLastMinute: 0, principalInFlight: 0 },
        policy,
      });
      const floors = evaluatePost({
        call,
        tool,
        result: { isError: false, text: input.response, wellFormed: true },
        policy,
      }, pre);
      return { verdict: synthesize(floors), floors, telemetry: telemetry(floors) };
    },

    // Kept whole: run() is the governed call read top to bottom — screen, pre-floors, verdict,
    // hold, execute, post-floors, seal; each phase's outcome is the next one's input and the order
    // is the policy.
    async run(request, execute, options = {}) {
      const started = performance.now();
      const { call: req } = request;
      // A call that cannot even be judged or recorded in full (a hostile name,
      // arguments nested beyond the limit) is refused before anything walks
      // it, and the refusal sealed in minimal form.
      const unrecordable = unrecordableCall(req);
      if (unrecordable !== undefined) {
        // The floors judge a placeholder: the real arguments are never walked.
        // The refusal counts against the rate limits like any call (under a bounded tool name).
        using admission = await rates.acquire(
          rateSubject({ ...request, call: { ...req, tool: boundRedacted(req.tool, 128) } }),
        );
        const floors = evaluatePre({
          call: await facts({ ...request, call: { ...req, arguments: {}, claims: undefined } }),
          tool: request.tool,
          rates: admission.facts,
          policy,
        });
        const full: Verdict = { ...synthesize(floors), verdict: "VOID", reasons: [unrecordable] };
        const vault = await seal(minimalRecord(req, full));
        return {
          verdict: full,
          floors,
          telemetry: telemetry(floors),
          executed: false,
          vault,
          latencyMs: performance.now() - started,
        };
      }
      let digest: string | undefined;
      const digestOf = () => digest ??= holdDigest(req);

      // A presented hold must be approved for exactly this call.
      let presented: HoldRecord | null = null;
      let holdProblem: string | undefined;
      // The caller's own hold for exactly this call, still waiting: the repeat is held again
      // under it (888_HOLD, PENDING), neither refused nor given a second hold.
      let pendingHold: HoldRecord | undefined;
      if (req.holdId !== undefined) {
        presented = await holds.get(req.holdId);
        if (!presented) holdProblem = `hold ${req.holdId} does not exist`;
        else if (presented.digest !== digestOf()) {
          holdProblem = `hold ${req.holdId} was approved for a different call`;
        } else if (presented.status === "open") {
          pendingHold = presented;
        } else if (presented.status !== "approved") {
          holdProblem = presented.status === "released"
            ? `hold ${req.holdId} was already used; an approval releases one call`
            : presented.status === "expired"
            ? `hold ${req.holdId} expired at ${
              new Date(presented.expiresAtMs).toISOString()
            } before it was used, so it can no longer be approved or released; repeat the call without \`warden/hold\` to be held again`
            : `hold ${req.holdId} is ${presented.status}`;
        }
      }
      const approval = presented && !holdProblem && !pendingHold
        ? { valid: true, signers: presented.approvals.length }
        : undefined;
      const call = await facts(request, approval);
      // Checked and counted in one step; the concurrency slot is freed on every exit.
      using admission = await rates.acquire(rateSubject(request));
      const pre = evaluatePre({
        call,
        tool: request.tool,
        rates: withCircuit(request, admission.facts),
        policy,
      });
      let verdict = synthesize(pre);
      if (holdProblem) {
        verdict = {
          ...verdict,
          verdict: "VOID",
          reasons: [`hold: ${holdProblem}`, ...verdict.reasons],
        };
      }
      let floors = pre;
      let execution: Execution | undefined;
      let hold: HoldRecord | undefined;
      let intentIndex: number | undefined;

      const preVerdict = verdict.verdict;
      if (preVerdict === "SEAL" || preVerdict === "PARTIAL") {
        let released = true;
        if (approval) {
          try {
            hold = await holds.release(req.holdId!, digestOf());
            await seal({
              type: "hold_released",
              hold_id: hold.id,
              tool: req.tool,
              principal: req.principal,
            });
          } catch (e) {
            // The store refusing the release (used, expired, another call) is a verdict; any
            // other error (KV, a bug, the hold_released entry not sealing) is a fault.
            if (!(e instanceof HoldError)) throw e;
            released = false;
            verdict = { ...verdict, verdict: "VOID", reasons: [`hold: ${e.message}`] };
          }
        }
        // Decide sealability before running: the call part of the entry must
        // encode, and tools that may change something get an intent entry.
        let sealProblem: string | undefined;
        if (released && deps.seal) {
          sealProblem = entryProblem(
            ...sealRecord({ req, tool: request.tool, floors, verdict, hold, latencyMs: 0 }),
          );
          if (sealProblem === undefined && wantsIntent(request.tool)) {
            try {
              const intent = await seal({
                type: "tool_intent",
                session: req.sessionId ?? null,
                principal: boundText(req.principal, MAX_RECORDED_NAME),
                transport: req.transport,
                tool: boundRedacted(req.tool, MAX_RECORDED_NAME),
                policy_sha256: deps.policyHash,
                ...(hold ? { hold_id: hold.id } : {}),
              }, { digests: { args_sha256: redact(req.recorded ?? req.arguments ?? {}).value } });
              intentIndex = intent?.index;
            } catch (e) {
              sealProblem = `the intent entry could not be sealed: ${(e as Error).message}`;
            }
          }
          if (sealProblem !== undefined) {
            released = false;
            verdict = {
              ...verdict,
              verdict: "VOID",
              reasons: [
                boundText(
                  `VOID: the call cannot be recorded, so it is not run: ${sealProblem}`,
                  500,
                ),
              ],
            };
          }
        }
        if (released) {
          try {
            execution = await execute();
          } finally {
            // Not awaited: the release becomes durable with the commit that seals this call.
            admission.release().catch(() => {});
          }
          floors = evaluatePost({
            call,
            tool: request.tool,
            result: {
              isError: execution.isError,
              text: execution.text,
              data: execution.data,
              outputSchemaIssues: execution.outputSchemaIssues,
              wellFormed: true,
            },
            policy,
          }, pre);
          verdict = synthesize(floors);
        }
      }
      const unreleasable = preVerdict === "888_HOLD" && pendingHold === undefined
        ? whyUnreleasable({ call, request, policy, rates })
        : undefined;
      if (preVerdict === "888_HOLD" && pendingHold !== undefined) {
        hold = pendingHold;
        verdict = {
          ...verdict,
          reasons: [
            `hold ${pendingHold.id} is still waiting for approval (${pendingHold.approvals.length} of ${pendingHold.requiredSigners} signatures)`,
            ...verdict.reasons,
          ],
        };
      } else if (unreleasable !== undefined) {
        // A hold nobody can release would only wait to expire: refuse now, and say what to change.
        verdict = {
          ...verdict,
          verdict: "VOID",
          reasons: [`hold: ${unreleasable}`, ...verdict.reasons],
        };
      } else if (preVerdict === "888_HOLD") {
        try {
          hold = await holds.create({
            digest: digestOf(),
            tool: req.tool,
            principal: req.principal,
            session: req.sessionId ?? null,
            reasons: boundReasons(verdict.reasons),
            expirySeconds: policy.approval.expiry_seconds,
            requiredSigners: policy.approval.required_signers,
            maxOpenPerPrincipal: policy.approval.max_open_per_principal,
            ...operatorView(req.arguments),
          });
        } catch (e) {
          if (!(e instanceof HoldError)) throw e;
          verdict = { ...verdict, verdict: "VOID", reasons: [`hold: ${e.message}`] };
        }
      }
      if (hold !== undefined && preVerdict === "888_HOLD" && pendingHold === undefined) {
        await seal({
          type: "hold_created",
          hold_id: hold.id,
          digest: hold.digest,
          tool: req.tool,
          principal: req.principal,
          expires_at_ms: hold.expiresAtMs,
          required_signers: hold.requiredSigners,
        });
        if (options.onHold) {
          let answered: string | undefined;
          try {
            answered = await options.onHold(hold);
          } catch (e) {
            // The client may fail, refuse or go away: the hold stands and the call stays held.
            logger.warn("elicitation for a hold failed", { hold: hold.id, error: e });
          }
          if (answered) {
            // Recording the answer is our own storage: its failure is a fault, not the client's.
            const action = elicitationAction(answered);
            const updated = await holds.recordHuman(hold.id, action);
            if (updated) hold = updated;
            await seal({ type: "hold_human_response", hold_id: hold.id, action });
          }
        }
      }

      const latencyMs = performance.now() - started;
      // Refused and held calls were counted against the rate limits by acquire() above.
      let vault: { index: number; leafHash: string } | undefined;
      const suppressed = execution === undefined && verdict.failed.includes("F5")
        ? coalesceRefusal(req.principal)
        : 0;
      if (deps.seal && suppressed >= 0) {
        const record = sealRecord({
          req,
          tool: request.tool,
          floors,
          verdict,
          execution,
          hold,
          latencyMs,
          intentIndex,
        });
        if (suppressed > 0) record[0].suppressed_refusals = suppressed;
        if (execution === undefined && entryProblem(...record) !== undefined) {
          // A refusal whose full record cannot seal is sealed in minimal form.
          vault = await seal(minimalRecord(req, verdict));
        } else {
          try {
            vault = await seal(...record);
          } catch (e) {
            // Never leave a call unrecorded: fall back to the minimal form.
            logger.error("cannot seal the full record of a call; sealing a minimal one", {
              tool: boundRedacted(req.tool, MAX_RECORDED_NAME),
              error: e,
            });
            vault = await seal(
              minimalRecord(req, verdict, {
                outcome: execution
                  ? (execution.isError ? execution.errorKind ?? "tool_error" : "ok")
                  : "not_executed",
                seal_error: boundText((e as Error).message, 300),
                ...(intentIndex !== undefined ? { intent_index: intentIndex } : {}),
              }),
            );
          }
        }
      }
      return {
        verdict,
        floors,
        telemetry: telemetry(floors),
        executed: execution !== undefined,
        execution,
        hold,
        vault,
        latencyMs,
      };
    },
  };
}

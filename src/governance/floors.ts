/**
 * The thirteen floors. Each is a pure function of the call facts, the tool
 * facts, the rates or the result, and the policy; time enters only through
 * `RateFacts`.
 *
 * Conventions shared by every floor:
 * - A floor that does not apply to a call (F2 without claims, F3 for a call
 *   that is not high-stakes) scores 1 and passes, `applicable: false`.
 * - A floor that applies but had nothing it could check (F1 without
 *   annotations, F2 without an evidence index, F8 without an output schema)
 *   scores 0.5 and passes, `evaluated: false`; F7 counts these.
 * - Modes are applied in one place, `govern`: `off` returns a neutral
 *   result; `soft` turns a failure's action into `partial`, except for F1
 *   and F13, whose holds (and F13's refusal of an AI approving a hold) soft
 *   mode never weakens — an irreversible action or an operator veto is not a
 *   warning. Only `off` disables them.
 *
 * @module
 */

import type { PatternMatch } from "./_walk.ts";
import { findSentienceClaims } from "./anti_hantu.ts";
import { findInjections } from "./injection.ts";
import { sharedTerms } from "./relevance.ts";
import { type Finding, findPii, PII_KINDS, type PiiKind } from "./pii.ts";
import { floorMode, floorThreshold, type Policy, toolPermission } from "./policy.ts";
import {
  type CallFacts,
  type FailureAction,
  FLOOR_IDS,
  FLOOR_NAMES,
  type FloorId,
  type FloorResult,
  type RateFacts,
  type ResultFacts,
  type ToolFacts,
} from "./types.ts";

/** The tool that releases holds; an AI actor may never call it (F13). */
export const APPROVAL_TOOL = "approve_hold";

/** Score of a floor that applies but could not be evaluated. */
const UNKNOWN = 0.5;

/** Rounds to 3 decimals (and turns -0 into 0). */
export function round3(value: number): number {
  const rounded = Math.round(value * 1000) / 1000;
  return rounded === 0 ? 0 : rounded;
}

function clamp01(value: number): number {
  return Math.min(1, Math.max(0, value));
}

interface Draft {
  score: number;
  pass: boolean;
  reason: string;
  evaluated?: boolean;
  applicable?: boolean;
  action?: FailureAction;
  details?: Record<string, unknown>;
}

function offResult(id: FloorId): FloorResult {
  return {
    id,
    name: FLOOR_NAMES[id],
    score: 1,
    pass: true,
    evaluated: false,
    applicable: false,
    reason: "off by policy",
  };
}

// Soft mode never weakens these: see the module documentation.
const STRICT_UNDER_SOFT: ReadonlySet<FloorId> = new Set(["F1", "F13"]);

function govern(id: FloorId, policy: Policy, evaluate: () => Draft): FloorResult {
  const mode = floorMode(policy, id);
  if (mode === "off") return offResult(id);
  const draft = evaluate();
  const result: FloorResult = {
    id,
    name: FLOOR_NAMES[id],
    score: round3(clamp01(draft.score)),
    pass: draft.pass,
    evaluated: draft.evaluated ?? true,
    applicable: draft.applicable ?? true,
    reason: draft.reason,
  };
  if (!draft.pass) {
    const action = draft.action ?? "void";
    result.action = mode === "soft" && !STRICT_UNDER_SOFT.has(id) ? "partial" : action;
  }
  if (draft.details) result.details = draft.details;
  return result;
}

function toolRule(policy: Policy, name: string): Policy["tools"][string] | undefined {
  return Object.hasOwn(policy.tools, name) ? policy.tools[name] : undefined;
}

function approved(call: CallFacts): boolean {
  return call.approval?.valid === true;
}

type Effect = "read" | "write" | "destructive";

// What the tool does to the world, from the policy (authoritative) and the
// MCP annotations (hints). `known` is false when nothing says so.
function effectOf(
  call: CallFacts,
  tool: ToolFacts,
  policy: Policy,
): { effect: Effect; known: boolean; basis: string } {
  const rule = toolRule(policy, call.tool);
  const hints = tool.annotations;
  if (rule?.reversible === false) return { effect: "destructive", known: true, basis: "policy" };
  if (hints?.readOnlyHint === true) return { effect: "read", known: true, basis: "annotations" };
  if (rule?.reversible === true) return { effect: "write", known: true, basis: "policy" };
  if (hints?.destructiveHint === true) {
    return { effect: "destructive", known: true, basis: "annotations" };
  }
  if (hints?.destructiveHint === false) {
    return { effect: "write", known: true, basis: "annotations" };
  }
  // A write tool without destructiveHint (MCP's default for it is true) or a
  // tool without annotations: reversibility is unknown.
  return { effect: "write", known: false, basis: hints ? "incomplete annotations" : "none" };
}

/** F1 Amanah: read-only 1.0, reversible write 0.5, destructive 0.0 and held unless approved. */
export function amanah(input: { call: CallFacts; tool: ToolFacts; policy: Policy }): FloorResult {
  const { call, tool, policy } = input;
  return govern("F1", policy, () => {
    const { effect, known, basis } = effectOf(call, tool, policy);
    const name = call.tool;
    if (effect === "read") return { score: 1, pass: true, reason: `read-only tool ${name}` };
    if (effect === "destructive") {
      const why = basis === "policy" ? "irreversible by policy" : "destructive";
      if (approved(call)) {
        return { score: 0, pass: true, reason: `${why} tool ${name} approved by an operator` };
      }
      return {
        score: 0,
        pass: false,
        action: "hold",
        reason: `${why} tool ${name} without an operator approval`,
      };
    }
    if (!known) {
      return {
        score: UNKNOWN,
        pass: true,
        evaluated: false,
        reason: basis === "none"
          ? `no annotations or policy say whether ${name} is reversible`
          : `write tool ${name} has no destructiveHint`,
      };
    }
    return { score: 0.5, pass: true, reason: `reversible write tool ${name}` };
  });
}

/** F2 Truth: share of claims citing at least one known evidence id. */
export function truth(input: { call: CallFacts; policy: Policy }): FloorResult {
  const { call, policy } = input;
  return govern("F2", policy, () => {
    const claims = call.claims ?? [];
    if (claims.length === 0) {
      return { score: 1, pass: true, applicable: false, reason: "no claims to ground" };
    }
    const known = call.knownEvidence;
    if (!known) {
      return {
        score: UNKNOWN,
        pass: true,
        evaluated: false,
        reason: `${claims.length} claims but no evidence index to check them against`,
      };
    }
    const ungrounded: number[] = [];
    const why: string[] = [];
    claims.forEach((claim, i) => {
      const cited = claim.evidence.filter((id) => known(id));
      // Evidence whose text is known must share a content word with the claim.
      const relevant = cited.filter((id) => {
        const text = call.evidenceText?.(id);
        return text === undefined || sharedTerms(claim.text, text).length > 0;
      });
      if (relevant.length > 0) return;
      ungrounded.push(i);
      const where = claim.argument ? `\`${claim.argument}\`` : `\`claims[${i}].evidence\``;
      why.push(
        cited.length > 0
          ? `claims[${i}]: the evidence cited (${
            cited.slice(0, 3).join(", ")
          }) shares no words with the claim; add evidence about it to ${where}`
          : claim.evidence.length > 0
          ? `claims[${i}]: no cited id is known (${
            claim.evidence.slice(0, 3).join(", ")
          }); add a vault:N, content hash or fetched URL to ${where}`
          : `claims[${i}]: add an evidence id (vault:N, a content hash or a fetched URL) to ${where}`,
      );
    });
    const grounded = claims.length - ungrounded.length;
    const share = grounded / claims.length;
    const threshold = floorThreshold(policy, "F2") ?? 1;
    const summary = `${grounded} of ${claims.length} claims grounded in known evidence`;
    const details = { claims: claims.length, grounded, ungrounded };
    if (share + 1e-9 >= threshold) return { score: share, pass: true, reason: summary, details };
    return {
      score: share,
      pass: false,
      action: "sabar",
      reason: `${summary}, below the threshold ${threshold}; ${why.join("; ")}`,
      details: { ...details, fixes: why },
    };
  });
}

/** The top-level argument whose JSON is longest, to name in F4's size reason. */
function largestArgument(args: unknown): { name: string; bytes: number } | undefined {
  if (typeof args !== "object" || args === null || Array.isArray(args)) return undefined;
  let best: { name: string; bytes: number } | undefined;
  for (const [name, value] of Object.entries(args).slice(0, 1000)) {
    let bytes: number;
    try {
      bytes = new TextEncoder().encode(JSON.stringify(value) ?? "").byteLength;
    } catch {
      bytes = Infinity;
    }
    if (!best || bytes > best.bytes) best = { name: shownName(name), bytes };
  }
  return best;
}

/** F3 Tri-Witness: high-stakes calls need `tri_witness.required` of policy, principal, human. */
export function triWitness(
  input: { call: CallFacts; tool: ToolFacts; policy: Policy },
): FloorResult {
  const { call, tool, policy } = input;
  return govern("F3", policy, () => {
    const rule = toolRule(policy, call.tool);
    const highStakes = effectOf(call, tool, policy).effect === "destructive" ||
      rule?.high_stakes === true;
    if (!highStakes) {
      return { score: 1, pass: true, applicable: false, reason: "not a high-stakes call" };
    }
    const witnesses = {
      policy: tool.registered && rule?.deny !== true,
      principal: call.principal !== "" && call.principal !== "anonymous",
      human: approved(call),
    };
    const present = Object.values(witnesses).filter(Boolean).length;
    const required = policy.tri_witness.required;
    const names = Object.entries(witnesses).filter(([, ok]) => ok).map(([name]) => name);
    const details = { witnesses, required };
    const reason = `${present} of 3 witnesses (${
      names.join(", ") || "none"
    }), ${required} required`;
    if (present >= required) return { score: present / 3, pass: true, reason, details };
    return {
      score: present / 3,
      pass: false,
      action: "hold",
      reason: `high-stakes call to ${call.tool}: ${reason}`,
      details,
    };
  });
}

/** F4 Clarity: arguments valid against the input schema and within the size limit. */
export function clarity(input: { call: CallFacts; policy: Policy }): FloorResult {
  const { call, policy } = input;
  return govern("F4", policy, () => {
    const max = policy.limits.max_argument_bytes;
    const issues = [...call.schemaIssues];
    if (call.argumentBytes > max) {
      const largest = largestArgument(call.arguments);
      issues.push(
        `arguments are ${call.argumentBytes} bytes, over the limit of ${max}` +
          (largest
            ? `; shorten \`${largest.name}\` (${largest.bytes} bytes)`
            : "; send shorter arguments"),
      );
    }
    if (issues.length === 0) {
      return { score: 1, pass: true, reason: "arguments valid and within size limits" };
    }
    return {
      score: 1 / (1 + issues.length),
      pass: false,
      action: "sabar",
      reason: `arguments need fixing: ${issues.join("; ")}`,
      details: { issues, fixes: issues },
    };
  });
}

/** F5 Peace²: rate limits, concurrency and the upstream circuit breaker. */
export function peace(
  input: { call: CallFacts; tool: ToolFacts; rates: RateFacts; policy: Policy },
): FloorResult {
  const { call, tool, rates, policy } = input;
  return govern("F5", policy, () => {
    const limits = policy.rate_limits;
    // Counts exclude this call, so reaching the limit means this one is over.
    const checks: { count: number; limit: number; what: string }[] = rates.checks ?? [
      {
        count: rates.principalCallsLastMinute,
        limit: limits.per_principal_per_minute,
        what:
          `principal ${call.principal} made ${rates.principalCallsLastMinute} calls in the last minute`,
      },
      {
        count: rates.toolCallsLastMinute,
        limit: limits.per_tool_per_minute,
        what: `tool ${call.tool} was called ${rates.toolCallsLastMinute} times in the last minute`,
      },
      {
        count: rates.principalInFlight,
        limit: limits.max_concurrent_per_principal,
        what: `principal ${call.principal} has ${rates.principalInFlight} calls in flight`,
      },
    ];
    let utilisation = 0;
    const problems: string[] = [];
    for (const { count, limit, what } of checks) {
      if (limit === 0) continue; // 0 = unlimited
      utilisation = Math.max(utilisation, count / limit);
      if (count >= limit) problems.push(`${what} (limit ${limit})`);
    }
    if (rates.circuitOpen) {
      utilisation = 1;
      problems.push(
        tool.upstream
          ? `circuit breaker for upstream ${tool.upstream} is open`
          : "circuit breaker is open",
      );
    }
    const score = 1 - utilisation;
    if (problems.length === 0) {
      return {
        score,
        pass: true,
        reason: `within rate limits (utilisation ${Math.round(utilisation * 100)}%)`,
      };
    }
    const retryAfter = Math.max(1, Math.ceil(rates.retryAfterS ?? 60));
    return {
      score,
      pass: false,
      action: "sabar",
      reason: `${problems.join("; ")}; retry after ${retryAfter} s`,
      details: {
        retry_after_s: retryAfter,
        fixes: [`no argument to change: repeat the same call after ${retryAfter} s`],
      },
    };
  });
}

function describeFindings(findings: readonly Finding[]): string {
  const totals = new Map<PiiKind, number>();
  for (const { kind, count } of findings) totals.set(kind, (totals.get(kind) ?? 0) + count);
  return PII_KINDS.filter((k) => (totals.get(k) ?? 0) > 0).map((k) => `${k} ×${totals.get(k)}`)
    .join(", ");
}

function empathyDraft(findings: Finding[], policy: Policy): Draft {
  const total = findings.reduce((sum, f) => sum + f.count, 0);
  if (total === 0) return { score: 1, pass: true, reason: "no PII or secrets found" };
  const score = Math.max(0, 1 - 0.25 * total);
  const found = describeFindings(findings);
  const forbid: readonly string[] = policy.pii.forbid;
  const forbidden = PII_KINDS.filter((k) =>
    forbid.includes(k) && findings.some((f) => f.kind === k)
  );
  const details = { findings };
  if (forbidden.length > 0) {
    return {
      score,
      pass: false,
      action: "void",
      reason: `found ${found}; policy forbids ${forbidden.join(", ")}`,
      details,
    };
  }
  const threshold = floorThreshold(policy, "F6") ?? 1;
  if (score + 1e-9 >= threshold) {
    return { score, pass: true, reason: `found ${found}, within the threshold`, details };
  }
  return {
    score,
    pass: false,
    action: "partial",
    reason: `found ${found}; the vault keeps a redacted record`,
    details,
  };
}

/** F6 Empathy on the arguments: PII and secrets, with kinds, paths and counts. */
export function empathy(input: { call: CallFacts; policy: Policy }): FloorResult {
  const { call, policy } = input;
  return govern("F6", policy, () => empathyDraft(findPii(call.arguments, "arguments"), policy));
}

/**
 * Ω0: the share of applicable floors (F7 itself excluded; off floors are
 * never applicable) that could not be evaluated, with their ids. 0 when no
 * floor applies.
 *
 * @example
 * ```ts
 * import { omega0 } from "./floors.ts";
 * omega0([]).omega0; // 0
 * ```
 */
export function omega0(floors: readonly FloorResult[]): {
  omega0: number;
  applicable: number;
  unevaluated: FloorId[];
} {
  const counted = floors.filter((f) => f.id !== "F7" && f.applicable);
  const unevaluated = counted.filter((f) => !f.evaluated).map((f) => f.id);
  const share = counted.length === 0 ? 0 : unevaluated.length / counted.length;
  return { omega0: round3(share), applicable: counted.length, unevaluated };
}

/** F7 Humility over the other floors' results; fails when Ω0 exceeds the threshold. */
export function humility(floors: readonly FloorResult[], policy: Policy): FloorResult {
  return govern("F7", policy, () => {
    const { omega0: value, applicable, unevaluated } = omega0(floors);
    const threshold = floorThreshold(policy, "F7") ?? 0.34;
    const listed = unevaluated.length > 0 ? ` (${unevaluated.join(", ")})` : "";
    const summary =
      `Ω0 = ${value}: ${unevaluated.length} of ${applicable} applicable floors could not be evaluated${listed}`;
    const details = { omega_0: value, unevaluated, applicable };
    if (value <= threshold) return { score: 1 - value, pass: true, reason: summary, details };
    return {
      score: 1 - value,
      pass: false,
      action: "partial",
      reason: `${summary}, above the threshold ${threshold}`,
      details,
    };
  });
}

/** F8 Genius on the result: output schema and well-formedness. Tool errors are not failures. */
export function genius(input: { result: ResultFacts; policy: Policy }): FloorResult {
  const { result, policy } = input;
  return govern("F8", policy, () => {
    if (!result.wellFormed) {
      return {
        score: 0,
        pass: false,
        action: "void",
        reason: "result is not a well-formed tool result",
      };
    }
    if (result.isError) {
      return {
        score: 1,
        pass: true,
        applicable: false,
        reason: "tool reported an error; no output to check",
      };
    }
    const issues = result.outputSchemaIssues;
    if (issues === undefined) {
      return { score: UNKNOWN, pass: true, evaluated: false, reason: "no output schema" };
    }
    if (issues.length === 0) {
      return { score: 1, pass: true, reason: "result matches the output schema" };
    }
    return {
      score: 1 / (1 + issues.length),
      pass: false,
      action: "void",
      reason: `result does not match the output schema: ${issues.join("; ")}`,
      details: { issues },
    };
  });
}

function totalCount(matches: readonly PatternMatch[]): number {
  return matches.reduce((sum, m) => sum + m.count, 0);
}

function describeMatches(matches: readonly PatternMatch[]): string {
  return matches.map((m) => `${m.pattern} at ${m.path}${m.count > 1 ? ` ×${m.count}` : ""}`)
    .join(", ");
}

function antiHantuDraft(matches: PatternMatch[]): Draft {
  const count = totalCount(matches);
  if (count === 0) return { score: 1, pass: true, reason: "no claims of sentience or humanity" };
  return {
    score: 1 - Math.min(1, 0.5 * count),
    pass: false,
    action: "void",
    reason: `text claims sentience or humanity: ${describeMatches(matches)}`,
    details: { matches },
  };
}

/** F9 Anti-Hantu on the arguments. */
export function antiHantu(input: { call: CallFacts; policy: Policy }): FloorResult {
  const { call, policy } = input;
  return govern(
    "F9",
    policy,
    () => antiHantuDraft(findSentienceClaims(call.arguments, "arguments")),
  );
}

/** A client-chosen tool name as echoed in reasons: at most 64 characters, lone surrogates replaced. */
export function shownName(name: string): string {
  const clean = name.slice(0, 64).toWellFormed();
  return name.length > 64 ? `${clean}… (${name.length} characters)` : clean;
}

/** F10 Ontology: the tool is registered and its definition matches the pinned hash. */
export function ontology(input: { tool: ToolFacts; policy: Policy }): FloorResult {
  const { tool, policy } = input;
  return govern("F10", policy, () => {
    if (!tool.registered) {
      return {
        score: 0,
        pass: false,
        action: "void",
        reason: `unknown tool ${shownName(tool.name)}`,
      };
    }
    if (tool.pinnedHash !== undefined && tool.definitionHash !== tool.pinnedHash) {
      return {
        score: 0,
        pass: false,
        action: "hold",
        reason: `definition of ${tool.name} changed since it was pinned` +
          (tool.upstream !== undefined
            ? `; an operator re-approves the new definition with \`warden approve-tool ${tool.upstream} TOOL --key …\``
            : ""),
        details: { pinned: tool.pinnedHash, current: tool.definitionHash ?? null },
      };
    }
    return {
      score: 1,
      pass: true,
      reason: tool.pinnedHash === undefined
        ? `registered tool ${tool.name}`
        : `registered tool ${tool.name} matches its pinned definition`,
    };
  });
}

/** F11 Command authority: caller identified, tool and this form of call not denied, role permitted. */
export function commandAuthority(
  input: { call: CallFacts; policy: Policy; tool?: ToolFacts },
): FloorResult {
  const { call, policy, tool } = input;
  return govern("F11", policy, () => {
    if (call.principal === "") {
      return { score: 0, pass: false, action: "void", reason: "caller not identified" };
    }
    if (tool?.refusal !== undefined) {
      return { score: 0, pass: false, action: "void", reason: tool.refusal };
    }
    const permission = toolPermission(policy, call.roles, call.tool);
    if (!permission.allowed) {
      return {
        score: 0,
        pass: false,
        action: "void",
        reason: permission.everyone === true
          ? permission.reason
          : `principal ${call.principal} (roles: ${
            call.roles.join(", ") || "none"
          }) ${permission.reason}`,
      };
    }
    return { score: 1, pass: true, reason: `principal ${call.principal} may call ${call.tool}` };
  });
}

function injectionDraft(
  inputs: PatternMatch[],
  outputs: PatternMatch[],
  policy: Policy,
): Draft {
  const matches = [...inputs, ...outputs];
  const count = totalCount(matches);
  if (count === 0) return { score: 1, pass: true, reason: "no prompt-injection patterns" };
  const score = 1 - Math.min(1, 0.5 * count);
  const quarantine = outputs.length > 0;
  const details: Record<string, unknown> = { matches };
  if (quarantine) details.quarantine = true;
  const threshold = floorThreshold(policy, "F12") ?? 1;
  if (score + 1e-9 >= threshold) {
    return {
      score,
      pass: true,
      reason: `prompt-injection patterns within the threshold: ${describeMatches(matches)}`,
      details,
    };
  }
  if (inputs.length > 0) {
    return {
      score,
      pass: false,
      action: "void",
      reason: `prompt-injection patterns in the call: ${describeMatches(matches)}`,
      details,
    };
  }
  return {
    score,
    pass: false,
    action: "partial",
    reason: `prompt-injection patterns in the result, quarantined: ${describeMatches(matches)}`,
    details,
  };
}

/**
 * `findInjections` of a tool description, remembered: a tool's description is the same on
 * every call (a changed upstream one is a new text). At most 512 of up to 4096 characters,
 * cleared when full; copies out.
 */
function descriptionInjections(description: string): PatternMatch[] {
  if (description.length > 4096) return findInjections(description, "description");
  let found = scannedDescriptions.get(description);
  if (found === undefined) {
    if (scannedDescriptions.size >= 512) scannedDescriptions.clear();
    found = findInjections(description, "description");
    scannedDescriptions.set(description, found);
  }
  return found.map((m) => ({ ...m }));
}

const scannedDescriptions = new Map<string, PatternMatch[]>();

/** F12 Injection defense on the arguments and the tool description. */
export function injectionDefense(
  input: { call: CallFacts; tool: ToolFacts; policy: Policy },
): FloorResult {
  const { call, tool, policy } = input;
  return govern("F12", policy, () => {
    const matches = findInjections(call.arguments, "arguments");
    if (tool.description !== undefined) matches.push(...descriptionInjections(tool.description));
    return injectionDraft(matches, [], policy);
  });
}

/** F13 Sovereign: kill switches, operator-held tools, and no AI approving a hold. */
export function sovereign(
  input: { call: CallFacts; tool: ToolFacts; policy: Policy },
): FloorResult {
  const { call, tool, policy } = input;
  return govern("F13", policy, () => {
    if (call.actor === "ai" && call.tool === APPROVAL_TOOL) {
      return { score: 0, pass: false, action: "void", reason: "an AI actor can never approve" };
    }
    const kill = policy.kill_switch;
    // A kill switch is absolute: an approval does not lift it, a policy change does.
    const killed = [
      kill.tools.includes(call.tool) ? `tool ${call.tool}` : undefined,
      kill.principals.includes(call.principal) ? `principal ${call.principal}` : undefined,
      tool.upstream !== undefined && kill.upstreams.includes(tool.upstream)
        ? `upstream ${tool.upstream}`
        : undefined,
    ].filter((x): x is string => x !== undefined);
    if (killed.length > 0) {
      return {
        score: 0,
        pass: false,
        action: "hold",
        reason: `kill switch engaged on ${killed.join(", ")}`,
      };
    }
    if (toolRule(policy, call.tool)?.hold === true) {
      if (approved(call)) {
        return { score: 1, pass: true, reason: `operator approved ${call.tool}` };
      }
      return {
        score: 0,
        pass: false,
        action: "hold",
        reason: `policy requires an operator to approve ${call.tool}`,
      };
    }
    return { score: 1, pass: true, reason: "no operator veto" };
  });
}

function postOnly(policy: Policy): FloorResult {
  return govern("F8", policy, () => ({
    score: 1,
    pass: true,
    evaluated: false,
    applicable: false,
    reason: "evaluated after execution",
  }));
}

/** What the pre-floors need. */
export interface PreInput {
  call: CallFacts;
  tool: ToolFacts;
  rates: RateFacts;
  policy: Policy;
}

/** What the post-floors need. */
export interface PostInput {
  call: CallFacts;
  tool: ToolFacts;
  result: ResultFacts;
  policy: Policy;
}

function inOrder(results: readonly FloorResult[]): FloorResult[] {
  return [...results].sort((a, b) => FLOOR_IDS.indexOf(a.id) - FLOOR_IDS.indexOf(b.id));
}

/**
 * Runs the floors that judge a call before it executes. Returns all 13
 * results in order F1…F13; F8 (post only) reads "evaluated after
 * execution", and F7 is computed over the other twelve.
 *
 * @example
 * ```ts
 * import { DEFAULT_POLICY, evaluatePre } from "./mod.ts";
 * const floors = evaluatePre({
 *   call: { tool: "get_time", arguments: {}, principal: "alice", roles: ["user"], argumentBytes: 2, schemaIssues: [] },
 *   tool: { name: "get_time", registered: true, annotations: { readOnlyHint: true }, hasOutputSchema: true },
 *   rates: { principalCallsLastMinute: 0, toolCallsLastMinute: 0, principalInFlight: 0 },
 *   policy: DEFAULT_POLICY,
 * });
 * floors.length; // 13
 * ```
 */
export function evaluatePre(input: PreInput): FloorResult[] {
  const { call, tool, rates, policy } = input;
  const others = [
    amanah({ call, tool, policy }),
    truth({ call, policy }),
    triWitness({ call, tool, policy }),
    clarity({ call, policy }),
    peace({ call, tool, rates, policy }),
    empathy({ call, policy }),
    postOnly(policy),
    antiHantu({ call, policy }),
    ontology({ tool, policy }),
    commandAuthority({ call, policy, tool }),
    injectionDefense({ call, tool, policy }),
    sovereign({ call, tool, policy }),
  ];
  return inOrder([...others, humility(others, policy)]);
}

function detailList<T>(floor: FloorResult | undefined, key: string): T[] {
  const list = floor?.details?.[key];
  return Array.isArray(list) ? list as T[] : [];
}

/**
 * Runs the floors that judge a result and merges them with `pre` (the
 * output of `evaluatePre` for the same call): F6, F9 and F12 combine the
 * argument findings recorded in `pre` with the result's, F8 is filled in,
 * F7 is recomputed, the rest are carried over. Returns all 13 in order.
 * Result text and structured data are both scanned, so content present in
 * both counts twice.
 *
 * @example
 * ```ts
 * import { DEFAULT_POLICY, evaluatePost, evaluatePre } from "./mod.ts";
 * const call = { tool: "get_time", arguments: {}, principal: "alice", roles: ["user"], argumentBytes: 2, schemaIssues: [] };
 * const tool = { name: "get_time", registered: true, annotations: { readOnlyHint: true }, hasOutputSchema: true };
 * const policy = DEFAULT_POLICY;
 * const rates = { principalCallsLastMinute: 0, toolCallsLastMinute: 0, principalInFlight: 0 };
 * const pre = evaluatePre({ call, tool, rates, policy });
 * const result = { isError: false, text: "12:00", outputSchemaIssues: [], wellFormed: true };
 * const final = evaluatePost({ call, tool, result, policy }, pre);
 * final[7].reason; // "result matches the output schema" (F8)
 * ```
 */
export function evaluatePost(input: PostInput, pre: readonly FloorResult[]): FloorResult[] {
  const { result, policy } = input;
  const byId = new Map(pre.map((floor) => [floor.id, floor]));
  const missing = FLOOR_IDS.filter((id) => !byId.has(id));
  if (missing.length > 0) {
    throw new TypeError(
      `Cannot evaluate post-floors: pre-floor results missing ${missing.join(", ")}`,
    );
  }
  const scanned = (scan: (value: unknown, root: string) => PatternMatch[]) => [
    ...scan(result.text, "result.text"),
    ...(result.data === undefined ? [] : scan(result.data, "result.data")),
  ];
  // Scans run inside `govern`, so a floor that is off costs nothing.
  // One scan over arguments, text and data: a value the tool echoes back (in its text and
  // again in its data) is the same finding, counted once where it was first seen.
  const pii = () => {
    const seen = new Set<string>();
    return [
      ...findPii(input.call.arguments, "arguments", seen),
      ...findPii(result.text, "result.text", seen),
      ...(result.data === undefined ? [] : findPii(result.data, "result.data", seen)),
    ];
  };
  byId.set("F6", govern("F6", policy, () => empathyDraft(pii(), policy)));
  byId.set("F8", genius({ result, policy }));
  byId.set(
    "F9",
    govern("F9", policy, () =>
      antiHantuDraft([
        ...detailList<PatternMatch>(byId.get("F9"), "matches"),
        ...scanned(findSentienceClaims),
      ])),
  );
  byId.set(
    "F12",
    govern("F12", policy, () =>
      injectionDraft(
        detailList<PatternMatch>(byId.get("F12"), "matches"),
        scanned(findInjections),
        policy,
      )),
  );
  byId.delete("F7");
  const others = [...byId.values()];
  return inOrder([...others, humility(others, policy)]);
}

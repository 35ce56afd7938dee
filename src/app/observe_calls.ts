/**
 * Composition step: every call made through the registry (MCP, REST, stdio) counted in the
 * metrics and the usage accounts, traced when a tracer is on, and its cost charged to the
 * caller's budget.
 * @module
 */
import type { Logger } from "../lib/mod.ts";
import { utf8ByteLength } from "../lib/mod.ts";
import { currentRequest } from "../identity/mod.ts";
import { type Accounting, addCost, type CallTracer, type Metrics } from "../usage/mod.ts";
import type { CallOutcome, ToolRegistry } from "../calls/mod.ts";

function byteLength(value: unknown): number {
  try {
    return utf8ByteLength(typeof value === "string" ? value : JSON.stringify(value ?? {}));
  } catch {
    return 0;
  }
}

/** Token counts a model-backed tool reports as `data.usage.{input,output}_tokens`. */
function tokensOf(data: unknown): { inputTokens?: number; outputTokens?: number } {
  const usage = (data as { usage?: Record<string, unknown> } | null)?.usage;
  const n = (v: unknown) => typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : undefined;
  const inputTokens = n(usage?.input_tokens);
  const outputTokens = n(usage?.output_tokens);
  return {
    ...(inputTokens !== undefined ? { inputTokens } : {}),
    ...(outputTokens !== undefined ? { outputTokens } : {}),
  };
}

/** The floors a verdict names in its reasons ("F6 …"), in order, once each. */
function floorsFailedOf(outcome: CallOutcome): string[] {
  const reasons = outcome.envelope?._constitutional.reasons ?? [];
  const out = new Set<string>();
  for (const r of reasons) {
    const m = /^(F\d{1,2})\b/.exec(r);
    if (m) out.add(m[1]);
  }
  return [...out];
}

/**
 * Counts every call made through the registry (MCP, REST, stdio) in the
 * metrics and the usage accounts, and charges its cost to the caller's budget.
 */
export function observeCalls(
  usage: {
    metrics: Metrics;
    accounting: Accounting;
    kv: Deno.Kv;
    logger: Logger;
    tracer?: CallTracer;
  },
  registry: ToolRegistry,
): ToolRegistry {
  const upstreamOf = (name: string) => {
    const split = name.indexOf("__");
    return split > 0 ? name.slice(0, split) : undefined;
  };
  const tracer = usage.tracer;
  const traced: ToolRegistry["call"] = tracer
    ? (name, args, ctx) => {
      // Span names are bounded like metric labels: an unregistered name is caller-chosen.
      const known = registry.has(name);
      return tracer.traceCall(known ? name : "unknown", ctx.trace, () =>
        registry.call(name, args, ctx), (outcome) => ({
          verdict: outcome.verdict,
          floorsFailed: floorsFailedOf(outcome),
          principal: ctx.principal,
          isError: outcome.isError,
          ...(outcome.errorKind ? { errorKind: outcome.errorKind } : {}),
          ...(outcome.vault ? { vaultIndex: outcome.vault.index } : {}),
          ...(known && upstreamOf(name) ? { upstream: upstreamOf(name) } : {}),
        }));
    }
    : registry.call;
  return {
    ...registry,
    async call(name, args, ctx) {
      const outcome = await traced(name, args, ctx);
      // Upstream tools count under their own names; only names nobody serves are "unknown".
      const registered = registry.has(name);
      const upstream = registered && registry.get(name) === undefined
        ? upstreamOf(name)
        : undefined;
      usage.metrics.observeCall({
        tool: name,
        registered,
        ...(upstream ? { upstream } : {}),
        principal: ctx.principal,
        verdict: outcome.verdict,
        latencyMs: outcome.latencyMs,
      });
      // Unregistered names are caller-chosen: accounted under one name, like the metrics.
      const tokens = tokensOf(outcome.envelope?.data);
      // A 2026-07-28 round that only asked the client's model is half of one call: its retry pays.
      const billable = (outcome.verdict === "SEAL" || outcome.verdict === "PARTIAL") &&
        outcome.errorKind !== "input_required";
      const cost = usage.accounting.record({
        principal: ctx.principal,
        tool: registered ? name : "unknown",
        ...(registered && upstream ? { upstream } : {}),
        ...(ctx.sessionId ? { session: ctx.sessionId } : {}),
        verdict: outcome.verdict,
        latencyMs: outcome.latencyMs,
        bytesIn: byteLength(args),
        bytesOut: byteLength(outcome.text),
        ...tokens,
        // Only a call the verdict let run is charged.
        billable,
      });
      const spent = billable ? (tokens.inputTokens ?? 0) + (tokens.outputTokens ?? 0) : 0;
      if (cost > 0 || spent > 0) {
        const clientIp = ctx.clientIp ?? currentRequest()?.clientIp;
        await addCost(usage.kv, {
          principal: ctx.principal,
          ...(clientIp !== undefined ? { clientIp } : {}),
          units: cost,
          tokens: spent,
        }).catch((e) => usage.logger.warn("cannot charge a call's cost", { error: e }));
      }
      return outcome;
    },
  };
}

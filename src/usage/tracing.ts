/**
 * OpenTelemetry traces for tool calls, through Deno's built-in OTel support
 * (`OTEL_DENO=true` and the standard `OTEL_*` variables: Deno registers the
 * tracer provider, the W3C propagator and the OTLP exporter itself, so Warden
 * ships no SDK of its own — only `@opentelemetry/api`, the interface Deno
 * implements).
 *
 * One span per tool call, named `tools/call <tool>`, with the verdict, the
 * floors that failed, the vault index and the upstream as attributes. Its
 * parent is the client's W3C trace context: `traceparent`/`tracestate` in the
 * request's `_meta` (SEP-414) when present, else the HTTP request's own span
 * (Deno.serve continues an incoming `traceparent` header). Upstream calls run
 * inside the span, so the gateway puts the same trace into the upstream
 * request's `_meta` and Deno's fetch instrumentation into its headers.
 *
 * Off unless `OTEL_DENO` is `true`: then {@link createCallTracer} returns
 * `undefined` and no span, context or attribute is ever built.
 *
 * @module
 */
import {
  type Context,
  context,
  propagation,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from "@opentelemetry/api";

/** W3C trace context as a client sent it (header values, unchecked). */
export interface TraceCarrier {
  readonly traceparent?: string;
  readonly tracestate?: string;
}

/** What a finished call reports onto its span. */
export interface CallSpanFacts {
  readonly verdict: string;
  readonly floorsFailed: readonly string[];
  readonly vaultIndex?: number;
  readonly upstream?: string;
  readonly principal: string;
  readonly isError: boolean;
  readonly errorKind?: string;
}

/** Runs calls inside spans. */
export interface CallTracer {
  /**
   * Runs `fn` inside a span named after `tool`, parented on `carrier` when it
   * holds a valid `traceparent`, and ends the span with what `facts` reports.
   */
  traceCall<T>(
    tool: string,
    carrier: TraceCarrier | undefined,
    fn: () => Promise<T>,
    facts: (result: T) => CallSpanFacts,
  ): Promise<T>;
}

// A W3C traceparent: version 00, 32 hex trace id, 16 hex parent id, 2 hex flags.
const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

/**
 * The tracer, or `undefined` when OpenTelemetry is off (`OTEL_DENO` not
 * `true`), so the call path pays nothing.
 */
export function createCallTracer(
  env: (name: string) => string | undefined = (n) => Deno.env.get(n),
): CallTracer | undefined {
  if (env("OTEL_DENO")?.toLowerCase() !== "true") return undefined;
  const tracer = trace.getTracer("warden");
  return {
    traceCall(tool, carrier, fn, facts) {
      const parent = parentOf(carrier);
      return tracer.startActiveSpan(
        `tools/call ${tool}`,
        {
          kind: SpanKind.INTERNAL,
          attributes: { "mcp.method.name": "tools/call", "mcp.tool": tool },
        },
        parent,
        async (span: Span) => {
          try {
            const result = await fn();
            const f = facts(result);
            span.setAttributes({
              "warden.verdict": f.verdict,
              "warden.floors_failed": [...f.floorsFailed],
              "warden.principal": f.principal,
              ...(f.vaultIndex !== undefined ? { "warden.vault.index": f.vaultIndex } : {}),
              ...(f.upstream !== undefined ? { "warden.upstream": f.upstream } : {}),
              ...(f.errorKind !== undefined ? { "warden.error_kind": f.errorKind } : {}),
            });
            if (f.isError) span.setStatus({ code: SpanStatusCode.ERROR, message: f.verdict });
            return result;
          } catch (e) {
            span.setStatus({ code: SpanStatusCode.ERROR, message: (e as Error)?.name ?? "error" });
            throw e;
          } finally {
            span.end();
          }
        },
      );
    },
  };
}

/** The parent context: the client's `_meta` trace context if valid, else the active one. */
function parentOf(carrier: TraceCarrier | undefined): Context {
  const active = context.active();
  const tp = carrier?.traceparent;
  if (typeof tp !== "string" || !TRACEPARENT.test(tp)) return active;
  const headers: Record<string, string> = { traceparent: tp };
  const ts = carrier?.tracestate;
  if (typeof ts === "string" && ts.length <= 512) headers.tracestate = ts;
  return propagation.extract(active, headers);
}

/**
 * The active span's trace context as `_meta` fields (`traceparent`,
 * `tracestate`) for an outgoing MCP request, or `{}` when nothing is traced.
 */
export function traceMeta(): Record<string, string> {
  const out: Record<string, string> = {};
  if (!trace.getActiveSpan()) return out;
  propagation.inject(context.active(), out);
  return out;
}

/** The W3C trace context in a request's `_meta` (SEP-414), if any. */
export function traceCarrierOf(
  meta: Record<string, unknown> | undefined,
): TraceCarrier | undefined {
  if (!meta) return undefined;
  const { traceparent, tracestate } = meta;
  if (typeof traceparent !== "string") return undefined;
  return typeof tracestate === "string" ? { traceparent, tracestate } : { traceparent };
}

/**
 * Usage: shared rate limits and budgets (KV), accounting, metrics, traces
 * and the daily summary. (The request context the limits read the client IP
 * from is src/identity/'s.)
 * @module
 */
export {
  addCost,
  ANONYMOUS,
  createKvLimiter,
  isLoopbackIp,
  type KvLimiter,
  type KvLimiterOptions,
  leaseCap,
  type LimiterObserver,
  type LimitKind,
  TOKEN_TTL_MS,
} from "./limiter.ts";
export {
  type CallObservation,
  createMetrics,
  type Metrics,
  type MetricsSources,
} from "./metrics.ts";
export {
  type Accounting,
  costOf,
  createAccounting,
  type UsageRecord,
  type UsageRow,
} from "./accounting.ts";
export {
  type CallSpanFacts,
  type CallTracer,
  createCallTracer,
  type TraceCarrier,
  traceCarrierOf,
  traceMeta,
} from "./tracing.ts";
export {
  type AppendEntry,
  createDailySummary,
  type DailySummary,
  MAX_SUMMARY_ROWS,
} from "./summary.ts";
export { createSessionGauges, type LiveSessionTotals, type SessionGauges } from "./gauges.ts";

/**
 * Prometheus metrics, through `prom-client` (it runs unchanged under Deno;
 * its text output is what `promtool check metrics` reads). One registry per
 * app, never prom-client's global one, so that tests and several apps in one
 * process stay apart.
 *
 * Label cardinality is bounded: tool names are those registered (anything
 * else is `unknown`), and principals get their own label value only for the
 * first `maxPrincipalLabels` seen; the rest share `other`.
 *
 * @module
 */
import client from "prom-client";
import type { LimiterObserver, LimitKind } from "./limiter.ts";

/** One finished tool call, as the metrics and the usage accounting see it. */
export interface CallObservation {
  readonly tool: string;
  /** False for a name no tool is registered under. */
  readonly registered: boolean;
  readonly upstream?: string;
  readonly principal: string;
  readonly verdict: string;
  readonly latencyMs: number;
}

/** Values read when `/metrics` is scraped. */
export interface MetricsSources {
  vaultSize?(): Promise<number>;
  /** Milliseconds since the last signed checkpoint (undefined when none yet). */
  checkpointAgeMs?(): number | undefined;
  holdsOpen?(): Promise<number>;
  /** Live sessions by transport. */
  sessions?(): Record<string, number>;
  /** This process's vault commits: atomics committed, failed on a moved head, entries. */
  vaultCommits?(): { commits: number; conflicts: number; entries: number };
  /** This process's `--workers` index (0: the first process). */
  worker?: number;
}

/** The app's metrics. */
export interface Metrics {
  observeCall(call: CallObservation): void;
  /** Hooks for the limiter (refusals, KV commit latency). */
  readonly limiter: LimiterObserver;
  /** Sources read at scrape time; set once the app is wired. */
  setSources(sources: MetricsSources): void;
  /** The Prometheus text exposition. */
  render(): Promise<string>;
  readonly contentType: string;
}

const LATENCY_BUCKETS = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
];
const KV_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5];

/** The principal class label: the name for the first few principals seen, then `other`. */
function createPrincipalLabels(max: number): (principal: string) => string {
  const named = new Set<string>();
  return (principal) => {
    if (named.has(principal)) return principal;
    if (named.size < max) {
      named.add(principal);
      return principal;
    }
    return "other";
  };
}

/** The vault's group commit of this process, and which `--workers` process this is. */
function registerProcessMetrics(registry: client.Registry, current: () => MetricsSources): void {
  new client.Counter({
    name: "warden_vault_commits_total",
    help:
      "Vault atomics this process attempted, by outcome: ok, or conflict (the head had moved: " +
      "another instance or --workers process committed first, or SQLite was busy).",
    labelNames: ["outcome"] as const,
    registers: [registry],
    collect() {
      const c = current().vaultCommits?.();
      if (!c) return;
      this.reset();
      this.inc({ outcome: "ok" }, c.commits);
      this.inc({ outcome: "conflict" }, c.conflicts);
    },
  });
  new client.Counter({
    name: "warden_vault_committed_entries_total",
    help: "Vault entries this process committed (entries per commit: this over the ok commits).",
    registers: [registry],
    collect() {
      const c = current().vaultCommits?.();
      if (!c) return;
      this.reset();
      this.inc(c.entries);
    },
  });
  new client.Gauge({
    name: "warden_worker_info",
    help: "1, labelled with this process's --workers index (0: the first process).",
    labelNames: ["worker"] as const,
    registers: [registry],
    collect() {
      if (current().worker !== undefined) this.set({ worker: String(current().worker) }, 1);
    },
  });
}

/**
 * Creates the metrics registry.
 *
 * @example
 * ```ts
 * const metrics = createMetrics();
 * metrics.observeCall({ tool: "calculate", registered: true, principal: "anonymous", verdict: "SEAL", latencyMs: 2 });
 * (await metrics.render()).includes('warden_tool_calls_total{tool="calculate"'); // true
 * ```
 */
export function createMetrics(options: { maxPrincipalLabels?: number } = {}): Metrics {
  const registry = new client.Registry();
  const principalLabel = createPrincipalLabels(options.maxPrincipalLabels ?? 20);
  let sources: MetricsSources = {};

  const calls = new client.Counter({
    name: "warden_tool_calls_total",
    help: "Tool calls by tool, upstream, verdict and principal class.",
    labelNames: ["tool", "upstream", "verdict", "principal_class"] as const,
    registers: [registry],
  });
  const latency = new client.Histogram({
    name: "warden_tool_call_duration_seconds",
    help: "Time from receiving a tool call to its sealed response.",
    labelNames: ["tool", "verdict"] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const refusals = new client.Counter({
    name: "warden_rate_limit_refusals_total",
    help: "Calls refused by a rate limit, concurrency limit or budget, by the limit that refused.",
    labelNames: ["limit"] as const,
    registers: [registry],
  });
  const kvCommit = new client.Histogram({
    name: "warden_kv_commit_duration_seconds",
    help: "Duration of the KV commits the rate limiter makes, by outcome (ok or conflict).",
    labelNames: ["outcome"] as const,
    buckets: KV_BUCKETS,
    registers: [registry],
  });
  new client.Gauge({
    name: "warden_vault_entries",
    help: "Entries in the vault (the log's tree size).",
    registers: [registry],
    async collect() {
      if (sources.vaultSize) this.set(await sources.vaultSize());
    },
  });
  new client.Gauge({
    name: "warden_vault_checkpoint_age_seconds",
    help: "Seconds since this instance last signed a checkpoint.",
    registers: [registry],
    collect() {
      const age = sources.checkpointAgeMs?.();
      if (age !== undefined) this.set(age / 1000);
    },
  });
  new client.Gauge({
    name: "warden_holds_open",
    help: "888_HOLD records waiting for an operator.",
    registers: [registry],
    async collect() {
      if (sources.holdsOpen) this.set(await sources.holdsOpen());
    },
  });
  new client.Gauge({
    name: "warden_sessions",
    help: "Live MCP sessions on this instance, by transport.",
    labelNames: ["transport"] as const,
    registers: [registry],
    collect() {
      for (const [transport, n] of Object.entries(sources.sessions?.() ?? {})) {
        this.set({ transport }, n);
      }
    },
  });

  registerProcessMetrics(registry, () => sources);

  return {
    observeCall(call) {
      const tool = call.registered ? call.tool : "unknown";
      const upstream = call.registered ? call.upstream ?? "" : "";
      calls.inc({
        tool,
        upstream,
        verdict: call.verdict,
        principal_class: principalLabel(call.principal),
      });
      latency.observe({ tool, verdict: call.verdict }, call.latencyMs / 1000);
    },
    limiter: {
      refused(kind: LimitKind) {
        refusals.inc({ limit: kind });
      },
      commit(ms, ok) {
        kvCommit.observe({ outcome: ok ? "ok" : "conflict" }, ms / 1000);
      },
    },
    setSources(next) {
      sources = next;
    },
    render: () => registry.metrics(),
    contentType: registry.contentType,
  };
}

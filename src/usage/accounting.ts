/**
 * Usage and cost accounting: every call adds to an hourly and a daily row per
 * (principal, tool, upstream). Rows are aggregated in memory and flushed to
 * KV every `flushMs`; each instance writes only its own rows (the instance id
 * is the last key part), so instances never contend, and a query sums them.
 * Growth is bounded: hourly rows expire after 8 days, daily rows after 400.
 *
 * Queries have hour resolution: a range takes every hour row it overlaps (and
 * the day rows of whole days inside it).
 *
 * Calls made in a session (MCP sessions have an id; REST calls do not) are
 * also added to that session's rows, one per (principal, tool, upstream),
 * which expire with the session: each write sets them to expire one session
 * idle-timeout after the session's last call. They are capped: at most
 * `MAX_SESSION_ROWS` tools per session (the rest count as tool `other`) and
 * `MAX_SESSIONS` sessions kept in memory per instance (the least recently used
 * is written and forgotten; a later call starts a new row beside it).
 *
 * Latency is kept as a histogram with buckets 10 % apart, so a merged p50 is
 * exact to within 10 % (reported as the upper edge of the median's bucket).
 *
 * @module
 */
import type { Policy } from "../governance/mod.ts";
import {
  usageRollupKey,
  usageRollupPrefix,
  usageSessionKey,
  usageSessionPrefix,
  withKvRetry,
} from "../store/mod.ts";

/** One finished call as accounting sees it. */
export interface UsageRecord {
  readonly principal: string;
  readonly tool: string;
  readonly upstream?: string;
  /** The MCP session the call was made in, if any. */
  readonly session?: string;
  readonly verdict: string;
  readonly latencyMs: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly inputTokens?: number;
  readonly outputTokens?: number;
  /** False for a call that was refused or held before running: it costs nothing. */
  readonly billable?: boolean;
  /** Epoch ms; now when absent. */
  readonly atMs?: number;
}

/** One row of `GET /api/usage`. */
export interface UsageRow {
  /** Only in session rows (`querySessions`). */
  session?: string;
  principal: string | null;
  tool: string | null;
  upstream: string | null;
  calls: number;
  by_verdict: Record<string, number>;
  latency_ms_p50: number;
  bytes_in: number;
  bytes_out: number;
  tokens: number;
  cost: number;
}

interface Aggregate {
  calls: number;
  by_verdict: Record<string, number>;
  /** Bucket index → count. */
  latency: Record<string, number>;
  bytes_in: number;
  bytes_out: number;
  tokens: number;
  cost: number;
}

/** The accounting service. */
export interface Accounting {
  /** Adds a call; returns its cost in units (from the policy's price table). */
  record(call: UsageRecord): number;
  /** Writes pending rows to KV. */
  flush(): Promise<void>;
  query(input: {
    principal?: string;
    fromMs: number;
    toMs: number;
    groupBy: "tool" | "principal" | "upstream";
  }): Promise<UsageRow[]>;
  /**
   * Session rows: one session's by tool (`session` given), or one row per
   * session (at most `limit`, most calls first), optionally one principal's.
   */
  querySessions(input: { session?: string; principal?: string; limit?: number }): Promise<
    UsageRow[]
  >;
  close(): Promise<void>;
}

const HOUR = 3_600_000;
const DAY = 86_400_000;
const RATIO = 1.1;
/** Distinct (principal, tool, upstream) rows one session keeps per instance. */
export const MAX_SESSION_ROWS = 32;
/** Sessions whose rows one instance keeps in memory. */
export const MAX_SESSIONS = 4096;
/** Session rows one query reads at most. */
const MAX_SESSION_SCAN = 20_000;
/** Latency bucket 0 holds ≤ 0.01 ms; bucket i holds (0.01·1.1^(i−1), 0.01·1.1^i]. */
const BASE_MS = 0.01;

function bucketOf(ms: number): number {
  if (!(ms > BASE_MS)) return 0;
  return Math.ceil(Math.log(ms / BASE_MS) / Math.log(RATIO) - 1e-9);
}

function bucketUpper(i: number): number {
  return BASE_MS * RATIO ** i;
}

/** Cost units of a call: `prices[tool]`, else `prices.default`, else 0. */
export function costOf(
  policy: Policy,
  call: { tool: string; inputTokens?: number; outputTokens?: number },
): number {
  const price = Object.hasOwn(policy.prices, call.tool)
    ? policy.prices[call.tool]
    : Object.hasOwn(policy.prices, "default")
    ? policy.prices.default
    : undefined;
  if (!price) return 0;
  return Math.round(
    price.per_call +
      (call.inputTokens ?? 0) * price.per_1k_input_tokens / 1000 +
      (call.outputTokens ?? 0) * price.per_1k_output_tokens / 1000,
  );
}

function empty(): Aggregate {
  return { calls: 0, by_verdict: {}, latency: {}, bytes_in: 0, bytes_out: 0, tokens: 0, cost: 0 };
}

function merge(into: Aggregate, from: Aggregate): void {
  into.calls += from.calls;
  into.bytes_in += from.bytes_in;
  into.bytes_out += from.bytes_out;
  into.tokens += from.tokens;
  into.cost += from.cost;
  for (const [k, v] of Object.entries(from.by_verdict)) {
    into.by_verdict[k] = (into.by_verdict[k] ?? 0) + v;
  }
  for (const [k, v] of Object.entries(from.latency)) into.latency[k] = (into.latency[k] ?? 0) + v;
}

function p50(latency: Record<string, number>): number {
  const buckets = Object.entries(latency).map(([k, v]) => [Number(k), v] as const)
    .sort((a, b) => a[0] - b[0]);
  const total = buckets.reduce((n, [, v]) => n + v, 0);
  if (total === 0) return 0;
  let seen = 0;
  for (const [i, v] of buckets) {
    seen += v;
    if (seen * 2 >= total) return Math.round(bucketUpper(i) * 1000) / 1000;
  }
  return 0;
}

/** A row's dimensions: what it is grouped by (`null`: summed over). */
type Dims = Pick<UsageRow, "session" | "principal" | "tool" | "upstream">;

/** Sums aggregates into one per distinct dimensions, and reads them out as rows, most calls first. */
function createGroups() {
  const groups = new Map<string, { dims: Dims; agg: Aggregate }>();
  return {
    add(dims: Dims, agg: Aggregate): void {
      const id = JSON.stringify(dims);
      let g = groups.get(id);
      if (!g) {
        g = { dims, agg: empty() };
        groups.set(id, g);
      }
      merge(g.agg, agg);
    },
    rows(): UsageRow[] {
      return [...groups.values()].map(({ dims, agg }) => ({
        ...dims,
        calls: agg.calls,
        by_verdict: agg.by_verdict,
        latency_ms_p50: p50(agg.latency),
        bytes_in: agg.bytes_in,
        bytes_out: agg.bytes_out,
        tokens: agg.tokens,
        cost: agg.cost,
      })).sort((a, b) => b.calls - a.calls);
    },
  };
}

/**
 * Creates the accounting service over `kv`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parsePolicy } from "../governance/mod.ts";
 * import { createAccounting } from "./accounting.ts";
 * const kv = await Deno.openKv(":memory:");
 * const accounting = createAccounting(kv, { policy: parsePolicy({}) });
 * accounting.record({ principal: "alice", tool: "calculate", verdict: "SEAL", latencyMs: 3, bytesIn: 20, bytesOut: 40 });
 * await accounting.flush();
 * const rows = await accounting.query({ fromMs: 0, toMs: Date.now() + 60_000, groupBy: "tool" });
 * assert.equal(rows.length, 1);
 * await accounting.close();
 * kv.close();
 * ```
 */
// Kept whole: its closures share the session rows, the incarnation, the dirty set and the
// flush/retire flags of one accounting instance.
export function createAccounting(
  kv: Deno.Kv,
  options: {
    policy: Policy;
    flushMs?: number;
    instanceId?: string;
    now?: () => number;
    /** How long a session lives after its last request: its rows expire as long after their last call. */
    sessionTtlMs?: number;
  },
): Accounting {
  const sessionTtlMs = options.sessionTtlMs ?? 30 * 60_000;
  /** Session → its rows here (Map order: least recently used first). */
  const sessions = new Map<string, Map<string, string>>();
  let incarnation = 0;
  const now = options.now ?? Date.now;
  const instance = options.instanceId ?? crypto.randomUUID();
  /** Rows this instance owns: full totals, rewritten on each flush. */
  const rows = new Map<string, { key: Deno.KvKey; agg: Aggregate; expireIn: number }>();
  const dirty = new Set<string>();
  let flushing: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    flushing = flushing.then(flushNow).catch(() => {});
  }, options.flushMs ?? 5000);
  Deno.unrefTimer(timer);

  function addToSession(call: UsageRecord, cost: number): void {
    const session = call.session!;
    let rowIds = sessions.get(session);
    if (rowIds) {
      sessions.delete(session); // re-inserted below: most recently used
    } else {
      if (sessions.size >= MAX_SESSIONS) forgetSession(sessions.keys().next().value!);
      rowIds = new Map();
    }
    sessions.set(session, rowIds);
    const upstream = call.upstream ?? "";
    let dims = JSON.stringify([call.principal, call.tool, upstream]);
    let tool = call.tool;
    if (!rowIds.has(dims) && rowIds.size >= MAX_SESSION_ROWS) {
      tool = "other";
      dims = JSON.stringify([call.principal, tool, ""]);
    }
    let id = rowIds.get(dims);
    if (id === undefined) {
      // A fresh suffix per row in memory: a row forgotten and begun again never overwrites the old.
      const key = usageSessionKey(
        session,
        call.principal,
        tool,
        tool === "other" ? "" : upstream,
        `${instance}.${++incarnation}`,
      );
      id = JSON.stringify(key);
      rowIds.set(dims, id);
      rows.set(id, { key, agg: empty(), expireIn: sessionTtlMs });
    }
    const row = rows.get(id)!;
    row.expireIn = sessionTtlMs;
    addTo(row.agg, call, cost);
    dirty.add(id);
  }

  /** Drops a session's rows from memory (its dirty rows are written on the next flush first). */
  function forgetSession(session: string): void {
    const rowIds = sessions.get(session);
    sessions.delete(session);
    for (const id of rowIds?.values() ?? []) {
      if (dirty.has(id)) retiring.add(id);
      else rows.delete(id);
    }
  }
  const retiring = new Set<string>();

  function addTo(a: Aggregate, call: UsageRecord, cost: number): void {
    a.calls++;
    a.by_verdict[call.verdict] = (a.by_verdict[call.verdict] ?? 0) + 1;
    const b = bucketOf(call.latencyMs);
    a.latency[b] = (a.latency[b] ?? 0) + 1;
    a.bytes_in += call.bytesIn;
    a.bytes_out += call.bytesOut;
    a.tokens += (call.inputTokens ?? 0) + (call.outputTokens ?? 0);
    a.cost += cost;
  }

  function add(
    period: "h" | "d",
    start: number,
    call: UsageRecord,
    cost: number,
    atMs: number,
  ): void {
    const upstream = call.upstream ?? "";
    const key = usageRollupKey(period, start, call.principal, call.tool, upstream, instance);
    const id = JSON.stringify(key);
    let row = rows.get(id);
    if (!row) {
      const keep = period === "h" ? 8 * DAY : 400 * DAY;
      row = { key, agg: empty(), expireIn: start + keep - atMs };
      rows.set(id, row);
    }
    addTo(row.agg, call, cost);
    dirty.add(id);
  }

  async function flushNow(): Promise<void> {
    if (dirty.size === 0) return;
    const ids = [...dirty];
    dirty.clear();
    // An atomic operation takes a bounded number of mutations.
    for (let i = 0; i < ids.length; i += 500) {
      const op = kv.atomic();
      for (const id of ids.slice(i, i + 500)) {
        const row = rows.get(id)!;
        op.set(row.key, row.agg, { expireIn: Math.max(1000, row.expireIn) });
      }
      await withKvRetry(() => op.commit());
    }
    // Rows of periods that ended long ago are final in KV; forget them here.
    const cutoff = now() - 2 * DAY;
    for (const [id, row] of rows) {
      if (row.key[0] === "usage_rollup" && (row.key[2] as number) < cutoff && !dirty.has(id)) {
        rows.delete(id);
      }
    }
    for (const id of retiring) {
      if (!dirty.has(id)) {
        rows.delete(id);
        retiring.delete(id);
      }
    }
  }

  return {
    record(call) {
      const atMs = call.atMs ?? now();
      const cost = call.billable === false ? 0 : costOf(options.policy, call);
      add("h", Math.floor(atMs / HOUR) * HOUR, call, cost, atMs);
      add("d", Math.floor(atMs / DAY) * DAY, call, cost, atMs);
      if (call.session !== undefined && call.session !== "") addToSession(call, cost);
      return cost;
    },

    flush() {
      flushing = flushing.then(flushNow);
      return flushing;
    },

    async query({ principal, fromMs, toMs, groupBy }) {
      // Whole days in the range come from daily rows, the ragged ends from hourly rows.
      const firstDay = Math.ceil(fromMs / DAY) * DAY;
      const lastDay = Math.floor(toMs / DAY) * DAY;
      const ranges: { period: "h" | "d"; start: number; end: number }[] = [];
      if (firstDay < lastDay) {
        ranges.push({ period: "d", start: firstDay, end: lastDay });
        if (fromMs < firstDay) ranges.push({ period: "h", start: fromMs, end: firstDay });
        if (lastDay < toMs) ranges.push({ period: "h", start: lastDay, end: toMs });
      } else {
        ranges.push({ period: "h", start: fromMs, end: toMs });
      }
      const groups = createGroups();
      for (const r of ranges) {
        // Hourly rows are counted when their hour overlaps the range (hour resolution).
        const start = r.period === "h" ? Math.floor(r.start / HOUR) * HOUR : r.start;
        if (start >= r.end) continue;
        const iter = kv.list<Aggregate>({
          start: [...usageRollupPrefix(r.period), start],
          end: [...usageRollupPrefix(r.period), r.end],
        });
        for await (const e of iter) {
          const [, , , p, tool, upstream] = e.key as [
            string,
            string,
            number,
            string,
            string,
            string,
          ];
          if (principal !== undefined && p !== principal) continue;
          const dims = groupBy === "tool"
            ? { principal: principal ?? null, tool, upstream: upstream || null }
            : groupBy === "principal"
            ? { principal: p, tool: null, upstream: null }
            : { principal: principal ?? null, tool: null, upstream: upstream || null };
          groups.add(dims, e.value);
        }
      }
      return groups.rows();
    },

    async querySessions({ session, principal, limit = 100 }) {
      const groups = createGroups();
      const iter = kv.list<Aggregate>({ prefix: usageSessionPrefix(session) }, {
        limit: MAX_SESSION_SCAN,
      });
      for await (const e of iter) {
        const [, s, p, tool, upstream] = e.key as [string, string, string, string, string];
        if (principal !== undefined && p !== principal) continue;
        const dims = session !== undefined
          ? { session: s, principal: p, tool, upstream: upstream || null }
          : { session: s, principal: p, tool: null, upstream: null };
        groups.add(dims, e.value);
      }
      return groups.rows().slice(0, Math.max(1, Math.min(limit, 1000)));
    },

    async close() {
      clearInterval(timer);
      await this.flush();
    },
  };
}

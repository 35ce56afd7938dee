/**
 * Rate limits, concurrency limits and budgets counted in KV, so that every
 * instance and worker sharing the KV shares the limits.
 *
 * Each call is checked and counted in one atomic KV operation: read every
 * counter that applies (one `getMany`), decide, then commit the new values
 * with a versionstamp check on each; a conflicting commit by another
 * instance makes this one re-read and decide again. So no two instances can
 * both admit the last call a limit allows: the limits are exact, not
 * estimates.
 *
 * - Per-minute limits are sliding logs: the timestamps of the calls admitted
 *   in the last 60 s. A limit of N admits at most N calls in any 60 s window,
 *   and `Retry-After` is when the oldest of them leaves the window.
 * - Concurrency is a count of calls in flight with a lease: an instance that
 *   dies mid-call leaves a count that lapses `leaseMs` after the subject's
 *   last activity.
 * - Budgets count calls per UTC day and month (exact), and cost units per
 *   day and month: the cost of a call is known only once it ran, so a cost
 *   budget admits calls while the spend so far is below it, and the call that
 *   crosses it completes (the overshoot is at most one call's cost per
 *   instance in flight).
 *
 * Unauthenticated callers (principal `anonymous`) are counted per client IP,
 * not as one shared principal.
 *
 * @module
 */
import type {
  Admission,
  Policy,
  RateCheck,
  RateFacts,
  RateLimiter,
  RateSubject,
} from "../governance/mod.ts";
import {
  usageBudgetKey,
  usageCostKey,
  usageInFlightKey,
  usageRateKey,
  withKvRetry,
} from "../store/mod.ts";

/** The principal of callers that did not authenticate. */
export const ANONYMOUS = "anonymous";

const MINUTE = 60_000;
const DAY = 86_400_000;

/** What kind of limit refused a call (a metric label). */
export type LimitKind =
  | "principal"
  | "ip"
  | "tool"
  | "upstream"
  | "concurrency"
  | "calls_per_day"
  | "calls_per_month"
  | "cost_per_day"
  | "cost_per_month";

/** Hooks for metrics; each is optional and must not throw. */
export interface LimiterObserver {
  refused?(kind: LimitKind): void;
  /** One KV commit's duration in ms (every commit the limiter makes). */
  commit?(ms: number, ok: boolean): void;
}

/** Options of `createKvLimiter`. */
export interface KvLimiterOptions {
  readonly policy: Policy;
  /** Injectable clock (ms since the epoch). */
  readonly now?: () => number;
  /** How long an in-flight count outlives its subject's last activity. */
  readonly leaseMs?: number;
  /** Which client addresses count as loopback (for `rate_limits.exempt_loopback`). */
  readonly isLoopback?: (ip: string) => boolean;
  readonly observer?: LimiterObserver;
}

/** True for 127.0.0.0/8, ::1 and IPv4-mapped loopback. */
export function isLoopbackIp(ip: string): boolean {
  return ip === "::1" || /^(?:::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/i.test(ip);
}

type Counter =
  | { kind: "log"; key: Deno.KvKey; limit: number; what: string; limitKind: LimitKind }
  | { kind: "inflight"; key: Deno.KvKey; limit: number; what: string; limitKind: LimitKind }
  | {
    kind: "calls";
    key: Deno.KvKey;
    limit: number;
    what: string;
    limitKind: LimitKind;
    endsMs: number;
  }
  | {
    kind: "cost";
    key: Deno.KvKey;
    limit: number;
    what: string;
    limitKind: LimitKind;
    endsMs: number;
  };

/** A sliding log: the first timestamp and the others as 32-bit offsets from it. */
interface LogValue {
  b: number;
  d: Uint8Array;
}

interface InFlightValue {
  n: number;
  exp: number;
}

function decodeLog(value: unknown, since: number): number[] {
  const v = value as LogValue | null;
  if (!v || typeof v.b !== "number" || !(v.d instanceof Uint8Array)) return [];
  const view = new DataView(v.d.buffer, v.d.byteOffset, v.d.byteLength);
  const out: number[] = [];
  for (let i = 0; i + 4 <= v.d.byteLength; i += 4) {
    const t = v.b + view.getUint32(i, true);
    if (t > since) out.push(t);
  }
  return out;
}

function encodeLog(times: readonly number[]): LogValue {
  const b = times[0] ?? 0;
  const d = new Uint8Array(times.length * 4);
  const view = new DataView(d.buffer);
  times.forEach((t, i) => view.setUint32(i * 4, t - b, true));
  return { b, d };
}

function utcDay(t: number): string {
  return new Date(t).toISOString().slice(0, 10);
}

function monthEnd(t: number): number {
  const d = new Date(t);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

/**
 * Creates the shared limiter over `kv`.
 *
 * @example
 * ```ts
 * const kv = await Deno.openKv(":memory:");
 * const limiter = createKvLimiter(kv, { policy: parsePolicy({ rate_limits: { per_principal_per_minute: 2 } }) });
 * const a = await limiter.acquire({ principal: "alice", tool: "calculate" });
 * a.admitted; // true
 * await a.release();
 * ```
 */
export function createKvLimiter(kv: Deno.Kv, options: KvLimiterOptions): RateLimiter {
  const { policy } = options;
  const now = options.now ?? Date.now;
  const leaseMs = options.leaseMs ?? 10 * MINUTE;
  const isLoopback = options.isLoopback ?? isLoopbackIp;
  const observer = options.observer ?? {};
  const limits = policy.rate_limits;
  const local = { start: 0, current: 0, previous: 0 };

  function countLocal(t: number) {
    const bucket = Math.floor(t / MINUTE) * MINUTE;
    if (bucket !== local.start) {
      local.previous = bucket - local.start === MINUTE ? local.current : 0;
      local.current = 0;
      local.start = bucket;
    }
  }

  /** Every counter that applies to `subject` at time `t`. */
  function plan(subject: RateSubject, t: number): Counter[] {
    const { principal, tool, upstream, clientIp } = subject;
    const perIp = principal === ANONYMOUS && clientIp !== undefined;
    const who = perIp ? `ip:${clientIp}` : `p:${principal}`;
    const label = perIp ? `client ${clientIp}` : `principal ${principal}`;
    const override = Object.hasOwn(limits.principals, principal)
      ? limits.principals[principal]
      : undefined;
    const counters: Counter[] = [];
    // An unauthenticated caller on this machine (exempt_loopback) is not throttled at all: neither
    // its per-IP rate nor its calls in flight are counted (budgets and tool limits still apply).
    const exemptLocal = perIp && limits.exempt_loopback && isLoopback(clientIp!);
    const perMinute = perIp
      ? (exemptLocal ? 0 : override?.per_minute ?? limits.per_ip_per_minute)
      : override?.per_minute ?? limits.per_principal_per_minute;
    if (perMinute > 0) {
      counters.push({
        kind: "log",
        key: usageRateKey(perIp ? "ip" : "p", perIp ? clientIp! : principal),
        limit: perMinute,
        what: `${label} made %n calls in the last minute`,
        limitKind: perIp ? "ip" : "principal",
      });
    }
    const toolRule = Object.hasOwn(limits.tools, tool) ? limits.tools[tool] : undefined;
    const perTool = toolRule?.per_minute ?? limits.per_tool_per_minute;
    if (perTool > 0) {
      counters.push({
        kind: "log",
        key: usageRateKey("t", tool),
        limit: perTool,
        what: `tool ${tool} was called %n times in the last minute`,
        limitKind: "tool",
      });
    }
    if (upstream !== undefined) {
      const rule = Object.hasOwn(limits.upstreams, upstream)
        ? limits.upstreams[upstream]
        : undefined;
      const perUpstream = rule?.per_minute ?? limits.per_upstream_per_minute;
      if (perUpstream > 0) {
        counters.push({
          kind: "log",
          key: usageRateKey("u", upstream),
          limit: perUpstream,
          what: `upstream ${upstream} was called %n times in the last minute`,
          limitKind: "upstream",
        });
      }
    }
    const concurrent = exemptLocal
      ? 0
      : override?.max_concurrent ?? limits.max_concurrent_per_principal;
    if (concurrent > 0) {
      counters.push({
        kind: "inflight",
        key: usageInFlightKey(who),
        limit: concurrent,
        what: `${label} has %n calls in flight`,
        limitKind: "concurrency",
      });
    }
    const budgets = policy.budgets;
    const day = utcDay(t);
    const month = day.slice(0, 7);
    const dayEnds = Math.floor(t / DAY) * DAY + DAY;
    const monthEnds = monthEnd(t);
    const callsPerDay = override?.calls_per_day ?? budgets.calls_per_day;
    if (callsPerDay > 0) {
      counters.push({
        kind: "calls",
        key: usageBudgetKey(who, `d${day}`),
        limit: callsPerDay,
        what: `${label} made %n calls today (UTC)`,
        limitKind: "calls_per_day",
        endsMs: dayEnds,
      });
    }
    const callsPerMonth = override?.calls_per_month ?? budgets.calls_per_month;
    if (callsPerMonth > 0) {
      counters.push({
        kind: "calls",
        key: usageBudgetKey(who, `m${month}`),
        limit: callsPerMonth,
        what: `${label} made %n calls this month (UTC)`,
        limitKind: "calls_per_month",
        endsMs: monthEnds,
      });
    }
    const costPerDay = override?.cost_per_day ?? budgets.cost_per_day;
    if (costPerDay > 0) {
      counters.push({
        kind: "cost",
        key: usageCostKey(who, `d${day}`),
        limit: costPerDay,
        what: `${label} spent %n cost units today (UTC)`,
        limitKind: "cost_per_day",
        endsMs: dayEnds,
      });
    }
    const costPerMonth = override?.cost_per_month ?? budgets.cost_per_month;
    if (costPerMonth > 0) {
      counters.push({
        kind: "cost",
        key: usageCostKey(who, `m${month}`),
        limit: costPerMonth,
        what: `${label} spent %n cost units this month (UTC)`,
        limitKind: "cost_per_month",
        endsMs: monthEnds,
      });
    }
    return counters;
  }

  /** The counters' current values: each log's live times, each count. */
  function stateOf(counters: Counter[], entries: Deno.KvEntryMaybe<unknown>[], t: number) {
    const logs = counters.map((c, i) =>
      c.kind === "log" ? decodeLog(entries[i].value, t - MINUTE) : []
    );
    const nums = counters.map((c, i) => {
      const value = entries[i].value;
      if (c.kind === "inflight") {
        const v = value as InFlightValue | null;
        return v && v.exp > t ? v.n : 0;
      }
      if (c.kind === "calls") return typeof value === "number" ? value : 0;
      if (c.kind === "cost") return value instanceof Deno.KvU64 ? Number(value.value) : 0;
      return 0;
    });
    return { logs, nums };
  }

  /** Judges one call against the counters' state: the facts F5 reads, and what refuses it. */
  function judge(
    counters: Counter[],
    state: { logs: number[][]; nums: number[] },
    t: number,
  ): { facts: RateFacts; refused: LimitKind[] } {
    const checks: RateCheck[] = [];
    const refused: LimitKind[] = [];
    let retryMs = 0;
    counters.forEach((c, i) => {
      const count = c.kind === "log" ? state.logs[i].length : state.nums[i];
      let waitMs = 1000;
      if (c.kind === "log") {
        // The (count − limit + 1)th oldest call must leave the window first.
        if (count >= c.limit) waitMs = state.logs[i][count - c.limit] + MINUTE - t;
      } else if (c.kind === "calls" || c.kind === "cost") {
        waitMs = c.endsMs - t;
      }
      checks.push({ count, limit: c.limit, what: c.what.replace("%n", String(count)) });
      if (count >= c.limit) {
        refused.push(c.limitKind);
        retryMs = Math.max(retryMs, waitMs);
      }
    });
    return {
      facts: {
        principalCallsLastMinute: 0,
        toolCallsLastMinute: 0,
        principalInFlight: 0,
        checks,
        retryAfterS: Math.max(1, Math.ceil(retryMs / 1000)),
      },
      refused,
    };
  }

  async function commit(op: Deno.AtomicOperation): Promise<boolean> {
    const started = performance.now();
    const res = await withKvRetry(() => op.commit());
    observer.commit?.(performance.now() - started, res.ok);
    return res.ok;
  }

  /**
   * Releases are coalesced per key: while one decrement is committing, the
   * releases that arrive meanwhile are summed into the next one, so N calls
   * ending together cost about one commit instead of N conflicting ones.
   */
  const releases = new Map<string, { key: Deno.KvKey; n: number; done: (() => void)[] }>();
  async function flushReleases(id: string): Promise<void> {
    const pending = releases.get(id)!;
    try {
      while (pending.n > 0) {
        const m = pending.n;
        const done = pending.done.splice(0);
        pending.n = 0;
        for (let attempt = 0; attempt < 100; attempt++) {
          const entry = await withKvRetry(() => kv.get<InFlightValue>(pending.key));
          const t = now();
          const v = entry.value;
          const n = v && v.exp > t ? v.n - m : 0;
          const op = kv.atomic().check(entry);
          if (n <= 0) op.delete(pending.key);
          else op.set(pending.key, { n, exp: t + leaseMs }, { expireIn: leaseMs });
          if (await commit(op)) break;
        }
        for (const d of done) d();
      }
    } finally {
      releases.delete(id);
    }
  }
  function releaseSlot(key: Deno.KvKey): Promise<void> {
    const id = JSON.stringify(key);
    let pending = releases.get(id);
    const started = pending === undefined;
    if (!pending) releases.set(id, pending = { key, n: 0, done: [] });
    pending.n++;
    const { promise, resolve } = Promise.withResolvers<void>();
    pending.done.push(resolve);
    if (started) flushReleases(id).catch(() => {}).finally(() => resolve());
    return promise;
  }

  const idle: Admission = {
    facts: {
      principalCallsLastMinute: 0,
      toolCallsLastMinute: 0,
      principalInFlight: 0,
      checks: [],
    },
    admitted: true,
    release: () => Promise.resolve(),
    [Symbol.dispose]() {},
  };

  function admission(counters: Counter[], facts: RateFacts): Admission {
    const slot = counters.find((c) => c.kind === "inflight");
    if (!slot) return { ...idle, facts };
    let released: Promise<void> | undefined;
    const release = () => released ??= releaseSlot(slot.key);
    return {
      facts,
      admitted: true,
      release,
      [Symbol.dispose]() {
        release().catch(() => {});
      },
    };
  }

  interface Waiter {
    readonly subject: RateSubject;
    resolve(a: Admission): void;
    reject(e: unknown): void;
  }
  /**
   * Calls of one process with the same counters (same principal or IP, tool,
   * upstream) are decided in batches: one read, the calls judged in arrival
   * order against the running counts, one atomic commit checked against
   * every counter's versionstamp. The limits stay exact across instances (a
   * conflicting commit re-reads and decides the whole batch again), and 32
   * concurrent calls of one principal cost a few commits instead of 32 that
   * conflict with each other.
   */
  const queues = new Map<string, { waiting: Waiter[] }>();

  async function decideBatch(batch: Waiter[]): Promise<void> {
    for (let attempt = 0;; attempt++) {
      const t = now();
      const counters = plan(batch[0].subject, t);
      const entries = await withKvRetry(() => kv.getMany(counters.map((c) => c.key)));
      const state = stateOf(counters, entries, t);
      const { logs, nums } = state;
      const outcomes: { facts: RateFacts; refused: LimitKind[] }[] = [];
      let admitted = 0;
      for (const _ of batch) {
        const outcome = judge(counters, state, t);
        outcomes.push(outcome);
        if (outcome.refused.length > 0) continue; // a refused call is not counted
        admitted++;
        counters.forEach((c, i) => {
          if (c.kind === "log") logs[i].push(t);
          else if (c.kind === "inflight" || c.kind === "calls") nums[i]++;
        });
      }
      let ok = true;
      if (admitted > 0) {
        const op = kv.atomic();
        for (const entry of entries) op.check(entry);
        counters.forEach((c, i) => {
          if (c.kind === "log") {
            op.set(c.key, encodeLog(logs[i]), { expireIn: MINUTE + 1000 });
          } else if (c.kind === "inflight") {
            op.set(c.key, { n: nums[i], exp: t + leaseMs }, { expireIn: leaseMs });
          } else if (c.kind === "calls") {
            op.set(c.key, nums[i], { expireIn: c.endsMs - t + 2 * DAY });
          }
        });
        ok = await commit(op);
      }
      if (ok) {
        batch.forEach((w, i) => {
          const { facts, refused } = outcomes[i];
          if (refused.length > 0) {
            for (const kind of refused) observer.refused?.(kind);
            w.resolve({ ...idle, facts, admitted: false });
          } else {
            countLocal(t);
            local.current++;
            w.resolve(admission(counters, facts));
          }
        });
        return;
      }
      // Another instance counted a call between our read and commit: decide again.
      if (attempt >= 200) {
        throw new Error("Cannot count the call: the rate-limit counters stay contended");
      }
      if (attempt > 2) await new Promise((r) => setTimeout(r, Math.random() * attempt));
    }
  }

  async function drain(id: string, q: { waiting: Waiter[] }): Promise<void> {
    try {
      while (q.waiting.length > 0) {
        const batch = q.waiting.splice(0, 256);
        try {
          await decideBatch(batch);
        } catch (e) {
          for (const w of batch) w.reject(e);
        }
      }
    } finally {
      queues.delete(id);
    }
  }

  return {
    async snapshot(subject) {
      const t = now();
      const counters = plan(subject, t);
      const entries = counters.length > 0
        ? await withKvRetry(() => kv.getMany(counters.map((c) => c.key)))
        : [];
      return judge(counters, stateOf(counters, entries, t), t).facts;
    },

    acquire(subject) {
      const t = now();
      const counters = plan(subject, t);
      if (counters.length === 0) {
        countLocal(t);
        local.current++;
        return Promise.resolve(idle);
      }
      const id = counters.map((c) => `${JSON.stringify(c.key)}#${c.limit}`).join("|");
      let q = queues.get(id);
      const start = q === undefined;
      if (!q) queues.set(id, q = { waiting: [] });
      const { promise, resolve, reject } = Promise.withResolvers<Admission>();
      q.waiting.push({ subject, resolve, reject });
      if (start) drain(id, q);
      return promise;
    },

    callsLastMinute() {
      const t = now();
      countLocal(t);
      const overlap = 1 - (t - local.start) / MINUTE;
      return Math.floor(local.current + local.previous * overlap);
    },
  };
}

/**
 * Adds `units` of cost to the subject's day and month spend (an atomic sum:
 * instances never conflict on it).
 */
export async function addCost(
  kv: Deno.Kv,
  input: { principal: string; clientIp?: string; units: number; now?: number },
): Promise<void> {
  if (!(input.units > 0)) return;
  const t = input.now ?? Date.now();
  const who = input.principal === ANONYMOUS && input.clientIp !== undefined
    ? `ip:${input.clientIp}`
    : `p:${input.principal}`;
  const day = utcDay(t);
  const units = new Deno.KvU64(BigInt(Math.round(input.units)));
  await withKvRetry(() =>
    kv.atomic()
      .sum(usageCostKey(who, `d${day}`), units.value)
      .sum(usageCostKey(who, `m${day.slice(0, 7)}`), units.value)
      .commit()
  );
}

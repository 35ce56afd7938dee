/**
 * Rate limits, concurrency limits and budgets counted in KV, so that every
 * instance and worker sharing the KV shares the limits.
 *
 * Each call (unless admitted from a lease, below) is checked and counted in
 * one atomic KV operation: read every counter that applies (one `getMany`),
 * decide, then commit the new values with a versionstamp check on each; a
 * conflicting commit by another instance makes this one re-read and decide
 * again. So no two instances can both admit the last call a limit allows: the
 * limits are exact, not estimates (leases add a stated, bounded early refusal,
 * never an excess).
 *
 * - Per-minute limits are sliding logs: the timestamps of the calls admitted
 *   in the last 60 s. A limit of N admits at most N calls in any 60 s window,
 *   and `Retry-After` is when the oldest of them leaves the window.
 * - Concurrency: each instance's share of a subject's calls in flight. The
 *   subject's record holds, per instance, how many calls it admitted and a
 *   lease; how many of them it finished is a separate counter only that
 *   instance raises (`max`, so it never conflicts and needs no check). An
 *   admission is the call's one durable commit: the finish rides along the
 *   vault's commit of the call's own entry (the limiter commits it alone only
 *   when nothing is being sealed). A count read may include calls that just
 *   finished and whose finish is not yet durable (never fewer than are really
 *   in flight), so the limit is never exceeded; an instance's own finishes
 *   count at once for its own admissions. An instance that dies mid-call
 *   leaves a share that lapses `leaseMs` after its last admission for that
 *   subject; a live instance whose share lapsed starts a new one.
 * - Budgets count calls per UTC day and month (exact), and cost units per
 *   day and month: the cost of a call is known only once it ran, so a cost
 *   budget admits calls while the spend so far is below it, and the call that
 *   crosses it completes (the overshoot is at most one call's cost per
 *   instance in flight).
 *
 * Unauthenticated callers (principal `anonymous`) are counted per client IP,
 * not as one shared principal.
 *
 * ## Leases: admission without a commit
 *
 * A caller that calls often is admitted from what this instance already
 * holds, with no KV operation at all (issue 14): the one atomic above, when
 * it admits a batch, may also take
 *
 * - **rate tokens**: up to `slack` more entries in each per-minute log,
 *   stamped with their use-by time `U` = now + `TOKEN_TTL_MS` (not with now),
 *   so an entry used for a call at any time before `U` stays in the log for
 *   the whole minute after that call: the log still counts every call in any
 *   60 s, never fewer;
 * - **spare slots**: a finished call's slot is kept leased (its end is not
 *   made durable) while this instance has fewer than `slack` spares, so the
 *   next call takes it with no commit.
 *
 * The next atomic this instance makes for the same counters gives its unused
 * tokens and spares back first (they are not counted against its own batch)
 * and takes afresh; the session reaper's `sweep` and shutdown's `flush` give
 * back what an idle caller holds. `slack` is 0 for a new or slow caller (every
 * call is exact, as above), doubles each time the caller comes back to KV
 * within `GROW_MS` of its last visit, halves when it does not, and is capped
 * at ⌊limit / 8⌋ of each limit, so limits under 8 are never leased.
 *
 * The bound: a limit is never exceeded (a token or spare is counted in KV
 * before it is used, and the counts others read include it). It can refuse
 * early by what other instances hold unused: with I instances and cap
 * L = ⌊limit / 8⌋, a call is refused only when at least limit − (I − 1) × L
 * calls are really counted (and a token used before its use-by keeps its room
 * until 60 s after the use-by: at most `TOKEN_TTL_MS` longer than the call's
 * own minute). A crashed holder's tokens leave the log by
 * `U` + 60 s, its spares lapse with its lease (`leaseMs`). Budgets are never
 * leased: a subject with a call or cost budget is decided in KV every call,
 * and so is one with any limit under 8 (it takes no tokens for its others).
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
  type CommitCarrier,
  type CommitRider,
  type Ride,
  usageBudgetKey,
  usageCostKey,
  usageInFlightKey,
  usageRateKey,
  usageReleasedKey,
  usageReleasedPrefix,
  usageTokensKey,
  withKvRetry,
} from "../store/mod.ts";

/** The principal of callers that did not authenticate. */
export const ANONYMOUS = "anonymous";

const MINUTE = 60_000;
const DAY = 86_400_000;
/** How long a leased rate token may be used after it was taken (its stamp in the log). */
export const TOKEN_TTL_MS = 2_000;
/** Coming back to KV within this long of the last visit doubles the lease; later halves it. */
const GROW_MS = 1_000;
/** A lease unused this long is given back by `sweep` (option `idleMs`). */
const IDLE_MS = 2_000;
/** The most a lease may hold: ⌊limit / 8⌋ (0 below 8, so small limits stay exact). */
export function leaseCap(limit: number): number {
  return Math.floor(limit / 8);
}

/** The next lease size from the last one and how long ago the caller last came to KV. */
function nextSlack(slack: number, sinceMs: number, cap: number): number {
  if (cap <= 0) return 0;
  return sinceMs < GROW_MS ? Math.min(cap, Math.max(1, slack * 2)) : Math.floor(slack / 2);
}

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
  | "cost_per_month"
  | "tokens_per_day"
  | "tokens_per_month";

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
  /**
   * A writer whose commits carry the limiter's releases (the vault): a call's
   * release then costs no commit of its own. Without one, releases are
   * committed by the limiter (coalesced).
   */
  readonly carrier?: CommitCarrier;
  /** This instance's id in the shared in-flight records (random when absent). */
  readonly instanceId?: string;
  /** A lease unused this long (ms of real time) is given back by `sweep` (2000 when absent). */
  readonly idleMs?: number;
}

/** The shared limiter, with a flush for shutdown and a sweep for what dead holders leave. */
export interface KvLimiter extends RateLimiter {
  /** Gives back every lease held (tokens, spare slots); resolves once every release so far is durable. */
  flush(): Promise<void>;
  /**
   * Deletes release counters whose holder lapsed (an instance that died, or a
   * subject idle for a lease), with their holders' entries: at most `limit`
   * counters per call, resuming where the last call stopped. Returns how many
   * were deleted. Leases idle for `idleMs` (or past their use-by) are given
   * back first.
   */
  sweep(limit?: number): Promise<number>;
}

/** True for 127.0.0.0/8, ::1 and IPv4-mapped loopback. */
export function isLoopbackIp(ip: string): boolean {
  return ip === "::1" || /^(?:::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/i.test(ip);
}

type Counter =
  | { kind: "log"; key: Deno.KvKey; limit: number; what: string; limitKind: LimitKind }
  | {
    kind: "inflight";
    key: Deno.KvKey;
    who: string;
    limit: number;
    what: string;
    limitKind: LimitKind;
  }
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

/** The budget limits, each a counter of calls, cost units or model tokens per UTC day or month. */
const BUDGET_COUNTERS: readonly {
  readonly limitKind:
    | "calls_per_day"
    | "calls_per_month"
    | "cost_per_day"
    | "cost_per_month"
    | "tokens_per_day"
    | "tokens_per_month";
  readonly kind: "calls" | "cost";
  readonly key: (who: string, period: string) => Deno.KvKey;
  /** The refusal's words between the caller and the period, with %n for the count. */
  readonly what: string;
}[] = [
  { limitKind: "calls_per_day", kind: "calls", key: usageBudgetKey, what: "made %n calls" },
  { limitKind: "calls_per_month", kind: "calls", key: usageBudgetKey, what: "made %n calls" },
  {
    limitKind: "cost_per_day",
    kind: "cost",
    key: usageCostKey,
    what: "spent %n cost units",
  },
  {
    limitKind: "cost_per_month",
    kind: "cost",
    key: usageCostKey,
    what: "spent %n cost units",
  },
  {
    limitKind: "tokens_per_day",
    kind: "cost",
    key: usageTokensKey,
    what: "used %n model tokens",
  },
  {
    limitKind: "tokens_per_month",
    kind: "cost",
    key: usageTokensKey,
    what: "used %n model tokens",
  },
];

/** A sliding log: the first timestamp and the others as 32-bit offsets from it. */
interface LogValue {
  b: number;
  d: Uint8Array;
}

/** A subject's calls in flight: per holder (instance and generation), admissions and lease end. */
interface InFlightValue {
  h: Record<string, { a: number; exp: number }>;
}

/** The holder a record of the earlier format (one count and lease) is read as. */
const LEGACY_HOLDER = "~";
/** Above this many holders in one record, settled ones are dropped first. */
const MAX_HOLDERS = 64;
/** Releases committed by one standalone commit or carried by one ride. */
const MAX_RELEASE_MUTATIONS = 64;

function holdersOf(value: unknown): InFlightValue["h"] {
  const v = value as Partial<InFlightValue> & { n?: unknown; exp?: unknown } | null;
  if (v && typeof v.h === "object" && v.h !== null) return v.h;
  if (v && typeof v.n === "number" && typeof v.exp === "number") {
    return { [LEGACY_HOLDER]: { a: v.n, exp: v.exp } };
  }
  return {};
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
  // Leased tokens are stamped ahead (their use-by), so the log is not in call order.
  return out.sort((x, y) => x - y);
}

function encodeLog(unsorted: readonly number[]): LogValue {
  const times = [...unsorted].sort((x, y) => x - y);
  const b = times[0] ?? 0;
  const d = new Uint8Array(times.length * 4);
  const view = new DataView(d.buffer);
  times.forEach((t, i) => view.setUint32(i * 4, t - b, true));
  return { b, d };
}

/** The UTC day of `t` as YYYY-MM-DD; the last one is kept (formatting a date on every call showed in profiles). */
let lastDay = { n: Number.NaN, text: "" };
function utcDay(t: number): string {
  const n = Math.floor(t / 86_400_000);
  if (n !== lastDay.n) lastDay = { n, text: new Date(t).toISOString().slice(0, 10) };
  return lastDay.text;
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
 * import assert from "node:assert/strict";
 * import { parsePolicy } from "../governance/mod.ts";
 * import { createKvLimiter } from "./limiter.ts";
 * const kv = await Deno.openKv(":memory:");
 * const limiter = createKvLimiter(kv, { policy: parsePolicy({ rate_limits: { per_principal_per_minute: 2 } }) });
 * const a = await limiter.acquire({ principal: "alice", tool: "calculate" });
 * assert.equal(a.admitted, true);
 * await a.release();
 * kv.close();
 * ```
 */
// Kept whole: its closures share the limiter's generation, shares, dirty set, check timer and per-
// key queues; the exactness argument (a count never reads fewer than are in flight) spans them, and
// split across files that mutable state would have to be exported.
export function createKvLimiter(kv: Deno.Kv, options: KvLimiterOptions): KvLimiter {
  const { policy } = options;
  const now = options.now ?? Date.now;
  const leaseMs = options.leaseMs ?? 10 * MINUTE;
  const idleMs = options.idleMs ?? IDLE_MS;
  const isLoopback = options.isLoopback ?? isLoopbackIp;
  const observer = options.observer ?? {};
  const limits = policy.rate_limits;
  const local = { start: 0, current: 0, previous: 0 };
  const instance = options.instanceId ?? crypto.randomUUID();
  const carrier = options.carrier;

  function countLocal(t: number) {
    const bucket = Math.floor(t / MINUTE) * MINUTE;
    if (bucket !== local.start) {
      local.previous = bucket - local.start === MINUTE ? local.current : 0;
      local.current = 0;
      local.start = bucket;
    }
  }

  /** Every counter that applies to `subject` at time `t`. */
  // Kept whole: one flat table of the counters a subject meets (per principal, tool, IP and their
  // windows); split, the rows would hide which combination applies.
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
        who,
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
    for (const b of BUDGET_COUNTERS) {
      const limit = override?.[b.limitKind] ?? budgets[b.limitKind];
      if (!(limit > 0)) continue;
      const daily = b.limitKind.endsWith("_per_day");
      counters.push({
        kind: b.kind,
        key: b.key(who, daily ? `d${day}` : `m${month}`),
        limit,
        what: `${label} ${b.what} ${daily ? "today" : "this month"} (UTC)`,
        limitKind: b.limitKind,
        endsMs: daily ? dayEnds : monthEnds,
      });
    }
    return counters;
  }

  /**
   * This instance's share of one subject's calls in flight. Its holder id
   * (instance and generation) names its entry in the subject's record and its
   * release counter; a share whose entry was pruned (it lapsed) starts a new
   * generation, carrying its calls still in flight over.
   */
  interface Share {
    readonly key: Deno.KvKey;
    readonly who: string;
    holder: string;
    /** Calls admitted under `holder` (what the record holds for it once joined). */
    acquired: number;
    /** Calls finished since `holder` began (raised at once, durable later). */
    released: number;
    /** The release count known durable under `holder`. */
    landed: number;
    /** A release count in a commit not yet decided (0: none). */
    carrying: number;
    /** The record holds `holder` (an admission under it committed). */
    joined: boolean;
    /** Release promises: each resolves once its count is durable. */
    waiters: { holder: string; n: number; resolve: () => void }[];
    /** Batches deciding on this record run one at a time (they would conflict anyway). */
    chain: Promise<void>;
    busy: number;
    usedMs: number;
    /** Batches between their read and their outcome: no local admission meanwhile. */
    deciding: number;
    /** Finished calls whose slots stay leased to this instance, for its next calls. */
    spare: number;
    /** How many spares to keep (see the module doc). */
    slack: number;
    /** The limit the share was last decided against (its lease cap is ⌊limit / 8⌋). */
    limit: number;
    /** When a batch last went to KV for this share (performance.now()). */
    slowMs: number;
    /** Our entry's lease end as last committed. */
    exp: number;
    /** The other holders' calls in flight at the last read. */
    others: number;
  }
  /** Rate tokens this instance holds in one per-minute log (keyed by the log's key). */
  interface TokenLease {
    readonly key: Deno.KvKey;
    /** Tokens taken and not used yet; each is an entry `stamp` in the log. */
    left: number;
    stamp: number;
    /** The log's length after our last write (what a local admission reports). */
    countAt: number;
    slack: number;
    limit: number;
    slowMs: number;
    usedMs: number;
    /** Batches or give-backs reading the log now: no local use meanwhile. */
    busy: number;
  }
  const tokenLeases = new Map<string, TokenLease>();
  const MAX_TOKEN_LEASES = 10_000;

  function tokenLeaseOf(c: Extract<Counter, { kind: "log" }>): TokenLease {
    const id = JSON.stringify(c.key);
    let lease = tokenLeases.get(id);
    if (!lease) {
      if (tokenLeases.size >= MAX_TOKEN_LEASES) {
        for (const [k, l] of tokenLeases) if (l.left === 0 && l.busy === 0) tokenLeases.delete(k);
      }
      lease = {
        key: c.key,
        left: 0,
        stamp: 0,
        countAt: 0,
        slack: 0,
        limit: c.limit,
        slowMs: -Infinity,
        usedMs: performance.now(),
        busy: 0,
      };
      tokenLeases.set(id, lease);
    }
    return lease;
  }
  let generation = 0;
  let sweepCursor: string | undefined;
  const shares = new Map<string, Share>();
  const MAX_SHARES = 10_000;

  function settled(sh: Share): boolean {
    return sh.busy === 0 && sh.acquired === sh.released && sh.landed >= sh.released &&
      sh.carrying === 0;
  }

  function shareOf(c: Extract<Counter, { kind: "inflight" }>): Share {
    let sh = shares.get(c.who);
    if (!sh) {
      if (shares.size >= MAX_SHARES) {
        for (const [who, s] of shares) if (settled(s)) shares.delete(who);
      }
      sh = {
        key: c.key,
        who: c.who,
        holder: `${instance}.${++generation}`,
        acquired: 0,
        released: 0,
        landed: 0,
        carrying: 0,
        joined: false,
        waiters: [],
        chain: Promise.resolve(),
        busy: 0,
        usedMs: 0,
        deciding: 0,
        spare: 0,
        slack: 0,
        limit: c.limit,
        slowMs: -Infinity,
        exp: 0,
        others: 0,
      };
      shares.set(c.who, sh);
    }
    sh.usedMs = performance.now();
    return sh;
  }

  /**
   * Our entry lapsed (no admission for a lease; others ignore it, or pruned
   * it): its calls are forgotten here too, as they are everywhere, and a new
   * holder begins. Releases of the forgotten calls are ignored.
   */
  function rotate(sh: Share): void {
    sh.acquired = 0;
    sh.released = 0;
    sh.landed = 0;
    sh.carrying = 0;
    sh.joined = false;
    sh.spare = 0;
    sh.exp = 0;
    sh.holder = `${instance}.${++generation}`;
    // Releases under the old holder no longer matter to anyone.
    for (const w of sh.waiters.splice(0)) w.resolve();
  }

  /**
   * A subject's record as this instance counts it: the other holders still
   * leased (less what each has durably finished), plus our own share exactly.
   */
  async function readInFlight(
    c: Extract<Counter, { kind: "inflight" }>,
    value: unknown,
    t: number,
    sh: Share | undefined,
  ) {
    const holders = holdersOf(value);
    const live: InFlightValue["h"] = {};
    const lapsed: string[] = [];
    for (const [id, h] of Object.entries(holders)) {
      if (sh !== undefined && id === sh.holder) continue;
      if (typeof h?.a !== "number" || typeof h.exp !== "number" || h.exp <= t) lapsed.push(id);
      else live[id] = h;
    }
    const others = Object.keys(live).filter((id) => id !== LEGACY_HOLDER);
    const released = new Map<string, number>();
    const reads: Promise<void>[] = [];
    for (let i = 0; i < others.length; i += 10) {
      const ids = others.slice(i, i + 10);
      reads.push(
        withKvRetry(() => kv.getMany(ids.map((id) => usageReleasedKey(c.who, id)))).then(
          (entries) =>
            entries.forEach((e, j) => {
              if (e.value instanceof Deno.KvU64) released.set(ids[j], Number(e.value.value));
            }),
        ),
      );
    }
    await Promise.all(reads);
    let count = 0;
    for (const [id, h] of Object.entries(live)) {
      count += Math.max(0, h.a - (released.get(id) ?? 0));
    }
    const own = sh !== undefined && Object.hasOwn(holders, sh.holder)
      ? holders[sh.holder]
      : undefined;
    if (sh !== undefined && sh.joined && !(own !== undefined && own.exp > t)) rotate(sh);
    if (sh !== undefined) {
      sh.others = count;
      // Our spares are free for our own calls (others count them as ours in flight).
      count += sh.acquired - sh.released - sh.spare;
    }
    return { count, live, released, lapsed };
  }

  /** The counters' current values: each log's live times, each count. */
  async function stateOf(
    counters: Counter[],
    entries: Deno.KvEntryMaybe<unknown>[],
    t: number,
    sh?: Share,
  ) {
    const logs = counters.map((c, i) =>
      c.kind === "log" ? decodeLog(entries[i].value, t - MINUTE) : []
    );
    let inflight: Awaited<ReturnType<typeof readInFlight>> | undefined;
    const nums: number[] = [];
    for (const [i, c] of counters.entries()) {
      const value = entries[i].value;
      if (c.kind === "inflight") {
        inflight = await readInFlight(c, value, t, sh ?? shares.get(c.who));
        nums.push(inflight.count);
      } else if (c.kind === "calls") nums.push(typeof value === "number" ? value : 0);
      else if (c.kind === "cost") {
        nums.push(value instanceof Deno.KvU64 ? Number(value.value) : 0);
      } else nums.push(0);
    }
    return { logs, nums, inflight };
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
        if (count >= c.limit) {
          const log = [...state.logs[i]].sort((x, y) => x - y);
          waitMs = log[count - c.limit] + MINUTE - t;
        }
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

  // Releases. Finishing a call raises this instance's release counter for the
  // subject (`max`: no check, no conflict, safe out of order). The raise rides
  // along the carrier's next commit (the vault sealing the call); only when no
  // commit is coming does the limiter commit the raises itself, all pending
  // ones in one atomic.
  const dirty = new Set<Share>();
  let checkTimer: ReturnType<typeof setTimeout> | undefined;
  let standalone: Promise<void> | undefined;

  function owed(sh: Share): boolean {
    return sh.joined && sh.released > sh.landed && sh.released > sh.carrying;
  }

  function takeRaises(room: number): { sh: Share; holder: string; n: number }[] {
    const out: { sh: Share; holder: string; n: number }[] = [];
    for (const sh of dirty) {
      if (out.length >= Math.min(room, MAX_RELEASE_MUTATIONS)) break;
      if (!owed(sh)) {
        if (sh.released <= sh.landed || !sh.joined) dirty.delete(sh);
        continue;
      }
      sh.carrying = sh.released;
      out.push({ sh, holder: sh.holder, n: sh.released });
    }
    return out;
  }

  function settleRaises(raises: { sh: Share; holder: string; n: number }[], ok: boolean): void {
    for (const { sh, holder, n } of raises) {
      if (sh.holder !== holder) continue; // rotated meanwhile
      if (sh.carrying === n) sh.carrying = 0;
      if (ok) {
        sh.landed = Math.max(sh.landed, n);
        sh.waiters = sh.waiters.filter((w) => {
          if (w.holder === holder && w.n > sh.landed) return true;
          w.resolve();
          return false;
        });
        if (sh.released <= sh.landed) dirty.delete(sh);
      }
    }
    if (dirty.size > 0) scheduleCheck();
  }

  function rideOf(raises: { sh: Share; holder: string; n: number }[]): Ride | undefined {
    if (raises.length === 0) return undefined;
    return {
      mutations: raises.map(({ sh, holder, n }) => ({
        type: "max" as const,
        key: usageReleasedKey(sh.who, holder),
        value: new Deno.KvU64(BigInt(n)),
      })),
      settle: (ok) => settleRaises(raises, ok),
    };
  }

  const rider: CommitRider = {
    ride: (room) => rideOf(takeRaises(room)),
    idle: () => {
      if (dirty.size > 0) scheduleCheck();
    },
  };
  carrier?.carry(rider);

  function scheduleCheck(): void {
    if (checkTimer !== undefined) return;
    // After the current turn: the call's seal, queued right after its release, carries it.
    checkTimer = setTimeout(() => {
      checkTimer = undefined;
      if (carrier?.pending()) return; // its commit will ask the rider again
      if (standalone) return; // re-checked when it settles
      standalone = commitRaises().finally(() => standalone = undefined);
    }, 0);
  }

  async function commitRaises(): Promise<void> {
    while (true) {
      const ride = rideOf(takeRaises(MAX_RELEASE_MUTATIONS));
      if (!ride) return;
      let ok = false;
      try {
        ok = await commit(kv.atomic().mutate(...ride.mutations));
      } finally {
        ride.settle(ok);
      }
      if (!ok) return;
    }
  }

  function releaseSlot(sh: Share, holder: string): Promise<void> {
    if (sh.holder !== holder) return Promise.resolve(); // a lapsed holder's call: forgotten
    if (sh.joined && sh.spare < sh.slack) {
      // Kept leased for our next call: free here at once, still counted as ours elsewhere.
      sh.spare++;
      return Promise.resolve();
    }
    sh.released++;
    if (sh.joined && sh.released <= sh.landed) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    sh.waiters.push({ holder: sh.holder, n: sh.released, resolve });
    dirty.add(sh);
    scheduleCheck();
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

  function admission(sh: Share | undefined, facts: RateFacts): Admission {
    if (!sh) return { ...idle, facts };
    let released: Promise<void> | undefined;
    const holder = sh.holder;
    const release = () => released ??= releaseSlot(sh, holder);
    return {
      facts,
      admitted: true,
      release,
      [Symbol.dispose]() {
        release().catch(() => {});
      },
    };
  }

  /**
   * Admits a call from what this instance holds (a token in each per-minute
   * log, a spare slot), with no KV operation; undefined when some counter
   * has nothing leased here (or a budget applies), and KV decides.
   */
  function admitLocally(counters: Counter[], t: number): Admission | undefined {
    let sh: Share | undefined;
    const leases: TokenLease[] = [];
    const checks: RateCheck[] = [];
    for (const c of counters) {
      let count: number;
      if (c.kind === "inflight") {
        sh = shares.get(c.who);
        // Our entry must outlive the call by half a lease (the next visit to KV renews it).
        if (!sh || sh.spare === 0 || sh.deciding > 0 || !sh.joined || sh.exp - t < leaseMs / 2) {
          return undefined;
        }
        count = sh.others + sh.acquired - sh.released - sh.spare;
      } else if (c.kind === "log") {
        const lease = tokenLeases.get(JSON.stringify(c.key));
        if (!lease || lease.left === 0 || lease.busy > 0 || t >= lease.stamp) return undefined;
        leases.push(lease);
        count = lease.countAt - lease.left;
      } else return undefined;
      checks.push({ count, limit: c.limit, what: c.what.replace("%n", String(count)) });
    }
    const clock = performance.now();
    for (const lease of leases) {
      lease.left--;
      lease.usedMs = clock;
    }
    if (sh) {
      sh.spare--;
      sh.usedMs = clock;
    }
    countLocal(t);
    local.current++;
    const facts = { ...idle.facts, checks, retryAfterS: 1 };
    return admission(sh, facts);
  }

  /** Our spare slots become free everywhere (their release is made durable like any). */
  function returnSpares(sh: Share): void {
    if (sh.spare === 0) return;
    sh.released += sh.spare;
    sh.spare = 0;
    sh.slack = 0;
    dirty.add(sh);
    scheduleCheck();
  }

  /** Gives our unused tokens in one log back: a checked rewrite of the log without them. */
  async function giveBackTokens(lease: TokenLease): Promise<void> {
    lease.busy++;
    try {
      for (let attempt = 0; attempt < 10 && lease.left > 0; attempt++) {
        const entry = await withKvRetry(() => kv.get(lease.key));
        const kept = without(decodeLog(entry.value, now() - MINUTE), lease.stamp, lease.left);
        const op = kv.atomic().check(entry);
        if (kept.length === 0) op.delete(lease.key);
        else op.set(lease.key, encodeLog(kept), { expireIn: MINUTE + TOKEN_TTL_MS + 1000 });
        if (await commit(op)) {
          lease.left = 0;
          lease.slack = 0;
        }
      }
    } finally {
      lease.busy--;
    }
  }

  /** Gives back what callers idle for `IDLE_MS` hold (all of it when `all`). */
  async function giveBack(all: boolean): Promise<void> {
    const before = performance.now() - idleMs;
    for (const sh of shares.values()) {
      if (sh.spare > 0 && sh.deciding === 0 && (all || sh.usedMs < before)) returnSpares(sh);
    }
    const t = now();
    for (const [id, lease] of tokenLeases) {
      if (lease.busy > 0) continue;
      if (lease.left > 0 && (all || lease.usedMs < before || t >= lease.stamp)) {
        await giveBackTokens(lease);
      } else if (lease.left === 0 && Math.max(lease.usedMs, lease.slowMs) < before) {
        tokenLeases.delete(id);
      }
    }
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

  /** Removes up to `n` entries stamped `stamp` from a log (our unused tokens, given back). */
  function without(log: number[], stamp: number, n: number): number[] {
    if (n <= 0) return log;
    let removed = 0;
    return log.filter((x) => x !== stamp || ++removed > n);
  }

  /** What one batch decided, to be committed: the counters' new values and the leases taken. */
  interface Decision {
    readonly counters: Counter[];
    readonly entries: Deno.KvEntryMaybe<unknown>[];
    readonly state: Awaited<ReturnType<typeof stateOf>>;
    readonly sh: Share | undefined;
    readonly t: number;
    /** Admitted calls (the first `fromSpare` of them on our spare slots). */
    readonly admitted: number;
    readonly fromSpare: number;
  }

  /** The atomic that writes a decision, checked against every counter read. */
  function writeOf(d: Decision): Deno.AtomicOperation {
    const { counters, entries, state, sh, t } = d;
    const op = kv.atomic();
    for (const entry of entries) op.check(entry);
    counters.forEach((c, i) => {
      if (c.kind === "log") {
        op.set(c.key, encodeLog(state.logs[i]), { expireIn: MINUTE + TOKEN_TTL_MS + 1000 });
      } else if (c.kind === "inflight") {
        const { live, released, lapsed } = state.inflight!;
        // Lapsed holders (instances that died mid-call, or idle) leave with their counters.
        const dropped = [...lapsed];
        if (Object.keys(live).length >= MAX_HOLDERS) {
          for (const [id, h] of Object.entries(live)) {
            if (h.a - (released.get(id) ?? 0) <= 0) {
              delete live[id];
              dropped.push(id);
            }
          }
        }
        for (const id of dropped) {
          if (id !== LEGACY_HOLDER) op.delete(usageReleasedKey(c.who, id));
        }
        live[sh!.holder] = { a: sh!.acquired + d.admitted - d.fromSpare, exp: t + leaseMs };
        op.set(c.key, { h: live } satisfies InFlightValue, { expireIn: leaseMs });
      } else if (c.kind === "calls") {
        op.set(c.key, state.nums[i], { expireIn: c.endsMs - t + 2 * DAY });
      }
    });
    return op;
  }

  async function decideBatch(batch: Waiter[]): Promise<void> {
    const logLeases = new Map<number, TokenLease>();
    for (const [i, c] of plan(batch[0].subject, now()).entries()) {
      if (c.kind === "log") logLeases.set(i, tokenLeaseOf(c));
    }
    for (let attempt = 0;; attempt++) {
      const { ok, outcomes, sh, t, admitted } = await attemptBatch(batch, logLeases);
      if (ok) {
        batch.forEach((w, i) => {
          const { facts, refused } = outcomes[i];
          if (refused.length > 0) {
            for (const kind of refused) observer.refused?.(kind);
            w.resolve({ ...idle, facts, admitted: false });
          } else {
            countLocal(t);
            local.current++;
            w.resolve(admission(sh, facts));
          }
        });
        // Refused and holding tokens (used up elsewhere, or past their use-by): they go back now,
        // after the answer, so that another instance is not refused on what we cannot use.
        if (admitted === 0) {
          for (const lease of logLeases.values()) if (lease.left > 0) await giveBackTokens(lease);
        }
        return;
      }
      // Another instance counted a call between our read and commit: decide again.
      if (attempt >= 200) {
        throw new Error("Cannot count the call: the rate-limit counters stay contended");
      }
      if (attempt > 2) await new Promise((r) => setTimeout(r, Math.random() * attempt));
    }
  }

  /**
   * One read-judge-commit of a batch: our unused tokens and spares are given
   * back by its write (the batch does not count them), and new tokens are
   * taken when every call had room. No local admission meanwhile (`busy`,
   * `deciding`): it would spend what this write gives back.
   */
  // Kept whole: read, give back, judge, take and apply are one step; split, the lease bookkeeping
  // would be apart from the decision it rides on.
  async function attemptBatch(batch: Waiter[], logLeases: Map<number, TokenLease>) {
    const t = now();
    const counters = plan(batch[0].subject, t);
    // Only a subject decided by per-minute logs and calls in flight alone, each large enough to
    // lease, is ever admitted from a lease; any other (a budget, a limit under 8) is decided here
    // every call, so it takes none.
    const leasable = counters.every((c) =>
      (c.kind === "log" || c.kind === "inflight") && leaseCap(c.limit) > 0
    );
    const slot = counters.find((c) => c.kind === "inflight");
    const sh = slot ? shareOf(slot) : undefined;
    for (const lease of logLeases.values()) lease.busy++;
    if (sh) sh.deciding++;
    try {
      const entries = await withKvRetry(() => kv.getMany(counters.map((c) => c.key)));
      const state = await stateOf(counters, entries, t, sh);
      const { logs, nums } = state;
      for (const [i, lease] of logLeases) logs[i] = without(logs[i], lease.stamp, lease.left);
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
      const fromSpare = sh ? Math.min(admitted, sh.spare) : 0;
      const clock = performance.now();
      const anyRefused = outcomes.some((o) => o.refused.length > 0);
      // New tokens: the lease grows while the caller comes back fast.
      const taken = new Map<number, { n: number; slack: number }>();
      for (const [i, lease] of logLeases) {
        const c = counters[i];
        const slack = leasable
          ? nextSlack(lease.slack, clock - lease.slowMs, leaseCap(c.limit))
          : 0;
        const n = anyRefused ? 0 : Math.max(0, Math.min(slack, c.limit - logs[i].length));
        for (let k = 0; k < n; k++) logs[i].push(t + TOKEN_TTL_MS);
        taken.set(i, { n, slack });
      }
      const decision = { counters, entries, state, sh, t, admitted, fromSpare };
      const ok = admitted > 0 ? await commit(writeOf(decision)) : true;
      if (ok && admitted > 0) {
        if (sh) {
          sh.acquired += admitted - fromSpare;
          sh.spare -= fromSpare;
          sh.joined = true;
          sh.exp = t + leaseMs;
          sh.limit = slot!.limit;
          sh.slack = leasable ? nextSlack(sh.slack, clock - sh.slowMs, leaseCap(slot!.limit)) : 0;
          sh.slowMs = clock;
        }
        for (const [i, lease] of logLeases) {
          const { n, slack } = taken.get(i)!;
          Object.assign(lease, { left: n, stamp: t + TOKEN_TTL_MS, slack, slowMs: clock });
          lease.countAt = logs[i].length;
          lease.limit = counters[i].limit;
        }
      }
      return { ok, outcomes, sh, t, admitted };
    } finally {
      for (const lease of logLeases.values()) lease.busy--;
      if (sh) sh.deciding--;
    }
  }

  /** Runs `fn` after every earlier batch on the same in-flight record (one at a time). */
  function exclusive(who: string | undefined, fn: () => Promise<void>): Promise<void> {
    const sh = who === undefined ? undefined : shares.get(who);
    if (!sh) return fn();
    sh.busy++;
    const run = sh.chain.then(fn);
    sh.chain = run.catch(() => {}).finally(() => sh.busy--);
    return run;
  }

  async function drain(id: string, q: { waiting: Waiter[] }): Promise<void> {
    try {
      while (q.waiting.length > 0) {
        const batch = q.waiting.splice(0, 256);
        const slot = plan(batch[0].subject, now()).find((c) => c.kind === "inflight");
        if (slot) shareOf(slot);
        try {
          await exclusive(
            slot?.kind === "inflight" ? slot.who : undefined,
            () => decideBatch(batch),
          );
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
      return judge(counters, await stateOf(counters, entries, t), t).facts;
    },

    acquire(subject) {
      const t = now();
      const counters = plan(subject, t);
      if (counters.length === 0) {
        countLocal(t);
        local.current++;
        return Promise.resolve(idle);
      }
      const leased = admitLocally(counters, t);
      if (leased) return Promise.resolve(leased);
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

    async sweep(limit = 1000) {
      await giveBack(false);
      const t = now();
      // Our own settled shares idle for a lease are forgotten: their entries lapse like any.
      const idleBefore = performance.now() - leaseMs;
      for (const [who, sh] of shares) if (settled(sh) && sh.usedMs < idleBefore) shares.delete(who);
      const mine = new Set([...shares.values()].map((sh) => sh.holder));
      const byWho = new Map<string, string[]>();
      const iter = kv.list({ prefix: usageReleasedPrefix() }, {
        limit,
        ...(sweepCursor ? { cursor: sweepCursor } : {}),
      });
      let seen = 0;
      for await (const e of iter) {
        seen++;
        const [, who, holder] = e.key as [string, string, string];
        if (typeof who !== "string" || typeof holder !== "string" || mine.has(holder)) continue;
        byWho.set(who, [...byWho.get(who) ?? [], holder]);
      }
      sweepCursor = seen < limit ? undefined : iter.cursor;
      let deleted = 0;
      for (const [who, ids] of byWho) {
        const key = usageInFlightKey(who);
        for (let attempt = 0; attempt < 5; attempt++) {
          const entry = await withKvRetry(() => kv.get(key));
          const holders = holdersOf(entry.value);
          const live: InFlightValue["h"] = {};
          for (const [id, h] of Object.entries(holders)) if (h.exp > t) live[id] = h;
          const gone = ids.filter((id) => !Object.hasOwn(live, id));
          if (gone.length === 0) break;
          const op = kv.atomic().check(entry);
          for (const id of gone) op.delete(usageReleasedKey(who, id));
          if (Object.keys(live).length === 0) op.delete(key);
          else if (Object.keys(live).length < Object.keys(holders).length) {
            op.set(key, { h: live } satisfies InFlightValue, { expireIn: leaseMs });
          }
          if ((await withKvRetry(() => op.commit())).ok) {
            deleted += gone.length;
            break;
          }
        }
      }
      return deleted;
    },

    async flush() {
      await giveBack(true);
      while (dirty.size > 0 || standalone || checkTimer !== undefined) {
        if (checkTimer !== undefined) {
          clearTimeout(checkTimer);
          checkTimer = undefined;
        }
        if (standalone) await standalone;
        else if (carrier?.pending()) await new Promise((r) => setTimeout(r, 1));
        else if ([...dirty].some(owed)) {
          standalone = commitRaises().finally(() => standalone = undefined);
        } else return;
      }
    },
  };
}

/**
 * Adds `units` of cost and `tokens` model tokens to the subject's day and
 * month spend (atomic sums: instances never conflict on them).
 */
export async function addCost(
  kv: Deno.Kv,
  input: { principal: string; clientIp?: string; units: number; tokens?: number; now?: number },
): Promise<void> {
  const units = input.units > 0 ? BigInt(Math.round(input.units)) : 0n;
  const tokens = (input.tokens ?? 0) > 0 ? BigInt(Math.round(input.tokens!)) : 0n;
  if (units === 0n && tokens === 0n) return;
  const t = input.now ?? Date.now();
  const who = input.principal === ANONYMOUS && input.clientIp !== undefined
    ? `ip:${input.clientIp}`
    : `p:${input.principal}`;
  const day = utcDay(t);
  const periods = [`d${day}`, `m${day.slice(0, 7)}`];
  const op = kv.atomic();
  for (const period of periods) {
    if (units > 0n) op.sum(usageCostKey(who, period), units);
    if (tokens > 0n) op.sum(usageTokensKey(who, period), tokens);
  }
  await withKvRetry(() => op.commit());
}

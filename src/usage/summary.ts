/**
 * The vault's daily usage summary: once per UTC day, one entry
 * `{type: "usage_summary", day, by_tool, by_principal, by_upstream}` with the
 * day's usage rows (calls by verdict, latency p50, bytes, tokens, cost), so
 * the audit log itself says what each principal used and spent, beside the
 * calls it sealed one by one. A day without calls gets no entry.
 *
 * Exactly one entry per day however many instances share the KV: an
 * instance claims the day with an atomic check-and-set before appending; a
 * claim expires after ten minutes unless the entry was written, so a crash
 * between claim and append only delays the summary. Each group keeps at most
 * {@link MAX_SUMMARY_ROWS} rows (largest by calls; fewer if long names would
 * make the entry too large), with the number left out.
 *
 * @module
 */
import type { Logger } from "../lib/mod.ts";
import type { Accounting, UsageRow } from "./accounting.ts";

/** The most rows one group of a summary keeps. */
export const MAX_SUMMARY_ROWS = 50;
/** The summary's JSON stays under this, well inside the vault's entry size limit. */
const MAX_SUMMARY_BYTES = 40 * 1024;

const DAY = 86_400_000;
const CLAIM_MS = 10 * 60_000;

/** Appends one vault entry; returns its index. */
export type AppendEntry = (fields: Record<string, unknown>) => Promise<{ index: number }>;

/** The summary service. */
export interface DailySummary {
  /**
   * Seals the summary of the UTC day containing `dayMs` unless some instance
   * already did; resolves to the entry's index, or `undefined` when it exists.
   */
  sealDay(dayMs: number): Promise<number | undefined>;
  /** Checks for yesterday's summary now and then every hour. */
  start(): void;
  close(): void;
}

interface Claim {
  readonly state: "pending" | "sealed";
  readonly atMs: number;
  readonly index?: number;
}

function summaryOf(day: string, groups: Record<"tool" | "principal" | "upstream", UsageRow[]>) {
  // Vault entries hold integers only: the p50 goes in as whole microseconds.
  const prepare = (rows: UsageRow[]) =>
    [...rows].sort((x, y) => y.calls - x.calls).map(({ latency_ms_p50, ...row }) => ({
      ...row,
      latency_us_p50: Math.round(latency_ms_p50 * 1000),
    }));
  const sorted = {
    tool: prepare(groups.tool),
    principal: prepare(groups.principal),
    upstream: prepare(groups.upstream),
  };
  for (let keep = MAX_SUMMARY_ROWS;; keep = Math.floor(keep / 2)) {
    const fields = {
      type: "usage_summary",
      day,
      by_tool: sorted.tool.slice(0, keep),
      by_principal: sorted.principal.slice(0, keep),
      by_upstream: sorted.upstream.slice(0, keep),
      omitted_rows: {
        tool: Math.max(0, sorted.tool.length - keep),
        principal: Math.max(0, sorted.principal.length - keep),
        upstream: Math.max(0, sorted.upstream.length - keep),
      },
    };
    if (keep === 0 || JSON.stringify(fields).length <= MAX_SUMMARY_BYTES) return fields;
  }
}

/**
 * Creates the daily summary over `kv`.
 *
 * @example
 * ```ts ignore
 * const summary = createDailySummary({ kv, accounting, append: ledger.append, logger });
 * summary.start();
 * ```
 */
export function createDailySummary(deps: {
  kv: Deno.Kv;
  accounting: Accounting;
  append: AppendEntry;
  logger: Logger;
  now?: () => number;
}): DailySummary {
  const now = deps.now ?? Date.now;
  let timer: ReturnType<typeof setInterval> | undefined;

  async function sealDay(dayMs: number): Promise<number | undefined> {
    const start = Math.floor(dayMs / DAY) * DAY;
    const day = new Date(start).toISOString().slice(0, 10);
    const key = ["usage_summary", day];
    const current = await deps.kv.get<Claim>(key);
    if (current.value?.state === "sealed") return undefined;
    if (current.value?.state === "pending" && now() - current.value.atMs < CLAIM_MS) {
      return undefined;
    }
    const claimed = await deps.kv.atomic().check(current)
      .set(key, { state: "pending", atMs: now() } satisfies Claim, { expireIn: CLAIM_MS })
      .commit();
    if (!claimed.ok) return undefined; // another instance is writing it
    await deps.accounting.flush();
    const range = { fromMs: start, toMs: start + DAY };
    const [tool, principal, upstream] = await Promise.all(
      (["tool", "principal", "upstream"] as const).map((groupBy) =>
        deps.accounting.query({ ...range, groupBy })
      ),
    );
    if (tool.length === 0) {
      // Nothing was used that day: no entry, and the claim is dropped.
      await deps.kv.atomic().check({ key, versionstamp: claimed.versionstamp }).delete(key)
        .commit();
      return undefined;
    }
    const { index } = await deps.append(summaryOf(day, { tool, principal, upstream }));
    await deps.kv.set(key, { state: "sealed", atMs: now(), index } satisfies Claim, {
      expireIn: 400 * DAY,
    });
    return index;
  }

  const check = () => {
    sealDay(now() - DAY).catch((e) =>
      deps.logger.warn("cannot seal the daily usage summary", { error: e })
    );
  };

  return {
    sealDay,
    start() {
      if (timer !== undefined) return;
      check();
      timer = setInterval(check, 3_600_000);
      Deno.unrefTimer(timer);
    },
    close() {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
    },
  };
}

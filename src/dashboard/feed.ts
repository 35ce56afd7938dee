/**
 * The live feed's data: `tool_call` entries read back from the vault. The
 * vault lives in KV, so every instance sharing the KV sees every instance's
 * calls; the SSE stream follows the vault head.
 *
 * @module
 */
import type { Ledger } from "../vault/mod.ts";

const VERDICTS = new Set(["SEAL", "PARTIAL", "SABAR", "VOID", "888_HOLD"]);

/** Feed filters (exact matches; empty means any). */
export interface FeedFilter {
  readonly verdict?: string;
  readonly principal?: string;
  readonly tool?: string;
}

/** One call as the feed shows it. */
export interface CallRow {
  readonly index: number;
  readonly time: string;
  readonly principal: string;
  readonly tool: string;
  readonly verdict: string;
  readonly failed: readonly string[];
  readonly reasons: readonly string[];
  /** "12.3 ms", or "—" when not recorded (a minimal record). */
  readonly latency: string;
  readonly outcome: string;
}

const text = (v: unknown, max = 256): string => typeof v === "string" ? v.slice(0, max) : "";
const texts = (v: unknown, n = 20): string[] =>
  Array.isArray(v)
    ? v.filter((x) => typeof x === "string").slice(0, n).map((x) => text(x, 500))
    : [];

/** Parses filters from a query; undefined values are dropped, bad ones refused. */
export function parseFilter(q: Record<string, string | undefined>): FeedFilter | string {
  const out: { verdict?: string; principal?: string; tool?: string } = {};
  for (const k of ["verdict", "principal", "tool"] as const) {
    const v = q[k];
    if (v === undefined || v === "") continue;
    if (v.length > 256) return `${k} is too long`;
    out[k] = v;
  }
  if (out.verdict !== undefined && !VERDICTS.has(out.verdict)) return "unknown verdict";
  return out;
}

/** The feed row of an entry, or undefined when it is not a tool call or misses the filter. */
export function rowOf(index: number, bytes: Uint8Array, filter: FeedFilter): CallRow | undefined {
  let e: Record<string, unknown>;
  try {
    e = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return undefined;
  }
  if (e === null || typeof e !== "object" || e.type !== "tool_call") return undefined;
  const row: CallRow = {
    index,
    time: text(e.time, 40),
    principal: text(e.principal),
    tool: text(e.tool),
    verdict: text(e.verdict, 16),
    failed: texts(e.failed),
    reasons: texts(e.reasons),
    latency: typeof e.latency_us === "number" ? `${(e.latency_us / 1000).toFixed(1)} ms` : "—",
    outcome: text(e.outcome, 40),
  };
  if (filter.verdict !== undefined && row.verdict !== filter.verdict) return undefined;
  if (filter.principal !== undefined && row.principal !== filter.principal) return undefined;
  if (filter.tool !== undefined && row.tool !== filter.tool) return undefined;
  return row;
}

/** The newest calls (newest first) among the last `scan` entries, and the head size read. */
export async function recentCalls(
  ledger: Ledger,
  filter: FeedFilter,
  opts: { scan?: number; limit?: number } = {},
): Promise<{ rows: CallRow[]; size: number; times: string[] }> {
  const { size } = await ledger.head();
  const start = Math.max(0, size - (opts.scan ?? 500));
  const rows: CallRow[] = [];
  const times: string[] = [];
  for await (const e of ledger.entries(start, size, { skipGaps: true })) {
    const any = rowOf(e.index, e.bytes, {});
    if (any) times.push(any.time);
    const row = any && rowOf(e.index, e.bytes, filter);
    if (row) rows.push(row);
  }
  rows.reverse();
  return { rows: rows.slice(0, opts.limit ?? 100), size, times };
}

/** Calls per minute over the last `minutes` minutes, oldest first. */
export function perMinute(times: readonly string[], minutes: number, nowMs = Date.now()): number[] {
  const counts = new Array<number>(minutes).fill(0);
  const end = Math.floor(nowMs / 60_000);
  for (const t of times) {
    const m = Math.floor(Date.parse(t) / 60_000);
    const slot = minutes - 1 - (end - m);
    if (slot >= 0 && slot < minutes) counts[slot]++;
  }
  return counts;
}

/**
 * An SSE stream of calls after index `after`, polling the vault head every
 * `pollMs`; it ends after `lifetimeMs` (the browser reconnects with
 * Last-Event-ID) or when the client goes.
 */
export function callStream(
  ledger: Ledger,
  filter: FeedFilter,
  opts: { after: number; pollMs?: number; lifetimeMs?: number; onClose?: () => void },
): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  let cursor = opts.after;
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;
  const endAt = Date.now() + (opts.lifetimeMs ?? 300_000);
  let lastBeat = Date.now();
  const finish = () => {
    if (closed) return;
    closed = true;
    stopped = true;
    if (timer !== undefined) clearTimeout(timer);
    opts.onClose?.();
  };
  return new ReadableStream<Uint8Array>({
    start(controller) {
      // The browser may leave while a poll is reading KV: after that, nothing is written.
      const send = (text: string): boolean => {
        if (stopped) return false;
        try {
          controller.enqueue(enc.encode(text));
          return true;
        } catch {
          finish();
          return false;
        }
      };
      send(`retry: 2000\n: feed after ${cursor}\n\n`);
      const tick = async () => {
        if (stopped) return;
        try {
          const { size } = await ledger.head();
          if (cursor < size - 1) {
            const end = Math.min(size, cursor + 1 + 200);
            for await (const e of ledger.entries(cursor + 1, end, { skipGaps: true })) {
              const row = rowOf(e.index, e.bytes, filter);
              if (row && !send(`id: ${e.index}\nevent: call\ndata: ${JSON.stringify(row)}\n\n`)) {
                return;
              }
            }
            cursor = end - 1;
            // Advances the browser's Last-Event-ID past filtered-out entries too.
            send(`id: ${cursor}\n: head ${size}\n\n`);
          } else if (Date.now() - lastBeat > 15_000) {
            send(`: keep-alive\n\n`);
            lastBeat = Date.now();
          }
        } catch {
          send(`event: error\ndata: "the vault could not be read"\n\n`);
        }
        if (stopped) return;
        if (Date.now() >= endAt) {
          finish();
          try {
            controller.close();
          } catch {
            // already cancelled
          }
          return;
        }
        timer = setTimeout(tick, opts.pollMs ?? 500);
      };
      tick();
    },
    cancel() {
      finish();
    },
  });
}

/**
 * Live-session gauges shared across instances: each instance publishes how
 * many MCP sessions it is serving under its own KV key (with an expiry, so a
 * dead instance drops out), and `check_vital` sums the few instance keys
 * instead of scanning every stored session record (15k records took 1.3 s and
 * 70 MB to count). A published figure is at most one publish interval old.
 *
 * @module
 */

/** One instance's published figures. */
interface Published {
  readonly streamable: number;
  readonly sse: number;
  readonly atMs: number;
}

/** What `total()` reports. */
export interface LiveSessionTotals {
  /** Sessions served by every instance that published within the window. */
  readonly live_all_instances: number;
  /** Instances that published within the window (this one included once it published). */
  readonly instances: number;
}

/** The gauges of one instance. */
export interface SessionGauges {
  /** Writes this instance's live counts. */
  publish(counts: { streamable: number; sse: number }): Promise<void>;
  /** Sums the counts of every instance that published recently. */
  total(): Promise<LiveSessionTotals>;
}

/** At most this many instance keys are read (a bound, far above any real deployment). */
const MAX_INSTANCES = 1000;

/**
 * Creates the gauges over `kv`. A figure older than `staleMs` is left out, and
 * expires from KV soon after.
 *
 * @example
 * ```ts
 * const kv = await Deno.openKv(":memory:");
 * const gauges = createSessionGauges(kv, { instanceId: "a", staleMs: 60_000 });
 * await gauges.publish({ streamable: 2, sse: 1 });
 * console.log(await gauges.total()); // { live_all_instances: 3, instances: 1 }
 * kv.close();
 * ```
 */
export function createSessionGauges(
  kv: Deno.Kv,
  options: { instanceId: string; staleMs: number; now?: () => number },
): SessionGauges {
  const now = options.now ?? Date.now;
  const prefix = ["agg", "live_sessions"];
  return {
    async publish(counts) {
      const value: Published = { streamable: counts.streamable, sse: counts.sse, atMs: now() };
      await kv.set([...prefix, options.instanceId], value, { expireIn: 2 * options.staleMs });
    },
    async total() {
      const cutoff = now() - options.staleMs;
      let live = 0;
      let instances = 0;
      for await (const e of kv.list<Published>({ prefix }, { limit: MAX_INSTANCES })) {
        if (e.value.atMs < cutoff) continue;
        live += e.value.streamable + e.value.sse;
        instances++;
      }
      return { live_all_instances: live, instances };
    },
  };
}

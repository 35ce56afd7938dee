/**
 * What `check_vital` reports about this process and its stores: KV latency, the vault head,
 * live and published sessions, the last minute's calls and each upstream's connection.
 * @module
 */
import type { Ledger } from "../vault/mod.ts";

/** One upstream's connection state as `check_vital` shows it. */
export type UpstreamVitals = {
  readonly name: string;
  readonly connected: boolean;
  readonly circuit: "closed" | "open" | "half_open";
  /** Seconds until an open circuit tries again. */
  readonly retry_after_s?: number;
  readonly tools: number;
};

/** Sessions this process holds now. */
export type LiveSessions = { readonly live_streamable: number; readonly live_sse: number };

/** What every instance published (usage/gauges.ts): their live sessions and how many they are. */
export type PublishedSessions = { readonly live_all_instances: number; readonly instances: number };

/** The process and store health `check_vital` returns. */
export interface Vitals {
  /** One strong KV read, in milliseconds (three decimals). */
  readonly kv_latency_ms: number;
  readonly vault: { readonly size: number; readonly root: string; readonly origin: string };
  /** Live sessions in this process and every instance's published counts. */
  readonly sessions: LiveSessions & PublishedSessions;
  readonly calls_last_minute: number;
  readonly upstreams: UpstreamVitals[];
}

/** Reads the vitals now (check_vital's answer): what {@link createVitals} returns. */
export type VitalsReader = () => Promise<Vitals>;

/** What the vitals are read from; each a function, so nothing is read until asked. */
export interface VitalsSources {
  readonly kv: Pick<Deno.Kv, "get">;
  readonly ledger: Pick<Ledger, "head">;
  /** The vault's origin line (`warden/<host>`). */
  readonly origin: string;
  /** This process's live session counts. */
  liveSessions(): LiveSessions;
  /** Every instance's published session counts (published first, so this one's are current). */
  publishedSessions(): Promise<PublishedSessions>;
  callsLastMinute(): number;
  upstreams(): UpstreamVitals[];
}

/**
 * Creates the vitals reader.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createVitals } from "./vitals.ts";
 * const kv = await Deno.openKv(":memory:");
 * const vitals = createVitals({
 *   kv,
 *   ledger: { head: () => Promise.resolve({ size: 0, root: "", range: { size: 0, hashes: [] }, last: "" }) },
 *   origin: "warden/test",
 *   liveSessions: () => ({ live_streamable: 0, live_sse: 1 }),
 *   publishedSessions: () => Promise.resolve({ live_all_instances: 3, instances: 2 }),
 *   callsLastMinute: () => 7,
 *   upstreams: () => [],
 * });
 * const v = await vitals();
 * assert.deepEqual(v.sessions, { live_streamable: 0, live_sse: 1, live_all_instances: 3, instances: 2 });
 * assert.equal(v.calls_last_minute, 7);
 * kv.close();
 * ```
 */
export function createVitals(sources: VitalsSources): VitalsReader {
  return async () => {
    const probe = performance.now();
    await sources.kv.get(["health", "probe"]);
    const kvLatencyMs = Math.round((performance.now() - probe) * 1000) / 1000;
    const head = await sources.ledger.head();
    return {
      kv_latency_ms: kvLatencyMs,
      vault: { size: head.size, root: head.root, origin: sources.origin },
      sessions: { ...sources.liveSessions(), ...await sources.publishedSessions() },
      calls_last_minute: sources.callsLastMinute(),
      upstreams: sources.upstreams(),
    };
  };
}

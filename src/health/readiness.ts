/**
 * `GET /health?ready`: whether this instance can serve — the KV answers, the vault head verifies
 * against the stored tree, and the vault agrees with its checkpoint mirror when there is one.
 * @module
 */
import type { Ledger } from "../vault/mod.ts";
import type { Logger } from "../lib/mod.ts";

/** One check's outcome; `ok` false says what failed in `error`. */
export type ReadinessCheck = { readonly ok: boolean } & Readonly<Record<string, unknown>>;

/** The readiness answer: ready only when every check is ok. */
export interface Readiness {
  readonly ready: boolean;
  readonly checks: Readonly<Record<string, ReadinessCheck>>;
}

/** What readiness is checked against. */
export interface ReadinessSources {
  readonly kv: Pick<Deno.Kv, "get">;
  readonly ledger: Pick<Ledger, "verifyHead" | "checkMirror">;
  /** The checkpoint verifying key (reported; the key was loaded before the app started). */
  readonly vkey: string;
  readonly logger: Pick<Logger, "error">;
}

/**
 * Runs the readiness checks. A KV or vault that throws is reported as not ready (and logged),
 * not thrown: the caller answers 503 with the checks.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkReadiness } from "./readiness.ts";
 * const kv = await Deno.openKv(":memory:");
 * const ledger = {
 *   verifyHead: () => Promise.resolve({ ok: true, size: 0 }),
 *   checkMirror: () => Promise.resolve({ ok: true }),
 * };
 * const r = await checkReadiness({ kv, ledger, vkey: "v", logger: { error() {} } });
 * assert.equal(r.ready, true);
 * assert.deepEqual(Object.keys(r.checks), ["signing_key", "kv", "vault"]);
 * kv.close();
 * ```
 */
export async function checkReadiness(sources: ReadinessSources): Promise<Readiness> {
  const started = performance.now();
  const checks: Record<string, ReadinessCheck> = {
    signing_key: { ok: true, vkey: sources.vkey },
  };
  try {
    await sources.kv.get(["health", "probe"]);
    checks.kv = { ok: true, latency_ms: Math.round((performance.now() - started) * 1000) / 1000 };
    const head = await sources.ledger.verifyHead();
    checks.vault = head.ok
      ? { ok: true, size: head.size }
      : { ok: false, size: head.size, error: head.reason };
    // A KV restored from an older copy, or swapped for a fork, is behind or off its mirror.
    const mirror = await sources.ledger.checkMirror();
    if (mirror.where !== undefined) {
      checks.checkpoint_mirror = mirror.ok
        ? { ok: true, file: mirror.where, size: mirror.size ?? 0 }
        : { ok: false, file: mirror.where, size: mirror.size, error: mirror.reason };
    }
  } catch (e) {
    // Kept broad on purpose: readiness is the edge that reports a store failing, whatever the
    // error; the error is logged and the probe answers 503.
    sources.logger.error("readiness check failed", { error: e });
    checks.kv ??= { ok: false, error: "KV is not reachable" };
    checks.vault ??= { ok: false, error: "vault head could not be read" };
  }
  return { ready: Object.values(checks).every((x) => x.ok === true), checks };
}

/**
 * src/health/ (issue 8 §1): vitals and readiness over a real in-memory KV and a real ledger,
 * without HTTP or MCP — a head that no longer matches the tree, or a closed KV, is not ready.
 */
import assert from "node:assert/strict";
import { checkReadiness, createVitals } from "../../src/health/mod.ts";
import { createLedger } from "../../src/vault/mod.ts";
import { generateSigner } from "../../src/merkle/mod.ts";
import { vaultHeadKey } from "../../src/store/mod.ts";

async function vault() {
  const kv = await Deno.openKv(":memory:");
  const signer = await generateSigner("warden/test");
  const ledger = createLedger(kv, { origin: "warden/test", signer });
  return { kv, ledger, vkey: signer.vkey };
}

Deno.test("createVitals() reads the vault head and merges live and published sessions", async () => {
  const { kv, ledger } = await vault();
  try {
    await ledger.append({ type: "t", n: 1 });
    await ledger.append({ type: "t", n: 2 });
    let published = 0;
    const vitals = createVitals({
      kv,
      ledger,
      origin: "warden/test",
      liveSessions: () => ({ live_streamable: 2, live_sse: 0 }),
      publishedSessions: () =>
        Promise.resolve({ live_all_instances: 5 + published++, instances: 2 }),
      callsLastMinute: () => 9,
      upstreams: () => [{ name: "up", connected: false, circuit: "open", tools: 0 }],
    });
    const v = await vitals();
    const head = await ledger.head();
    assert.deepEqual(v.vault, { size: 2, root: head.root, origin: "warden/test" });
    assert.deepEqual(v.sessions, {
      live_streamable: 2,
      live_sse: 0,
      live_all_instances: 5,
      instances: 2,
    });
    assert.equal(v.calls_last_minute, 9);
    assert.equal(v.upstreams[0].circuit, "open");
    assert.ok(v.kv_latency_ms >= 0);
    assert.equal((await vitals()).sessions.live_all_instances, 6, "each read asks again");
  } finally {
    kv.close();
  }
});

Deno.test("checkReadiness() is ready over a sound vault and says why not when the head is off", async () => {
  const { kv, ledger, vkey } = await vault();
  const errors: unknown[] = [];
  const logger = { error: (_m: string, f?: Record<string, unknown>) => void errors.push(f) };
  try {
    await ledger.append({ type: "t", n: 1 });
    const good = await checkReadiness({ kv, ledger, vkey, logger });
    assert.equal(good.ready, true);
    assert.deepEqual(good.checks.vault, { ok: true, size: 1 });
    assert.deepEqual(good.checks.signing_key, { ok: true, vkey });
    // A head record that is not one: the vault check fails (the KV itself still answers).
    await kv.set(vaultHeadKey(), new Uint8Array([9, 9, 9]));
    const bad = await checkReadiness({
      kv,
      ledger: createLedger(kv, {
        origin: "warden/test",
        signer: await generateSigner("warden/test"),
      }),
      vkey,
      logger,
    });
    assert.equal(bad.ready, false);
    assert.equal(bad.checks.kv.ok, true);
    assert.equal(bad.checks.vault.ok, false);
  } finally {
    kv.close();
  }
  // A closed KV: not ready, logged, not thrown.
  const logged = errors.length;
  const closed = await checkReadiness({ kv, ledger, vkey, logger });
  assert.equal(closed.ready, false);
  assert.deepEqual(closed.checks.kv, { ok: false, error: "KV is not reachable" });
  assert.equal(errors.length, logged + 1);
});

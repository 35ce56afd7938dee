// Leases (issue 14): a caller that calls often is admitted from rate tokens and spare slots its
// instance already holds, with no KV commit; the limits stay never exceeded, and what an instance
// holds unused is bounded (⌊limit / 8⌋ per limit), given back, or lapses when its holder dies.
import assert from "node:assert/strict";
import { parsePolicy } from "../../src/governance/mod.ts";
import { peace } from "../../src/governance/floors.ts";
import { makeCall, makeTool } from "../governance/_fixtures.ts";
import { createKvLimiter, leaseCap, TOKEN_TTL_MS } from "../../src/usage/mod.ts";

const START = Date.UTC(2026, 11, 1, 12, 0, 30);

function clock(start = START) {
  let t = start;
  return { now: () => t, advance: (ms: number) => t += ms };
}

async function withTwoHandles(fn: (a: Deno.Kv, b: Deno.Kv, path: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  const a = await Deno.openKv(`${dir}/kv.db`);
  const b = await Deno.openKv(`${dir}/kv.db`);
  try {
    await fn(a, b, `${dir}/kv.db`);
  } finally {
    a.close();
    b.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const alice = { principal: "alice", tool: "calculate" };

Deno.test("leaseCap(): small limits are never leased", () => {
  assert.deepEqual([1, 5, 7, 8, 20, 64, 600].map(leaseCap), [0, 0, 0, 1, 2, 8, 75]);
});

Deno.test("lease: a counted caller at c=1 is admitted from its spare slots, with no commit per call", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const policy = parsePolicy({
      rate_limits: { per_principal_per_minute: 0, max_concurrent_per_principal: 64 },
    });
    const commits = { n: 0 };
    const limiter = createKvLimiter(kv, {
      policy,
      now: clock().now,
      observer: { commit: () => commits.n++ },
    });
    let withoutCommit = 0;
    for (let i = 0; i < 200; i++) {
      const before = commits.n;
      const a = await limiter.acquire(alice);
      assert.equal(a.admitted, true, `call ${i}`);
      if (commits.n === before) withoutCommit++;
      await a.release();
    }
    // The first calls are decided in KV (one commit each, and their releases); then the lease
    // has grown and every admission takes a spare: no KV operation at all.
    assert.ok(commits.n <= 10, `${commits.n} commits for 200 calls`);
    assert.ok(withoutCommit >= 190, `${withoutCommit} of 200 admitted without a commit`);
  } finally {
    kv.close();
  }
});

Deno.test("lease exhaustion: the spares run out, KV decides the rest, and the limit is exact with Retry-After on each refusal", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const policy = parsePolicy({
      rate_limits: { per_principal_per_minute: 0, max_concurrent_per_principal: 64 },
    });
    const limiter = createKvLimiter(kv, { policy, now: clock().now });
    for (let i = 0; i < 20; i++) await (await limiter.acquire(alice)).release();
    // It holds spares now; 70 at once: the spares, then KV, and no more than 64 in all.
    const burst = await Promise.all(Array.from({ length: 70 }, () => limiter.acquire(alice)));
    assert.equal(burst.filter((a) => a.admitted).length, 64);
    for (const refused of burst.filter((a) => !a.admitted)) {
      assert.ok(refused.facts.retryAfterS! >= 1);
      assert.match(
        refused.facts.checks!.map((c) => c.what).join(";"),
        /principal alice has 64 calls in flight/,
      );
    }
    await Promise.all(burst.map((a) => a.release()));
    await limiter.flush();
    assert.equal((await limiter.snapshot(alice)).checks![0].count, 0);
  } finally {
    kv.close();
  }
});

Deno.test("lease exhaustion: rate tokens run out and are taken again, exactly N a minute on one instance", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const policy = parsePolicy({
      rate_limits: { per_principal_per_minute: 64, max_concurrent_per_principal: 0 },
    });
    const commits = { n: 0 };
    const c = clock();
    const limiter = createKvLimiter(kv, {
      policy,
      now: c.now,
      observer: { commit: () => commits.n++ },
    });
    const admitted = [];
    let withoutCommit = 0;
    for (let i = 0; i < 80; i++) {
      const before = commits.n;
      const a = await limiter.acquire(alice);
      admitted.push(a.admitted);
      if (a.admitted && commits.n === before) withoutCommit++;
      // F5 passes every admission, from the lease or not, and fails every refusal.
      const f5 = peace({ call: makeCall(), tool: makeTool(), policy, rates: a.facts });
      assert.equal(f5.pass, a.admitted, `call ${i}: ${f5.reason}`);
      if (!a.admitted) {
        assert.equal(a.facts.retryAfterS, 60, `call ${i}`);
        assert.match(a.facts.checks![0].what, /principal alice made 64 calls in the last minute/);
      }
    }
    assert.equal(admitted.filter(Boolean).length, 64);
    assert.deepEqual(admitted.slice(64), Array(16).fill(false));
    assert.ok(withoutCommit >= 32, `${withoutCommit} of 64 admitted from the lease`);
    // A minute (and a use-by) later the window is empty again.
    c.advance(60_000 + TOKEN_TTL_MS);
    assert.equal((await limiter.acquire(alice)).admitted, true);
  } finally {
    kv.close();
  }
});

Deno.test("lease expiry: tokens unused past their use-by are given back, and two instances then split N exactly", async () => {
  await withTwoHandles(async (kvA, kvB) => {
    const policy = parsePolicy({
      rate_limits: { per_principal_per_minute: 64, max_concurrent_per_principal: 0 },
    });
    const c = clock();
    const one = createKvLimiter(kvA, { policy, now: c.now });
    const two = createKvLimiter(kvB, { policy, now: c.now });
    for (let i = 0; i < 14; i++) assert.equal((await one.acquire(alice)).admitted, true);
    // Its lease grew 1, 2, 4, 8 (calls 2, 4, 7, 12): 6 of the last 8 tokens are unused.
    const held = (await two.snapshot(alice)).checks![0].count - 14;
    assert.ok(held >= 1 && held <= leaseCap(64), `one holds ${held} unused tokens`);
    // Two is refused early by at most what one holds (the stated bound), never admits over N.
    let byTwo = 0;
    for (let i = 0; i < 60; i++) if ((await two.acquire(alice)).admitted) byTwo++;
    assert.equal(byTwo, 50 - held);
    // One's tokens pass their use-by unused: its sweep gives them back, and two takes them.
    c.advance(TOKEN_TTL_MS);
    await one.sweep();
    assert.equal((await two.snapshot(alice)).checks![0].count, 64 - held);
    for (let i = 0; i < 20; i++) if ((await two.acquire(alice)).admitted) byTwo++;
    assert.equal(14 + byTwo, 64, "exactly N between the two");
  });
});

Deno.test("lease expiry: idle spare slots are given back by the sweep, and the other instance gets all N", async () => {
  await withTwoHandles(async (kvA, kvB) => {
    const policy = parsePolicy({
      rate_limits: { per_principal_per_minute: 0, max_concurrent_per_principal: 16 },
    });
    const one = createKvLimiter(kvA, { policy, idleMs: 50 });
    const two = createKvLimiter(kvB, { policy });
    for (let i = 0; i < 20; i++) await (await one.acquire(alice)).release();
    const spares = (await two.snapshot(alice)).checks![0].count;
    assert.ok(spares >= 1 && spares <= leaseCap(16), `one keeps ${spares} spare slots`);
    const early = await Promise.all(Array.from({ length: 16 }, () => two.acquire(alice)));
    assert.equal(early.filter((a) => a.admitted).length, 16 - spares, "refused early by the bound");
    await Promise.all(early.map((a) => a.release()));
    await two.flush();
    await new Promise((r) => setTimeout(r, 60));
    await one.sweep();
    await one.flush();
    assert.equal((await two.snapshot(alice)).checks![0].count, 0);
    const all = await Promise.all(Array.from({ length: 17 }, () => two.acquire(alice)));
    assert.equal(all.filter((a) => a.admitted).length, 16);
    await Promise.all(all.map((a) => a.release()));
    await two.flush();
  });
});

Deno.test("lease: two instances alternating split N a minute exactly, each never over", async () => {
  await withTwoHandles(async (kvA, kvB) => {
    const policy = parsePolicy({
      rate_limits: { per_principal_per_minute: 64, max_concurrent_per_principal: 32 },
    });
    const c = clock();
    const commits = { n: 0 };
    const observer = { commit: () => commits.n++ };
    const one = createKvLimiter(kvA, { policy, now: c.now, observer });
    const two = createKvLimiter(kvB, { policy, now: c.now, observer });
    let admitted = 0;
    for (let i = 0; i < 200; i++) {
      const a = await (i % 2 ? one : two).acquire(alice);
      if (a.admitted) admitted++;
      assert.ok(admitted <= 64, `call ${i}: ${admitted} admitted`);
      await a.release();
    }
    assert.equal(admitted, 64);
    assert.ok(commits.n < 64, `${commits.n} commits for 64 admissions`);
    await one.flush();
    await two.flush();
  });
});

Deno.test("lease: a subject with a call budget is never leased (the budget stays exact per call)", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const policy = parsePolicy({
      rate_limits: { per_principal_per_minute: 64, max_concurrent_per_principal: 64 },
      budgets: { calls_per_day: 30 },
    });
    const commits = { n: 0 };
    const limiter = createKvLimiter(kv, {
      policy,
      now: clock().now,
      observer: { commit: () => commits.n++ },
    });
    let admitted = 0;
    for (let i = 0; i < 40; i++) {
      const a = await limiter.acquire(alice);
      if (a.admitted) admitted++;
      await a.release();
    }
    assert.equal(admitted, 30);
    // One admission commit per admitted call (releases carry no extra when kept, at most one each).
    assert.ok(commits.n >= 30, `${commits.n} commits`);
    const day = new Date(START).toISOString().slice(0, 10);
    const counted = await kv.get(["usage_budget", "p:alice", `d${day}`]);
    assert.equal(counted.value, 30);
  } finally {
    kv.close();
  }
});

Deno.test("lease: a subject with one limit too small to lease takes no tokens for the others", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const policy = parsePolicy({
      rate_limits: { per_principal_per_minute: 64, max_concurrent_per_principal: 4 },
    });
    const limiter = createKvLimiter(kv, { policy, now: clock().now });
    for (let i = 0; i < 30; i++) await (await limiter.acquire(alice)).release();
    // Every call is decided in KV (no spare slot under a limit of 4), so no token is held unused.
    assert.equal((await limiter.snapshot(alice)).checks![0].count, 30);
  } finally {
    kv.close();
  }
});

Deno.test("lease: a holder killed with SIGKILL keeps nothing for long: its tokens leave the log by their use-by + 60 s, its slots lapse with its lease", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/kv.db`;
  const rules = { per_principal_per_minute: 64, max_concurrent_per_principal: 64 };
  const leaseMs = 30_000;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./_lease_holder.ts", import.meta.url).pathname,
      path,
      JSON.stringify({ rate_limits: rules }),
      String(leaseMs),
      "20",
      "10",
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
  }
  const report = JSON.parse(out);
  assert.deepEqual(report, { admitted: 30, held: 10 });
  child.kill("SIGKILL");
  await child.status;
  await reader.cancel();
  const kv = await Deno.openKv(path);
  try {
    const policy = parsePolicy({ rate_limits: rules });
    // Now: the dead holder's calls, and what it held unused, still count (at most the cap more).
    const now = createKvLimiter(kv, { policy, leaseMs });
    const [rate, inFlight] = (await now.snapshot(alice)).checks!;
    assert.ok(rate.count >= 30 && rate.count <= 30 + leaseCap(64), `rate ${rate.count}`);
    assert.ok(
      inFlight.count >= 10 && inFlight.count <= 10 + leaseCap(64),
      `in flight ${inFlight.count}`,
    );
    // By the window's end after the tokens' use-by, and the holder's lease, all of it is back.
    const later = createKvLimiter(kv, {
      policy,
      leaseMs,
      now: () => Date.now() + 60_000 + TOKEN_TTL_MS + leaseMs,
    });
    const snap = (await later.snapshot(alice)).checks!;
    assert.deepEqual(snap.map((c) => c.count), [0, 0]);
    const burst = await Promise.all(Array.from({ length: 70 }, () => later.acquire(alice)));
    assert.equal(burst.filter((a) => a.admitted).length, 64);
    await Promise.all(burst.map((a) => a.release()));
    await later.flush();
  } finally {
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
});

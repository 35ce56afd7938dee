import assert from "node:assert/strict";
import { evaluatePre, parsePolicy } from "../../src/governance/mod.ts";
import { peace } from "../../src/governance/floors.ts";
import { addCost, createKvLimiter } from "../../src/usage/mod.ts";
import { createLedger } from "../../src/vault/mod.ts";
import { generateSigner } from "../../src/merkle/mod.ts";
import { makeCall, makeTool } from "../governance/_fixtures.ts";

const START = Date.UTC(2026, 11, 1, 12, 0, 30);

function clock(start = START) {
  let t = start;
  return { now: () => t, advance: (ms: number) => t += ms };
}

async function withTwoHandles(fn: (a: Deno.Kv, b: Deno.Kv) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  const a = await Deno.openKv(`${dir}/kv.db`);
  const b = await Deno.openKv(`${dir}/kv.db`);
  try {
    await fn(a, b);
  } finally {
    a.close();
    b.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("createKvLimiter() admits exactly N per minute for a principal across two KV handles, and the next when the oldest leaves the window", async () => {
  await withTwoHandles(async (kvA, kvB) => {
    const policy = parsePolicy({
      rate_limits: { per_principal_per_minute: 5, max_concurrent_per_principal: 0 },
    });
    const c = clock();
    const one = createKvLimiter(kvA, { policy, now: c.now });
    const two = createKvLimiter(kvB, { policy, now: c.now });
    const results = await Promise.all(
      Array.from(
        { length: 12 },
        (_, i) => (i % 2 ? one : two).acquire({ principal: "alice", tool: "calculate" }),
      ),
    );
    assert.equal(results.filter((r) => r.admitted).length, 5);
    const refused = results.find((r) => !r.admitted)!;
    assert.equal(refused.facts.retryAfterS, 60);
    assert.match(refused.facts.checks![0].what, /principal alice made 5 calls in the last minute/);
    // Bob has his own budget.
    assert.equal((await one.acquire({ principal: "bob", tool: "calculate" })).admitted, true);
    c.advance(59_999);
    assert.equal((await two.acquire({ principal: "alice", tool: "calculate" })).admitted, false);
    c.advance(1);
    assert.equal((await two.acquire({ principal: "alice", tool: "calculate" })).admitted, true);
    // All five left the window together, so five more fit, and no sixth.
    const again = [];
    for (let i = 0; i < 5; i++) {
      again.push((await one.acquire({ principal: "alice", tool: "calculate" })).admitted);
    }
    assert.deepEqual(again, [true, true, true, true, false]);
  });
});

Deno.test("createKvLimiter(): F5 fails exactly on the refused calls and names the limit", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const policy = parsePolicy({ rate_limits: { per_tool_per_minute: 1 } });
    const limiter = createKvLimiter(kv, { policy, now: clock().now });
    const first = await limiter.acquire({ principal: "alice", tool: "get_time" });
    const second = await limiter.acquire({ principal: "bob", tool: "get_time" });
    const input = { call: makeCall(), tool: makeTool(), policy };
    assert.equal(peace({ ...input, rates: first.facts }).pass, true);
    const f5 = peace({ ...input, rates: second.facts });
    assert.equal(f5.pass, false);
    assert.equal(f5.details?.retry_after_s, 60);
    assert.match(f5.reason, /tool get_time was called 1 times in the last minute \(limit 1\)/);
    assert.equal(
      evaluatePre({ ...input, rates: second.facts }).find((f) => f.id === "F5")?.pass,
      false,
    );
  } finally {
    kv.close();
  }
});

Deno.test("createKvLimiter() limits unauthenticated callers per client IP; loopback is exempt by default", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const c = clock();
    const strict = createKvLimiter(kv, {
      policy: parsePolicy({ rate_limits: { per_ip_per_minute: 3, exempt_loopback: false } }),
      now: c.now,
    });
    const call = (clientIp: string) =>
      strict.acquire({ principal: "anonymous", tool: "calculate", clientIp });
    const flood = [];
    for (let i = 0; i < 6; i++) flood.push((await call("203.0.113.7")).admitted);
    assert.deepEqual(flood, [true, true, true, false, false, false]);
    assert.equal((await call("203.0.113.8")).admitted, true);

    const commits = { n: 0 };
    const defaults = createKvLimiter(kv, {
      policy: parsePolicy({}),
      now: c.now,
      observer: { commit: () => commits.n++ },
    });
    // Unthrottled on loopback means nothing counted: 64 at once (over the default 32 in flight)
    // are all admitted, and no counter is written for them.
    const burst = await Promise.all(
      Array.from(
        { length: 64 },
        () => defaults.acquire({ principal: "anonymous", tool: "t", clientIp: "127.0.0.1" }),
      ),
    );
    assert.equal(burst.filter((a) => a.admitted).length, 64);
    await Promise.all(burst.map((a) => a.release()));
    assert.equal(commits.n, 0, "no KV commit for an exempt loopback caller");
    for (let i = 0; i < 200; i++) {
      const a = await defaults.acquire({
        principal: "anonymous",
        tool: "t",
        clientIp: "127.0.0.1",
      });
      assert.equal(a.admitted, true, `loopback call ${i}`);
      await a.release();
    }
    const remote = [];
    for (let i = 0; i < 121; i++) {
      const a = await defaults.acquire({
        principal: "anonymous",
        tool: "t",
        clientIp: "198.51.100.1",
      });
      remote.push(a.admitted);
      await a.release();
    }
    assert.equal(remote.filter(Boolean).length, 120, "the default protects a public deployment");
  } finally {
    kv.close();
  }
});

Deno.test("createKvLimiter() limits calls in flight across handles and frees the slot on release", async () => {
  await withTwoHandles(async (kvA, kvB) => {
    const policy = parsePolicy({
      rate_limits: { per_principal_per_minute: 0, max_concurrent_per_principal: 2 },
    });
    const one = createKvLimiter(kvA, { policy });
    const two = createKvLimiter(kvB, { policy });
    const s = { principal: "alice", tool: "slow" };
    const a = await one.acquire(s);
    const b = await two.acquire(s);
    const c = await one.acquire(s);
    assert.deepEqual([a.admitted, b.admitted, c.admitted], [true, true, false]);
    assert.match(c.facts.checks![0].what, /principal alice has 2 calls in flight/);
    await b.release();
    await b.release(); // idempotent
    const d = await one.acquire(s);
    assert.equal(d.admitted, true);
    {
      using _e = await two.acquire({ principal: "bob", tool: "slow" });
    }
    await a.release();
    await d.release();
    assert.equal((await two.snapshot(s)).checks![0].count, 0);
  });
});

Deno.test("createKvLimiter() leases in-flight counts: a crashed instance's slots lapse", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const c = clock();
    const policy = parsePolicy({ rate_limits: { max_concurrent_per_principal: 1 } });
    const limiter = createKvLimiter(kv, { policy, now: c.now, leaseMs: 30_000 });
    assert.equal((await limiter.acquire({ principal: "p", tool: "t" })).admitted, true);
    assert.equal((await limiter.acquire({ principal: "p", tool: "t" })).admitted, false);
    c.advance(30_001);
    assert.equal((await limiter.acquire({ principal: "p", tool: "t" })).admitted, true);
  } finally {
    kv.close();
  }
});

Deno.test("createKvLimiter() enforces per-upstream limits and per-principal overrides", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const policy = parsePolicy({
      rate_limits: {
        per_principal_per_minute: 100,
        upstreams: { github: { per_minute: 2 } },
        principals: { ci: { per_minute: 1 } },
      },
    });
    const limiter = createKvLimiter(kv, { policy, now: clock().now });
    const up = async (principal: string) =>
      (await limiter.acquire({ principal, tool: "github__search", upstream: "github" })).admitted;
    assert.deepEqual([await up("a"), await up("b"), await up("c")], [true, true, false]);
    const ci = async () => (await limiter.acquire({ principal: "ci", tool: "calculate" })).admitted;
    assert.deepEqual([await ci(), await ci()], [true, false]);
  } finally {
    kv.close();
  }
});

Deno.test("createKvLimiter() enforces daily call and cost budgets, with Retry-After at the next UTC midnight", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const c = clock(Date.UTC(2026, 11, 1, 23, 0, 0));
    const calls = createKvLimiter(kv, {
      policy: parsePolicy({ budgets: { calls_per_day: 2 } }),
      now: c.now,
    });
    const s = { principal: "alice", tool: "t" };
    assert.equal((await calls.acquire(s)).admitted, true);
    c.advance(120_000);
    assert.equal((await calls.acquire(s)).admitted, true);
    c.advance(120_000);
    const refused = await calls.acquire(s);
    assert.equal(refused.admitted, false);
    assert.equal(refused.facts.retryAfterS, 3600 - 240);
    c.advance(3600_000);
    assert.equal((await calls.acquire(s)).admitted, true, "a new UTC day");

    const cost = createKvLimiter(kv, {
      policy: parsePolicy({ budgets: { cost_per_month: 100 } }),
      now: c.now,
    });
    assert.equal((await cost.acquire({ principal: "bob", tool: "t" })).admitted, true);
    await addCost(kv, { principal: "bob", units: 60, now: c.now() });
    assert.equal((await cost.acquire({ principal: "bob", tool: "t" })).admitted, true);
    await addCost(kv, { principal: "bob", units: 60, now: c.now() });
    const over = await cost.acquire({ principal: "bob", tool: "t" });
    assert.equal(over.admitted, false);
    assert.match(over.facts.checks!.at(-1)!.what, /principal bob spent 120 cost units this month/);
  } finally {
    kv.close();
  }
});

Deno.test("createKvLimiter() decides one process's concurrent calls in batches: exact limits, few commits, no conflicts among them", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const policy = parsePolicy({
      rate_limits: { per_principal_per_minute: 20, max_concurrent_per_principal: 8 },
    });
    const commits = { ok: 0, conflicts: 0 };
    const limiter = createKvLimiter(kv, {
      policy,
      now: clock().now,
      observer: { commit: (_ms, ok) => ok ? commits.ok++ : commits.conflicts++ },
    });
    const results = await Promise.all(
      Array.from({ length: 32 }, () => limiter.acquire({ principal: "alice", tool: "calculate" })),
    );
    // Exactly the concurrency limit is admitted, the rest refused naming it.
    const admitted = results.filter((r) => r.admitted);
    assert.equal(admitted.length, 8);
    assert.match(
      results.find((r) => !r.admitted)!.facts.checks!.map((c) => c.what).join(";"),
      /principal alice has 8 calls in flight/,
    );
    // One call per commit would be 8 commits here, conflicting with each other.
    assert.ok(commits.ok <= 3, `admissions took ${commits.ok} commits`);
    assert.equal(commits.conflicts, 0);
    // Releases coalesce too, and free every slot.
    const before = commits.ok;
    await Promise.all(admitted.map((a) => a.release()));
    assert.ok(commits.ok - before <= 3, `releases took ${commits.ok - before} commits`);
    const next = await Promise.all(
      Array.from({ length: 8 }, () => limiter.acquire({ principal: "alice", tool: "calculate" })),
    );
    assert.equal(next.filter((r) => r.admitted).length, 8);
    // 16 counted in the minute's log: 4 more fit, then the per-minute limit refuses.
    await Promise.all(next.map((a) => a.release()));
    const more = await Promise.all(
      Array.from({ length: 6 }, () => limiter.acquire({ principal: "alice", tool: "calculate" })),
    );
    assert.equal(more.filter((r) => r.admitted).length, 4);
    assert.match(
      more.find((r) => !r.admitted)!.facts.checks![0].what,
      /principal alice made 20 calls in the last minute/,
    );
    await Promise.all(more.filter((r) => r.admitted).map((a) => a.release()));
  } finally {
    kv.close();
  }
});

Deno.test("createKvLimiter() with the vault as carrier: one limiter commit per call, the release durable with the call's seal, exact across instances; a dead instance's share lapses and is swept", async () => {
  await withTwoHandles(async (kvA, kvB) => {
    const policy = parsePolicy({
      rate_limits: { per_principal_per_minute: 0, max_concurrent_per_principal: 1 },
    });
    const c = clock();
    const ledger = createLedger(kvA, {
      origin: "warden/test",
      signer: await generateSigner("warden/test"),
    });
    const commits = { one: 0, two: 0 };
    const one = createKvLimiter(kvA, {
      policy,
      now: c.now,
      leaseMs: 30_000,
      carrier: ledger,
      observer: { commit: () => commits.one++ },
    });
    const two = createKvLimiter(kvB, {
      policy,
      now: c.now,
      leaseMs: 30_000,
      observer: { commit: () => commits.two++ },
    });
    const s = { principal: "alice", tool: "t" };
    for (let i = 0; i < 20; i++) {
      const a = await one.acquire(s);
      assert.equal(a.admitted, true, `call ${i}`);
      // As the pipeline does: release, then seal the call (the seal's commit carries the release).
      const released = a.release();
      await ledger.append({ type: "test_call", i });
      await released;
      // The other instance sees the slot free as soon as the call is sealed.
      assert.equal((await two.snapshot(s)).checks![0].count, 0, `after call ${i}`);
    }
    assert.equal(commits.one, 20, "one durable limiter commit per call: the admission");
    // Without a carrier the release is a commit of its own (coalesced).
    const b1 = await two.acquire(s);
    assert.equal((await one.acquire(s)).admitted, false, "limit 1 across both instances");
    await b1.release();
    assert.equal(commits.two, 2);
    // `two` takes the slot and dies holding it: `one` is refused until two's lease lapses.
    assert.equal((await two.acquire(s)).admitted, true);
    assert.equal((await one.acquire(s)).admitted, false);
    c.advance(30_001);
    // The dead holder's release counter and entry go with the sweep (ours, still in use, stay).
    assert.equal(await one.sweep(), 1);
    const left = [];
    for await (const e of kvA.list({ prefix: ["usage_released"] })) left.push(e.key);
    assert.equal(left.length, 1);
    const d = await one.acquire(s);
    assert.equal(d.admitted, true, "the dead instance's slot lapsed");
    d.release();
    await ledger.append({ type: "test_call", i: 20 });
    await one.flush();
    assert.equal((await two.snapshot(s)).checks![0].count, 0);
  });
});

Deno.test("createKvLimiter() with the vault as carrier: a release no seal follows is committed once the vault goes idle", async () => {
  await withTwoHandles(async (kvA, kvB) => {
    const policy = parsePolicy({
      rate_limits: { per_principal_per_minute: 0, max_concurrent_per_principal: 1 },
    });
    const ledger = createLedger(kvA, {
      origin: "warden/test",
      signer: await generateSigner("warden/test"),
    });
    await ledger.append({ type: "warm" });
    const one = createKvLimiter(kvA, { policy, carrier: ledger });
    const two = createKvLimiter(kvB, { policy });
    const s = { principal: "alice", tool: "t" };
    const a = await one.acquire(s);
    // A vault commit already built (without this release) is in flight when the call ends.
    const sealing = ledger.append({ type: "other_call" });
    const released = a.release();
    await sealing;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outcome = await Promise.race([
      released.then(() => "released"),
      new Promise((r) => timer = setTimeout(() => r("stranded"), 2000)),
    ]);
    clearTimeout(timer);
    assert.equal(outcome, "released");
    assert.equal((await two.acquire(s)).admitted, true, "the other instance sees the slot free");
  });
});

// Leases across two server processes on one KV (issue 14): limits large enough to be leased
// (⌊limit / 8⌋ ≥ 1) are still never exceeded between the processes and, once each has been
// refused, split exactly; most admissions cost no limiter commit (read from each /metrics).
import assert from "node:assert/strict";
import { connectStreamable } from "../_helpers/client.ts";
import { spawnServer, startServer } from "../_helpers/server.ts";
import { postFrom } from "./_from.ts";
import { twoServers } from "./_two_servers.ts";

const TOKEN = "a-test-token-of-24-chars";

const commitsOf = async (base: string) => {
  const text = await (await fetch(`${base}/metrics`)).text();
  const m = /^warden_kv_commit_duration_seconds_count\{outcome="ok"\} (\d+)$/m.exec(text);
  return m ? Number(m[1]) : 0;
};

const call = { tool: "calculate", arguments: { expression: "1+1" } };

Deno.test("leases across two processes on one KV: a principal limited to 64/min gets exactly 64 between them, never more, mostly without a limiter commit", async () => {
  const servers = await twoServers({
    rate_limits: { per_principal_per_minute: 64, max_concurrent_per_principal: 32 },
  }, ["--token", TOKEN]);
  try {
    const [a, b] = servers.urls;
    const headers = { authorization: `Bearer ${TOKEN}` };
    const before = (await commitsOf(a)) + (await commitsOf(b));
    let admitted = 0;
    for (let i = 0; i < 120; i++) {
      const r = await postFrom("127.0.0.2", `${i % 2 ? a : b}/invoke`, call, headers);
      if (r.status === 200) admitted++;
      else {
        assert.equal(r.status, 429, r.body);
        const retry = Number(r.headers["retry-after"]);
        assert.ok(retry >= 1 && retry <= 62, `Retry-After ${r.headers["retry-after"]}`);
      }
      assert.ok(admitted <= 64, `call ${i}: ${admitted} admitted`);
    }
    assert.equal(admitted, 64);
    const spent = (await commitsOf(a)) + (await commitsOf(b)) - before;
    assert.ok(spent < 64 / 2, `${spent} limiter commits for 64 admitted calls`);
  } finally {
    await servers.stop();
  }
});

Deno.test("leases through the server: a counted caller at c=1 (the bench's policy) costs almost no limiter commit per call", async () => {
  await using server = await startServer({
    policy: {
      rate_limits: {
        exempt_loopback: false,
        per_ip_per_minute: 0,
        max_concurrent_per_principal: 64,
      },
    },
  });
  {
    const a = server.url;
    const { client } = await connectStreamable(a);
    const before = await commitsOf(a);
    const n = 60;
    for (let i = 0; i < n; i++) {
      // deno-lint-ignore no-explicit-any -- the envelope is probed field by field
      const r: any = await client.callTool({ name: "calculate", arguments: { expression: "1+2" } });
      assert.equal(r.structuredContent.policy_verdict, "SEAL", JSON.stringify(r.structuredContent));
    }
    const spent = (await commitsOf(a)) - before;
    assert.ok(spent <= 10, `${spent} limiter commits for ${n} calls`);
    await client.close();
  }
});

Deno.test("leases across two processes: a server killed with SIGKILL holding calls and a spare slot gives them back when its lease lapses", async () => {
  const dir = await Deno.makeTempDir();
  const policyFile = `${dir}/policy.json`;
  await Deno.writeTextFile(
    policyFile,
    JSON.stringify({
      rate_limits: {
        exempt_loopback: false,
        per_ip_per_minute: 0,
        max_concurrent_per_principal: 16,
      },
    }),
  );
  // The in-flight lease is the tool timeout plus the request timeout: 3 s here.
  const common = [
    "--kv",
    `${dir}/shared.db`,
    "--policy",
    policyFile,
    "--tool-timeout",
    "1500",
    "--request-timeout",
    "1500",
  ];
  const a = await spawnServer(common);
  const b = await spawnServer(common);
  const sleep = (ms: number) => ({ tool: "test_sleep", arguments: { ms } });
  try {
    // Fast sequential calls: `a` comes to keep a spare slot (at most ⌊16 / 8⌋ = 2).
    for (let i = 0; i < 20; i++) {
      assert.equal((await postFrom("127.0.0.2", `${a.url}/invoke`, call)).status, 200);
    }
    // Three calls in flight on `a` when it dies (the first takes the spare).
    const dying = Array.from(
      { length: 3 },
      () => postFrom("127.0.0.2", `${a.url}/invoke`, sleep(1000)).catch(() => undefined),
    );
    await new Promise((r) => setTimeout(r, 200));
    // More fast calls meanwhile: their slots stay with `a` as spares.
    for (let i = 0; i < 10; i++) {
      assert.equal((await postFrom("127.0.0.2", `${a.url}/invoke`, call)).status, 200);
    }
    await a.stop("SIGKILL");
    await Promise.all(dying);
    const killed = Date.now();
    // Its three calls and its spare still count: `b` admits 16 − 3 − spares.
    const early = await Promise.all(
      Array.from({ length: 16 }, () => postFrom("127.0.0.2", `${b.url}/invoke`, sleep(200))),
    );
    const admittedEarly = early.filter((r) => r.status === 200).length;
    assert.ok(admittedEarly >= 11 && admittedEarly <= 12, `b admitted ${admittedEarly} of 16`);
    for (const r of early.filter((r) => r.status !== 200)) {
      assert.equal(r.status, 429);
      assert.ok(Number(r.headers["retry-after"]) >= 1);
    }
    // Once `a`'s lease lapsed, all 16 are `b`'s.
    await new Promise((r) => setTimeout(r, Math.max(0, killed + 3500 - Date.now())));
    const later = await Promise.all(
      Array.from({ length: 17 }, () => postFrom("127.0.0.2", `${b.url}/invoke`, sleep(200))),
    );
    assert.equal(later.filter((r) => r.status === 200).length, 16);
  } finally {
    await b.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

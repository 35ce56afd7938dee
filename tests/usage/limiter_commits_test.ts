// deno-lint-ignore-file no-explicit-any -- the envelope is probed field by field
// The limiter's durable commits per call through a whole server (issue 14 §1): with calls in
// flight counted (an anonymous caller not exempt as loopback), N sequential MCP calls cost N
// limiter commits — the admissions — read from the server's own /metrics; every release rode
// along the vault's commit of its call, and the slot is free for the next call each time.
import assert from "node:assert/strict";
import { connectStreamable } from "../_helpers/client.ts";
import { startServer } from "../_helpers/server.ts";

const commitsOf = async (base: string) => {
  const text = await (await fetch(`${base}/metrics`)).text();
  const m = /^warden_kv_commit_duration_seconds_count\{outcome="ok"\} (\d+)$/m.exec(text);
  return m ? Number(m[1]) : 0;
};

Deno.test("limiter through the server: one durable limiter commit per call at c=1, with one slot", async () => {
  await using server = await startServer({
    policy: {
      // One call in flight allowed: each call can only be admitted once the previous was released.
      rate_limits: {
        exempt_loopback: false,
        per_ip_per_minute: 0,
        max_concurrent_per_principal: 1,
      },
    },
  });
  const { client } = await connectStreamable(server.url);
  const before = await commitsOf(server.url);
  const n = 40;
  for (let i = 0; i < n; i++) {
    const r: any = await client.callTool({ name: "calculate", arguments: { expression: "1+2" } });
    assert.equal(r.structuredContent.policy_verdict, "SEAL", JSON.stringify(r.structuredContent));
  }
  const spent = (await commitsOf(server.url)) - before;
  assert.equal(spent, n, `${spent} limiter commits for ${n} calls`);
  await client.close();
});

// deno-lint-ignore-file no-explicit-any -- envelopes are probed field by field
import assert from "node:assert/strict";
import { connectStreamable } from "../_helpers/client.ts";
import { startServer } from "../_helpers/server.ts";

Deno.test("per-IP limits reach MCP tools/call: the client IP (X-Forwarded-For from a trusted proxy) is the unauthenticated caller's key", async () => {
  const server = await startServer({
    args: ["--trusted-proxies", "127.0.0.1"],
    policy: { rate_limits: { per_ip_per_minute: 2, exempt_loopback: false } },
  });
  const a = await connectStreamable(server.url, { headers: { "x-forwarded-for": "203.0.113.1" } });
  const b = await connectStreamable(server.url, { headers: { "x-forwarded-for": "203.0.113.2" } });
  try {
    const calc = (c: typeof a) =>
      c.client.callTool({ name: "calculate", arguments: { expression: "2*3" } }) as Promise<any>;
    const verdicts = [];
    for (let i = 0; i < 3; i++) verdicts.push((await calc(a)).structuredContent.policy_verdict);
    assert.deepEqual(verdicts, ["SEAL", "SEAL", "SABAR"]);
    const refused = await calc(a);
    assert.ok(refused.structuredContent._constitutional.retry_after_s >= 1);
    assert.match(
      JSON.stringify(refused.structuredContent._constitutional.reasons),
      /client 203\.0\.113\.1 made 2 calls/,
    );
    assert.equal((await calc(b)).structuredContent.policy_verdict, "SEAL");
  } finally {
    await a.client.close();
    await b.client.close();
    await server.close();
  }
});

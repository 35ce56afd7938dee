import assert from "node:assert/strict";
import { postFrom } from "./_from.ts";
import { twoServers } from "./_two_servers.ts";

const TOKEN = "a-test-token-of-24-chars";

const call = { tool: "calculate", arguments: { expression: "1+1" } };

Deno.test("rate limits across two processes on one KV: an IP limited to N/min gets exactly N, another IP is unaffected, refusals carry Retry-After", async () => {
  const servers = await twoServers({
    rate_limits: { per_ip_per_minute: 4, exempt_loopback: false, max_concurrent_per_principal: 0 },
  });
  try {
    const [a, b] = servers.urls;
    // A flood from 127.0.0.2, spread over both servers, in parallel.
    const flood = await Promise.all(
      Array.from({ length: 12 }, (_, i) => postFrom("127.0.0.2", `${i % 2 ? a : b}/invoke`, call)),
    );
    const statuses = flood.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 200).length, 4, `statuses ${statuses}`);
    assert.equal(statuses.filter((s) => s === 429).length, 8, `statuses ${statuses}`);
    for (const r of flood.filter((r) => r.status === 429)) {
      const retry = Number(r.headers["retry-after"]);
      assert.ok(retry >= 1 && retry <= 60, `Retry-After ${r.headers["retry-after"]}`);
      assert.equal(JSON.parse(r.body)._constitutional.retry_after_s, retry);
    }
    // Another client IP has its own allowance on both servers.
    const other = [];
    for (const url of [a, b, a, b]) {
      other.push((await postFrom("127.0.0.3", `${url}/invoke`, call)).status);
    }
    assert.deepEqual(other, [200, 200, 200, 200]);
  } finally {
    await servers.stop();
  }
});

Deno.test("rate limits across two processes on one KV: a principal limited to N/min gets exactly N", async () => {
  const servers = await twoServers({
    rate_limits: { per_principal_per_minute: 5, max_concurrent_per_principal: 0 },
  }, ["--token", TOKEN]);
  try {
    const [a, b] = servers.urls;
    const headers = { authorization: `Bearer ${TOKEN}` };
    const results = await Promise.all(
      Array.from({ length: 14 }, (_, i) =>
        // Several source IPs: an authenticated principal is limited as itself, not per IP.
        postFrom(`127.0.0.${2 + (i % 3)}`, `${i % 2 ? a : b}/invoke`, call, headers)),
    );
    const statuses = results.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 200).length, 5, `statuses ${statuses}`);
    assert.equal(statuses.filter((s) => s === 429).length, 9, `statuses ${statuses}`);
  } finally {
    await servers.stop();
  }
});

// deno-lint-ignore-file no-explicit-any -- results are probed field by field
/**
 * Health and breakers: a circuit breaker per upstream opens after consecutive
 * failures, answers SABAR with retry_after_s while open, half-opens after its
 * cool-down and closes when the upstream answers again. Killing an upstream
 * in the middle of a load costs its callers an answer, never a hang, and
 * leaves the other upstreams alone.
 */
import assert from "node:assert/strict";
import { createBreaker } from "../../src/gateway/mod.ts";
import { startServer, type TestServer, UNTHROTTLED_POLICY } from "../_helpers/server.ts";
import { type HttpUpstream, startEverything } from "../_helpers/upstreams.ts";

Deno.test("createBreaker() opens after N failures, half-opens after the cool-down, closes on success", () => {
  let now = 1_000_000;
  const b = createBreaker({ failures: 2, coolDownMs: 5_000, now: () => now });
  assert.equal(b.check().open, false);
  b.begin()(false);
  assert.equal(b.check().open, false, "one failure is not enough");
  b.begin()(false);
  assert.deepEqual(b.check(), { open: true, retryAfterS: 5 });
  assert.equal(b.snapshot().state, "open");
  now += 5_000;
  assert.equal(b.snapshot().state, "half_open");
  const probe = b.begin();
  assert.equal(b.check().open, true, "only one probe while half-open");
  probe(false);
  assert.equal(b.check().open, true, "a failed probe opens it again");
  now += 5_000;
  b.begin()(true);
  assert.deepEqual(b.check(), { open: false });
  assert.equal(b.snapshot().consecutive_failures, 0);
});

async function invoke(server: TestServer, tool: string, args: unknown): Promise<any> {
  const res = await fetch(`${server.url}/invoke`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ tool, arguments: args }),
    signal: AbortSignal.timeout(30_000),
  });
  return await res.json();
}

Deno.test({
  name:
    "gateway: killing an upstream mid-load gives SABAR with retry_after_s, no hang; the breaker closes when it returns",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    let victim: HttpUpstream | undefined;
    let other: HttpUpstream | undefined;
    let server: TestServer | undefined;
    try {
      victim = await startEverything("streamableHttp");
      other = await startEverything("sse");
      const port = victim.port;
      server = await startServer({
        upstreams: [
          { name: "v", transport: "streamable-http", url: victim.url, timeout_ms: 3_000 },
          { name: "o", transport: "sse", url: other.url, tools: { allow: ["echo"] } },
        ],
        gatewayOptions: { breaker: { failures: 3, coolDownMs: 1_500 }, healthIntervalMs: 300 },
        // Eight callers in a loop are one principal: F5's 600 calls/min would answer SABAR for
        // the rate, not the breaker, and then refuse the recovery check too.
        policy: UNTHROTTLED_POLICY,
      });
      assert.equal((await invoke(server, "v__echo", { message: "up" })).policy_verdict, "SEAL");

      // Load: 8 callers in a loop; the upstream dies after the first round.
      const verdicts: string[] = [];
      let slowest = 0;
      let stop = false;
      const callers = Array.from({ length: 8 }, async () => {
        while (!stop) {
          const t0 = performance.now();
          const r = await invoke(server!, "v__echo", { message: "load" });
          slowest = Math.max(slowest, performance.now() - t0);
          verdicts.push(r.policy_verdict);
          if (r.policy_verdict === "SABAR") {
            assert.ok(r._constitutional.retry_after_s >= 1, JSON.stringify(r));
            assert.match(r.message, /circuit breaker for upstream v is open/);
          }
        }
      });
      await new Promise((r) => setTimeout(r, 300));
      await victim.stop();
      victim = undefined;
      await new Promise((r) => setTimeout(r, 1_000));
      // While v is down the other upstream is unaffected.
      const o = await invoke(server, "o__echo", { message: "still here" });
      assert.equal(o.policy_verdict, "SEAL");
      assert.equal(o.result.content[0].text, "Echo: still here");
      const status = server.app.gateway.server("v")!;
      assert.equal(status.circuit.state === "open" || status.circuit.state === "half_open", true);
      stop = true;
      await Promise.all(callers);
      assert.ok(verdicts.includes("SABAR"), `callers saw SABAR (${[...new Set(verdicts)]})`);
      // Every call answered well within the per-call timeout: nobody waited on a dead upstream.
      assert.ok(slowest < 10_000, `slowest call took ${slowest} ms`);

      // check_vital reports the breaker.
      const vital = await invoke(server, "check_vital", {});
      const v = vital.data.upstreams.find((u: any) => u.name === "v");
      assert.notEqual(v.circuit, "closed");

      // The upstream returns on the same port: the probe closes the breaker, the session is re-initialised.
      victim = await startEverything("streamableHttp", port);
      let back: any;
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline) {
        back = await invoke(server, "v__echo", { message: "back" });
        if (back.status === "OK") break;
        await new Promise((r) => setTimeout(r, 250));
      }
      assert.equal(back.status, "OK", JSON.stringify(back));
      assert.equal(back.policy_verdict, "SEAL");
      assert.equal(back.result.content[0].text, "Echo: back");
      assert.equal(server.app.gateway.server("v")!.circuit.state, "closed");
    } finally {
      await server?.close();
      await victim?.stop();
      await other?.stop();
    }
  },
});

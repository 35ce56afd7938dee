/**
 * An upstream that is not up when Warden starts (started beside it, say) has its tools listed
 * moments after it comes up, not only at the next health probe: with probes a minute apart, the
 * tools appear within seconds.
 */
import assert from "node:assert/strict";
import { parseUpstreams } from "../../src/gateway/mod.ts";
import { initializeRaw, rpc } from "../_helpers/raw.ts";
import { startServer, UNTHROTTLED_POLICY } from "../_helpers/server.ts";
import { freePort, startEverything } from "../_helpers/upstreams.ts";
import { pollUntil } from "../_helpers/wait.ts";

Deno.test({
  name: "gateway: an upstream down at start is listed soon after it comes up, before any probe",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const port = freePort();
    const upstreams = parseUpstreams(JSON.stringify([
      { name: "late", transport: "streamable-http", url: `http://127.0.0.1:${port}/mcp` },
    ]));
    await using server = await startServer({
      upstreams,
      policy: UNTHROTTLED_POLICY,
      // No probe within the test's time: only the retry after the failed start can list it.
      gatewayOptions: { healthIntervalMs: 120_000 },
    });
    const names = async () => {
      const { sessionId } = await initializeRaw(server.url, "2025-11-25");
      const listed = await rpc(server.url, sessionId, "tools/list", {});
      return (listed.body.result.tools as { name: string }[]).map((t) => t.name);
    };
    assert.ok(!(await names()).includes("late__echo"), "not listed while the upstream is down");
    await using _up = await startEverything("streamableHttp", port);
    const after = await pollUntil(names, (n) => n.includes("late__echo"), {
      timeoutMs: 40_000,
      intervalMs: 250,
    });
    assert.ok(after.includes("late__echo"), `listed once up: ${after.join(", ")}`);
  },
});

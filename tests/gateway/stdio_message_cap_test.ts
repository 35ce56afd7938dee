/**
 * What a stdio upstream prints is bounded per message too: a line past the bound (24 MiB here)
 * fails the call in flight as the upstream's fault, its process is dropped, and the next call
 * starts it again — Warden never holds the whole line.
 */
import assert from "node:assert/strict";
import { MAX_UPSTREAM_MESSAGE_BYTES } from "../../src/gateway/mod.ts";
import { postInvoke } from "../_helpers/raw.ts";
import { startServer } from "../_helpers/server.ts";
import { denoDir } from "../_helpers/upstreams.ts";

const UPSTREAM = new URL("./_hostile_stdio.ts", import.meta.url).pathname;

const invoke = (url: string, tool: string) => postInvoke(url, tool);

Deno.test({
  name:
    "a stdio upstream's line over the per-message bound fails that call as its fault, and it serves the next",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using server = await startServer({
      upstreams: [{
        name: "h",
        transport: "stdio",
        command: Deno.execPath(),
        args: ["run", "--quiet", UPSTREAM],
        env: { DENO_DIR: denoDir() },
        sandbox: { enabled: false },
        timeout_ms: 60_000,
      }],
      gatewayOptions: { healthIntervalMs: 0 },
    });
    assert.equal((await invoke(server.url, "h__small")).body.result.content[0].text, "ok");
    const started = Date.now();
    const big = await invoke(server.url, "h__big");
    assert.equal(big.body.ok, false, `h__big answered ${big.bytes} bytes`);
    assert.equal(big.body.error_kind, "fault", JSON.stringify(big.body).slice(0, 300));
    assert.ok(big.bytes < MAX_UPSTREAM_MESSAGE_BYTES, `an answer of ${big.bytes} bytes`);
    assert.ok(Date.now() - started < 30_000, "failed at once, not at the call's time limit");
    const again = await invoke(server.url, "h__small");
    assert.equal(again.body.result?.content?.[0]?.text, "ok", JSON.stringify(again.body));
  },
});

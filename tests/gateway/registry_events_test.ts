// deno-lint-ignore-file no-explicit-any -- results are probed field by field
/**
 * Registry changes across processes (issue 15 §4): two real Warden processes on one KV file.
 * An upstream registered through process A's `/api/servers/register` is adopted by process B
 * — its tools listed and callable there — and B's own clients are told: a 2025 session (v1
 * Client, `notifications/tools/list_changed`) and a 2026-07-28 listener (v2 Client,
 * `subscriptions/listen`). Removing it at A removes it at B and tells them again. Before, B read
 * registrations from KV only when it started, and list_changed reached only A's clients.
 */
import assert from "node:assert/strict";
// @ts-types="@modelcontextprotocol/sdk/types"
import { ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { connectStreamable } from "../_helpers/client.ts";
import { spawnServer } from "../_helpers/server.ts";
import { startEverything } from "../_helpers/upstreams.ts";

const TOKEN = "registration-token-0123456789";

/**
 * Resolves with the next value `arm` is called with, or fails after 30 s naming `what` (a hang
 * guard: B adopts the upstream by polling the event head, then connects to it and lists it; with
 * a 10 s guard the test failed once on a machine loaded by other test runs).
 */
function next<T>(what: string) {
  const { promise, resolve } = Promise.withResolvers<T>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timed = Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no ${what} in 30 s`)), 30_000);
    }),
  ]).finally(() => clearTimeout(timer));
  return { resolve, promise: timed };
}

Deno.test({
  name:
    "an upstream registered and removed at process A reaches process B's tools and its clients of both eras",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    const common = [
      "--kv",
      `${dir}/shared.db`,
      "--registration-token",
      TOKEN,
      "--registry-allow-hosts",
      "127.0.0.1",
    ];
    await using up = await startEverything("streamableHttp");
    const a = await spawnServer(common);
    const b = await spawnServer(common);
    const { client: legacy } = await connectStreamable(b.url);
    let modernWaiter: ((names: string[]) => void) | undefined;
    const modern = new Client({ name: "listener", version: "1.0.0" }, {
      versionNegotiation: { mode: { pin: "2026-07-28" } },
      listChanged: {
        tools: { onChanged: (_e, tools) => modernWaiter?.((tools ?? []).map((t) => t.name)) },
      },
    });
    try {
      await modern.connect(new StreamableHTTPClientTransport(new URL(`${b.url}/mcp`)));
      assert.equal(modern.getNegotiatedProtocolVersion(), "2026-07-28");
      let legacyWaiter: (() => void) | undefined;
      legacy.setNotificationHandler(ToolListChangedNotificationSchema, () => legacyWaiter?.());
      // The 2025 session's notifications come on its GET stream, opened after a request.
      const before = (await legacy.listTools()).tools.map((t) => t.name);
      assert.ok(!before.includes("utils__echo"));

      const legacyNotified = next<void>("2025 tools/list_changed at B after registering at A");
      legacyWaiter = () => legacyNotified.resolve();
      const modernNotified = next<string[]>("2026 tools/list_changed at B with utils__echo");
      modernWaiter = (names) => names.includes("utils__echo") && modernNotified.resolve(names);
      const res = await fetch(`${a.url}/api/servers/register`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
        body: JSON.stringify({
          server_name: "utils",
          endpoint: up.url,
          version: "1.0.0",
          tools: ["echo"],
        }),
      });
      assert.equal(res.status, 201, await res.text());
      await legacyNotified.promise;
      assert.ok((await modernNotified.promise).includes("utils__echo"));
      // B holds it now: listed, called through B's own connection, governed and sealed.
      const listed = (await legacy.listTools()).tools.map((t) => t.name);
      assert.ok(listed.includes("utils__echo"), listed.join(","));
      const echoed: any = await legacy.callTool({
        name: "utils__echo",
        arguments: { message: "via B" },
      });
      assert.match(echoed.content[0].text, /via B/);
      assert.equal(echoed._meta["warden/governance"].policy_verdict, "SEAL");
      const status = await (await fetch(`${b.url}/api/servers/utils`)).json();
      assert.equal(status.source, "api");
      assert.equal(status.connection.connected, true, JSON.stringify(status.connection));

      // Removed at A: gone at B, and B's clients are told.
      const legacyAgain = next<void>("2025 tools/list_changed at B after removing at A");
      legacyWaiter = () => legacyAgain.resolve();
      const modernAgain = next<string[]>("2026 tools/list_changed at B without utils__echo");
      modernWaiter = (names) => !names.includes("utils__echo") && modernAgain.resolve(names);
      const del = await fetch(`${a.url}/api/servers/utils`, {
        method: "DELETE",
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      assert.equal(del.status, 200, await del.text());
      await legacyAgain.promise;
      await modernAgain.promise;
      const after = (await legacy.listTools()).tools.map((t) => t.name);
      assert.ok(!after.includes("utils__echo"), after.join(","));
      assert.equal((await fetch(`${b.url}/api/servers/utils`)).status, 404);
    } finally {
      await legacy.close().catch(() => {});
      await modern.close().catch(() => {});
      await a.stop();
      await b.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

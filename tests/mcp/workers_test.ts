// deno-lint-ignore-file no-explicit-any -- REST and MCP bodies are probed field by field
// serve --workers 2: two processes on one port (SO_REUSEPORT) and one KV file.
// Connections land on both; a 2025 session, a governed session and a hold
// work whichever process answers; kill -9 of a worker loses no acknowledged
// vault entry, the first process restarts it, and the log verifies.
import assert from "node:assert/strict";
import { Client, StreamableHTTPClientTransport } from "../_helpers/client.ts";
import { runCli } from "../_helpers/cli.ts";
import { spawnServer, UNTHROTTLED_POLICY } from "../_helpers/server.ts";
import { pollUntil } from "../_helpers/wait.ts";

/** A fetch that opens a new connection per request, so the kernel picks a worker each time. */
function unpooledFetch() {
  const clients: Deno.HttpClient[] = [];
  const f = async (input: string | URL | Request, init?: RequestInit) => {
    const client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
    clients.push(client);
    try {
      const res = await fetch(input, { ...init, client } as RequestInit);
      const body = new Uint8Array(await res.arrayBuffer());
      return new Response(res.status === 204 || res.status === 304 ? null : body, {
        status: res.status,
        headers: res.headers,
      });
    } finally {
      client.close();
    }
  };
  return f;
}

Deno.test({
  name:
    "workers: two processes share the port and the KV; kill -9 of one loses no acknowledged entry",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    await Deno.writeTextFile(`${dir}/policy.json`, JSON.stringify(UNTHROTTLED_POLICY));
    const server = await spawnServer([
      "--kv",
      `${dir}/w.db`,
      "--workers",
      "2",
      "--policy",
      `${dir}/policy.json`,
      "--checkpoint-interval",
      "50",
    ]);
    const f = unpooledFetch();
    try {
      const health = async () => await (await f(`${server.url}/health`)).json();
      // The first process listens before its worker has started: wait for the worker's line.
      await pollUntil(() => server.logs.some((l) => l.includes("worker listening")), (ok) => ok, {
        timeoutMs: 15_000,
      });
      const seen = new Map<number, number>();
      for (let i = 0; i < 200 && seen.size < 2; i++) {
        const h = await health().catch(() => undefined);
        if (h?.worker !== undefined) seen.set(h.worker, h.pid);
      }
      assert.deepEqual([...seen.keys()].sort(), [0, 1], "both processes answer");

      // A 2025 session whose requests reach either process.
      const client = new Client({ name: "workers", version: "1" });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), { fetch: f as never }),
      );
      const anchor: any = await client.callTool({
        name: "anchor_session",
        arguments: { query: "check the arithmetic" },
      });
      const sid = anchor.structuredContent.data.session_id;
      for (let i = 0; i < 10; i++) {
        const r: any = await client.callTool({
          name: "calculate",
          arguments: { expression: `${i}+1` },
        });
        assert.equal(r.structuredContent.data.result, i + 1);
      }
      const reason: any = await client.callTool({
        name: "reason_mind",
        arguments: { session_id: sid, query: "1+1 is 2" },
      });
      assert.notEqual(reason.structuredContent.status, "ERROR", JSON.stringify(reason));
      await client.close();

      // Acknowledged entries, with one worker killed in the middle.
      const acked: { index: number; leaf_hash: string }[] = [];
      const invoke = async (i: number) => {
        for (let attempt = 0; attempt < 5; attempt++) {
          try {
            const body = await (await f(`${server.url}/invoke`, {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: JSON.stringify({ tool: "calculate", arguments: { expression: `${i}*2` } }),
            })).json();
            if (body.policy_verdict === "SEAL") return acked.push(body._constitutional.vault);
          } catch {
            // the connection was on the killed worker: not acknowledged, so try again
          }
          await new Promise((r) => setTimeout(r, 100));
        }
        throw new Error(`call ${i} never acknowledged`);
      };
      await Promise.all(Array.from({ length: 20 }, (_, i) => invoke(i)));
      Deno.kill(seen.get(1)!, "SIGKILL");
      await Promise.all(Array.from({ length: 20 }, (_, i) => invoke(100 + i)));
      // The first process restarted the worker.
      const restarted = (await pollUntil(
        () => health().catch(() => undefined),
        (h) => h?.worker === 1 && h.pid !== seen.get(1),
        { timeoutMs: 5_000 },
      ))?.pid;
      assert.ok(restarted, "worker 1 runs again under a new pid");
      assert.ok(server.logs.some((l) => l.includes("worker exited; restarting it")));

      for (const r of acked) {
        const e = await (await f(`${server.url}/vault/entries/${r.index}`)).json();
        assert.equal(e.leaf_hash, r.leaf_hash, `entry ${r.index}`);
      }
      const vkey = (await (await f(`${server.url}/vault/key`)).text()).trim();
      const verified = await pollUntil(
        () => runCli(["verify", "--url", server.url, "--key", vkey]),
        (r) => r.code === 0,
        { timeoutMs: 4_000, intervalMs: 100 },
      );
      assert.equal(verified.code, 0, verified.stderr);
    } finally {
      const status = await server.stop();
      assert.equal(status.code, 0);
      // The workers stopped with it: nothing answers on the port.
      await assert.rejects(f(`${server.url}/health`));
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("workers: refused with :memory: KV, saying why", async () => {
  const r = await runCli(["serve", "--port", "0", "--kv", ":memory:", "--workers", "2"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--workers needs a KV file/);
});

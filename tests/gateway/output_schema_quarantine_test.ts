// deno-lint-ignore-file no-explicit-any -- results are probed field by field
/**
 * An upstream tool whose `outputSchema` does not compile (an unknown type, a
 * `$ref` to nowhere) is quarantined when its upstream is listed: not listed,
 * refused on call with a tool error that names the reason, sealed as
 * `upstream_tool_quarantined` and shown so in `GET /api/servers/NAME`. Listed,
 * it would make the v1 SDK client's `listTools` throw on the whole listing
 * (it compiles every output schema it is sent). The upstream's other tools
 * keep working. The upstream is a v2 SDK `McpServer` over Streamable HTTP on
 * loopback, in its own process (tests/gateway/_schema_upstream.ts).
 */
import assert from "node:assert/strict";
import { parseUpstreams } from "../../src/gateway/mod.ts";
import { connectModern, connectStreamable } from "../_helpers/client.ts";
import { sealedEntries, startServer } from "../_helpers/server.ts";

async function startUpstream() {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./_schema_upstream.ts", import.meta.url).pathname],
    stdout: "piped",
    stderr: "inherit",
    stdin: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!/listening on port \d+\n/.test(seen)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`upstream exited: ${seen}`);
    seen += value;
  }
  reader.releaseLock();
  const base = `http://127.0.0.1:${seen.match(/listening on port (\d+)/)![1]}`;
  return {
    url: `${base}/mcp`,
    called: async () => (await (await fetch(`${base}/called`)).json()) as string[],
    async stop() {
      child.kill("SIGKILL");
      await child.status;
      await child.stdout.cancel().catch(() => {});
    },
  };
}

const BAD = [["nonsense", /nonsense/], ["nowhere", /missing/]] as const;

Deno.test({
  name:
    "gateway: a tool whose outputSchema does not compile is quarantined; the listing and the upstream's other tools work for v1 and v2 clients",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const up = await startUpstream();
    const server = await startServer({
      upstreams: parseUpstreams(JSON.stringify([{
        name: "shapes",
        transport: "streamable-http",
        url: up.url,
      }])),
    });
    const { client: v1 } = await connectStreamable(server.url);
    const v2 = await connectModern(server.url);
    try {
      const ofUpstream = (tools: { name: string }[]) =>
        tools.map((t) => t.name).filter((n) => n.startsWith("shapes__"));
      // The v1 client compiles every listed output schema: one bad one would make this throw.
      const v1Tools = (await v1.listTools()).tools;
      assert.deepEqual(ofUpstream(v1Tools), ["shapes__count"]);
      assert.deepEqual(
        v1Tools.find((t) => t.name === "shapes__count")?.outputSchema?.properties,
        { count: { type: "number" } },
      );
      assert.deepEqual(ofUpstream((await v2.listTools()).tools), ["shapes__count"]);

      // The good tool works, its result checked against its schema by both clients.
      for (const client of [v1, v2] as any[]) {
        const good = await client.callTool({ name: "shapes__count", arguments: {} });
        assert.notEqual(good.isError, true, JSON.stringify(good));
        assert.deepEqual(good.structuredContent, { count: 3 });
      }

      // A quarantined tool is refused with a tool error naming the reason; nothing is sent.
      for (const [tool, why] of BAD) {
        for (const client of [v1, v2] as any[]) {
          const bad = await client.callTool({ name: `shapes__${tool}`, arguments: {} });
          assert.equal(bad.isError, true, JSON.stringify(bad));
          const text = JSON.stringify(bad.content);
          assert.match(text, /quarantined: its outputSchema does not compile/);
          assert.match(text, why);
        }
      }
      assert.deepEqual(await up.called(), ["count", "count"]);

      // The operator sees each bad tool quarantined, with its reason; the good one is ok.
      const res = await fetch(`${server.url}/api/servers/shapes`);
      assert.equal(res.status, 200);
      const { tools } = await res.json();
      const byTool = new Map<string, any>(tools.map((t: any) => [t.upstream_tool, t]));
      assert.equal(byTool.get("count")?.state, "ok", JSON.stringify(tools));
      assert.equal(byTool.get("count")?.reason, undefined);
      for (const [tool, why] of BAD) {
        assert.equal(byTool.get(tool)?.state, "quarantined", JSON.stringify(tools));
        assert.match(byTool.get(tool).reason, /^its outputSchema does not compile: /);
        assert.match(byTool.get(tool).reason, why);
      }

      // A re-list (as on list_changed) keeps them quarantined, and does not seal them again.
      await server.app.gateway.refresh("shapes");
      assert.deepEqual(ofUpstream((await v1.listTools()).tools), ["shapes__count"]);
      const relisted = server.app.gateway.server("shapes")!.tools;
      assert.deepEqual(relisted.map((t) => [t.upstream_tool, t.state]).sort(), [
        ["count", "ok"],
        ["nonsense", "quarantined"],
        ["nowhere", "quarantined"],
      ]);

      // Each quarantine is sealed once, with the upstream, the tool and the reason.
      const sealed = await sealedEntries(server, "upstream_tool_quarantined");
      assert.deepEqual(sealed.map((e) => e.tool).sort(), ["nonsense", "nowhere"]);
      for (const e of sealed) {
        assert.equal(e.upstream, "shapes");
        assert.equal(e.definition_sha256, byTool.get(e.tool).definition_sha256);
        assert.match(e.reason, /outputSchema does not compile/);
      }
    } finally {
      await v1.close();
      await v2.close();
      await server.close();
      await up.stop();
    }
  },
});

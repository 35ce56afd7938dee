// deno-lint-ignore-file no-explicit-any -- MCP results are probed field by field
/**
 * Every name an upstream contributes routes back to it, unambiguously, and
 * names that collide are resolved the same way every time:
 * - two upstreams configured with `prefix: ""` (two connections to one real
 *   server-everything) expose the same tool and prompt names; the one listed
 *   first in the upstreams file keeps them, the other's are refused and
 *   shown in its `refused` naming both sides — and `prompts/get` of an
 *   unprefixed name routes to the owner (it fell through to Warden's own
 *   prompts before);
 * - their resources never collide: `upstream://<server>/…` names the server;
 * - an upstream whose tool or prompt would shadow Warden's own is refused
 *   that name, and Warden's own answers;
 * - a runtime registration whose prompts would collide is refused with 409.
 */
import assert from "node:assert/strict";
import { parseUpstreams } from "../../src/gateway/mod.ts";
import { createToken } from "../../src/identity/mod.ts";
import { connectModernAs, connectV1As } from "../_helpers/client.ts";
import { sealedEntries } from "../_helpers/server.ts";
import { denoDir, withEverything } from "../_helpers/upstreams.ts";

const TOKEN = "registration-token-0123456789";
const UPSTREAM = new URL("../_helpers/changing_upstream.ts", import.meta.url).pathname;
const POLICY = {
  roles: { ops: { tools: ["*"] } },
  rate_limits: { per_principal_per_minute: 0, per_ip_per_minute: 0 },
};

Deno.test({
  name: "routing: unprefixed upstream names route back; collisions resolved by file order",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withEverything({
      policy: POLICY,
      args: ["--registration-token", TOKEN, "--registry-allow-hosts", "127.0.0.1"],
    }, async (server, up) => {
      const alice = await createToken(server.kv, { name: "alice", roles: ["ops"] });
      for (
        const [era, connect] of [["2025", connectV1As], ["2026-07-28", connectModernAs]] as const
      ) {
        const c: any = await connect(server.url, alice.secret);
        try {
          const prompts = (await c.listPrompts()).prompts.map((p: any) => p.name) as string[];
          assert.ok(prompts.includes("simple-prompt"), `${era}: ${prompts}`);
          assert.equal(new Set(prompts).size, prompts.length, `${era}: a name listed twice`);
          const got = await c.getPrompt({ name: "simple-prompt" });
          assert.ok(got.messages.length > 0, `${era}: ${JSON.stringify(got)}`);
          // Warden's own prompt keeps its name; the stdio upstream's same-named one is refused.
          const own = await c.getPrompt({ name: "arifos.prompt.aaa_chain" });
          assert.doesNotMatch(JSON.stringify(own), /from arifos\.prompt\.aaa_chain/, era);

          const tools = (await c.listTools()).tools.map((t: any) => t.name) as string[];
          assert.equal(tools.filter((t) => t === "echo").length, 1, `${era}: ${tools}`);
          assert.equal(tools.filter((t) => t === "get_time").length, 1, era);
          const echo = await c.callTool({ name: "echo", arguments: { message: era } });
          assert.equal(echo.content[0].text, `Echo: ${era}`);

          // Resources carry their server: a's and b's same document are two URIs, each routed home.
          const uris = (await c.listResources()).resources.map((r: any) => r.uri) as string[];
          const doc = uris.find((u) => u.startsWith("upstream://a/demo://resource/static/"));
          assert.ok(doc, `${era}: ${uris.slice(0, 20)}`);
          const twin = doc.replace("upstream://a/", "upstream://b/");
          assert.ok(uris.includes(twin), `${era}: b's twin of ${doc}`);
          assert.equal((await c.readResource({ uri: twin })).contents[0].uri, twin);
        } finally {
          await c.close();
        }
      }
      const gets = await sealedEntries(server, "upstream_prompt_get");
      assert.deepEqual(gets.map((g) => [g.upstream, g.prompt]), [
        ["a", "simple-prompt"],
        ["a", "simple-prompt"],
      ]);
      const calls = (await sealedEntries(server, "tool_call")).filter((e) => e.tool === "echo");
      assert.deepEqual(calls.map((e) => e.upstream), ["a", "a"]);
      const reads = await sealedEntries(server, "upstream_resource_read");
      assert.deepEqual(reads.map((r) => r.upstream), ["b", "b"]);

      const b = await (await fetch(`${server.url}/api/servers/b`)).json();
      const refused = (b.refused ?? []).join("\n");
      assert.match(refused, /tool "echo" from upstream b collides with "echo" from upstream a/);
      assert.match(
        refused,
        /prompt "simple-prompt" from upstream b collides with prompt "simple-prompt" from upstream a/,
      );
      assert.equal(b.tools.length, 0, "b keeps nothing: every name is a's");
      const mine = await (await fetch(`${server.url}/api/servers/mine`)).json();
      const mineRefused = (mine.refused ?? []).join("\n");
      assert.match(mineRefused, /tool "get_time" from upstream mine collides with Warden's own/);
      assert.match(
        mineRefused,
        /prompt "arifos\.prompt\.aaa_chain" from upstream mine collides with Warden's own/,
      );
      assert.ok(mine.tools.some((t: any) => t.name === "add"), "mine's other tools stay");

      // A runtime registration whose prompts (not tools: it allows none that collide) would
      // take a's names is refused, naming both sides.
      const res = await fetch(`${server.url}/api/servers/register`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
        body: JSON.stringify({
          server_name: "c",
          endpoint: up.url,
          version: "1.0.0",
          prefix: "",
          tools: [],
        }),
      });
      const body = await res.json();
      assert.equal(res.status, 409, JSON.stringify(body));
      assert.match(body.error.message, /prompt "[a-z-]+" from upstream c collides with prompt/);
      assert.match(body.error.message, /from upstream a/);
    }, (url) => [
      ...parseUpstreams(JSON.stringify([
        { name: "a", transport: "streamable-http", url, prefix: "" },
        { name: "b", transport: "streamable-http", url, prefix: "" },
      ])),
      {
        name: "mine",
        transport: "stdio",
        command: Deno.execPath(),
        args: ["run", "-A", "--quiet", UPSTREAM],
        env: { PROMPT: "arifos.prompt.aaa_chain", TOOL: "get_time", DENO_DIR: denoDir() },
        prefix: "",
        sandbox: { enabled: false },
      },
    ]);
  },
});

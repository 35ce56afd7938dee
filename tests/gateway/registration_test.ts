// deno-lint-ignore-file no-explicit-any -- responses are probed field by field
/**
 * Runtime registration: POST /api/servers/register with the registration
 * token (401 without), strict manifests (400 naming the field), private
 * endpoints refused unless allowlisted, collisions refused naming both sides,
 * re-registration updates, DELETE removes — each change sealed.
 */
import assert from "node:assert/strict";
import { sealedEntries, startServer, type TestServer } from "../_helpers/server.ts";
import { type HttpUpstream, startEverything } from "../_helpers/upstreams.ts";

const TOKEN = "registration-token-0123456789";

async function register(server: TestServer, body: unknown, token: string | null = TOKEN) {
  const res = await fetch(`${server.url}/api/servers/register`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() as any };
}

Deno.test({
  name:
    "gateway registration: token, strict manifest, SSRF refusal, collisions, update and removal, all sealed",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    let up: HttpUpstream | undefined;
    const servers: TestServer[] = [];
    try {
      up = await startEverything("streamableHttp");
      const open = await startServer({
        args: ["--registration-token", TOKEN, "--registry-allow-hosts", "127.0.0.1"],
      });
      servers.push(open);
      const manifest = {
        server_name: "utils",
        endpoint: up.url,
        version: "1.0.0",
        tools: ["echo", "get-sum"],
      };

      // The token travels as a bearer token and is required.
      assert.equal((await register(open, manifest, null)).status, 401);
      assert.equal((await register(open, manifest, "wrong-token-0123456789")).status, 401);

      // Bad manifests: 400 naming the field.
      const noVersion = await register(open, { server_name: "utils", endpoint: up.url });
      assert.equal(noVersion.status, 400);
      assert.match(noVersion.body.error.message, /version/);
      const badUrl = await register(open, { ...manifest, endpoint: "ftp://127.0.0.1/" });
      assert.equal(badUrl.status, 400);
      assert.match(badUrl.body.error.message, /endpoint/);
      const extra = await register(open, { ...manifest, evil: true });
      assert.equal(extra.status, 400);
      assert.match(extra.body.error.message, /evil/);
      const stdio = await register(open, { ...manifest, transport: "stdio" });
      assert.equal(stdio.status, 400);
      assert.match(stdio.body.error.message, /transport/);

      // A good one: listed and callable through Warden, governed and sealed.
      const ok = await register(open, manifest);
      assert.equal(ok.status, 201, JSON.stringify(ok.body));
      assert.deepEqual(ok.body.tools.map((t: any) => t.name).sort(), [
        "utils__echo",
        "utils__get-sum",
      ]);
      const call = await fetch(`${open.url}/invoke`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ tool: "utils__echo", arguments: { message: "registered" } }),
      }).then((r) => r.json());
      assert.equal(call.result.content[0].text, "Echo: registered");
      const list = await fetch(`${open.url}/api/servers`).then((r) => r.json());
      assert.deepEqual(list.servers.map((s: any) => [s.name, s.source, s.version]), [[
        "utils",
        "api",
        "1.0.0",
      ]]);

      // Re-registration updates (version recorded).
      const again = await register(open, { ...manifest, version: "1.1.0" });
      assert.equal(again.status, 201);
      assert.equal(
        (await fetch(`${open.url}/api/servers/utils`).then((r) => r.json())).version,
        "1.1.0",
      );

      // Collision: another upstream whose tools would take the same names.
      const clash = await register(open, { ...manifest, server_name: "other", prefix: "utils__" });
      assert.equal(clash.status, 409);
      assert.match(
        clash.body.error.message,
        /"utils__echo" from upstream other collides with "echo" from upstream utils/,
      );
      const own = await register(open, {
        ...manifest,
        server_name: "own",
        prefix: "",
        tools: ["echo"],
      });
      assert.equal(own.status, 201, "an empty prefix is allowed when nothing collides");
      const shadow = await register(open, {
        ...manifest,
        server_name: "shadow",
        prefix: "get_",
        tools: { allow: ["echo"] },
      });
      assert.equal(shadow.status, 201);

      // Removal needs the token too; the tools disappear.
      const noAuth = await fetch(`${open.url}/api/servers/utils`, { method: "DELETE" });
      assert.equal(noAuth.status, 401);
      await noAuth.body?.cancel();
      const del = await fetch(`${open.url}/api/servers/utils`, {
        method: "DELETE",
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      assert.equal(del.status, 200);
      await del.body?.cancel();
      const tools = (await fetch(`${open.url}/tools`).then((r) => r.json())).tools.map((t: any) =>
        t.name
      );
      assert.ok(!tools.includes("utils__echo"));
      assert.ok(tools.includes("echo"), "the unprefixed upstream is still there");

      // Every change is sealed.
      assert.equal((await sealedEntries(open, "upstream_registered")).length, 3);
      const updated = await sealedEntries(open, "upstream_updated");
      assert.equal(updated.length, 1);
      assert.equal(updated[0].version, "1.1.0");
      assert.equal(updated[0].previous_version, "1.0.0");
      assert.equal((await sealedEntries(open, "upstream_removed")).length, 1);

      // Without an allowlist, a loopback endpoint is refused before any connection.
      const strict = await startServer({ args: ["--registration-token", TOKEN] });
      servers.push(strict);
      const refused = await register(strict, manifest);
      assert.equal(refused.status, 400);
      assert.match(refused.body.error.message, /endpoint: "127\.0\.0\.1" is a loopback address/);
      const metadata = await register(strict, {
        ...manifest,
        endpoint: "http://169.254.169.254/mcp",
      });
      assert.equal(metadata.status, 400);
      assert.match(metadata.body.error.message, /link-local/);

      // Without a registration token, runtime registration is off.
      const off = await startServer();
      servers.push(off);
      const disabled = await register(off, manifest);
      assert.equal(disabled.status, 403);
      assert.match(disabled.body.error.message, /--registration-token/);
    } finally {
      for (const s of servers) await s.close();
      await up?.stop();
    }
  },
});

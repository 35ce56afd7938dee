// deno-lint-ignore-file no-explicit-any -- responses are probed field by field
/**
 * A runtime registration is checked against the SSRF guard of the process that connects to it,
 * every time it connects, not only by the process that accepted it. Found by attacking the
 * registry on loopback: an upstream registered while `--registry-allow-hosts 127.0.0.1` was set
 * stayed in KV, and a Warden started later on that KV without the allowlist (the operator had
 * removed it) connected to the loopback endpoint, listed and called its tools, and fetched its
 * loopback `health_check` every probe period — the guard ran only inside `POST
 * /api/servers/register`.
 */
import assert from "node:assert/strict";
import { startServer, type TestServer } from "../_helpers/server.ts";
import { startEverything } from "../_helpers/upstreams.ts";

const TOKEN = "registration-token-0123456789";

async function invoke(server: TestServer, tool: string, args: unknown) {
  const res = await fetch(`${server.url}/invoke`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ tool, arguments: args }),
  });
  return { status: res.status, body: await res.json() as any };
}

Deno.test({
  name:
    "a registration kept in KV is refused by a Warden whose --registry-allow-hosts no longer names its loopback endpoint",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    const kv = await Deno.openKv(`${dir}/shared.db`);
    await using up = await startEverything("streamableHttp");
    // A loopback health endpoint that counts who asks it.
    let healthHits = 0;
    await using health = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
      healthHits++;
      return new Response("ok");
    });
    try {
      const allowing = await startServer({
        kv,
        args: ["--registration-token", TOKEN, "--registry-allow-hosts", "127.0.0.1"],
      });
      try {
        const res = await fetch(`${allowing.url}/api/servers/register`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
          body: JSON.stringify({
            server_name: "utils",
            endpoint: up.url,
            health_check: `http://127.0.0.1:${health.addr.port}/health`,
            version: "1.0.0",
            tools: ["echo"],
          }),
        });
        assert.equal(res.status, 201, await res.text());
        assert.equal(
          (await invoke(allowing, "utils__echo", { message: "allowed" })).body.result.content[0]
            .text,
          "Echo: allowed",
        );
      } finally {
        await allowing.close();
      }

      // The same KV, no allowlist: the stored registration is not connected to.
      healthHits = 0;
      const strict = await startServer({
        kv,
        args: ["--registration-token", TOKEN],
        gatewayOptions: { healthIntervalMs: 50 },
      });
      try {
        const tools = (await fetch(`${strict.url}/tools`).then((r) => r.json())).tools
          .map((t: any) => t.name);
        assert.ok(!tools.includes("utils__echo"), `listed: ${tools.join(", ")}`);
        const call = await invoke(strict, "utils__echo", { message: "refused" });
        assert.notEqual(call.status, 200, JSON.stringify(call.body));
        assert.notEqual(call.body.result?.content?.[0]?.text, "Echo: refused");
        const status = await fetch(`${strict.url}/api/servers/utils`).then((r) => r.json());
        assert.match(
          JSON.stringify(status),
          /endpoint: \\"127\.0\.0\.1\\" is a loopback address/,
          JSON.stringify(status),
        );
        // Several probe periods: the loopback health check is never fetched.
        await new Promise((r) => setTimeout(r, 400));
        assert.equal(healthHits, 0, "the loopback health_check was fetched");
      } finally {
        await strict.close();
      }
    } finally {
      kv.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "a registration made at an instance that allows its loopback endpoint is not connected to by one sharing the KV that does not",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    const kv = await Deno.openKv(`${dir}/shared.db`);
    await using up = await startEverything("streamableHttp");
    const allowing = await startServer({
      kv,
      args: ["--registration-token", TOKEN, "--registry-allow-hosts", "127.0.0.1"],
    });
    const strict = await startServer({ kv, args: ["--registration-token", TOKEN] });
    try {
      const res = await fetch(`${allowing.url}/api/servers/register`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
        body: JSON.stringify({ server_name: "utils", endpoint: up.url, version: "1.0.0" }),
      });
      assert.equal(res.status, 201, await res.text());
      // The strict instance adopts the registration from the event bus, and refuses to connect.
      let status: any;
      for (let i = 0; i < 100; i++) {
        const r = await fetch(`${strict.url}/api/servers/utils`);
        status = await r.json();
        if (r.status === 200 && JSON.stringify(status).includes("loopback address")) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.match(JSON.stringify(status), /is a loopback address/, JSON.stringify(status));
      const tools = (await fetch(`${strict.url}/tools`).then((r) => r.json())).tools
        .map((t: any) => t.name);
      assert.ok(!tools.includes("utils__echo"), `listed: ${tools.join(", ")}`);
      const call = await invoke(strict, "utils__echo", { message: "refused" });
      assert.notEqual(call.body.result?.content?.[0]?.text, "Echo: refused");
      // The instance that allows it serves it.
      const ok = await invoke(allowing, "utils__echo", { message: "allowed" });
      assert.equal(ok.body.result.content[0].text, "Echo: allowed");
    } finally {
      await strict.close();
      await allowing.close();
      kv.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

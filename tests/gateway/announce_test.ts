// deno-lint-ignore-file no-explicit-any -- results are probed field by field
/**
 * Announce, end to end with real Warden processes: the utilities scenario (a
 * second Warden started with WARDEN_REGISTER_URL pointing at the first; its
 * get_time reached through the first, latency reported), retry with backoff
 * while the other side is not up yet, re-registration when the other side
 * forgets it, deregistration on shutdown, two Wardens fronting each other
 * without re-exposing each other's re-exposures, and clear refusals of a bad
 * configuration.
 */
import assert from "node:assert/strict";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { runCli, runCliWithin } from "../_helpers/cli.ts";
import { connectStreamable } from "../_helpers/client.ts";
import { type ChildServer, spawnServer } from "../_helpers/server.ts";
import { freePort } from "../_helpers/upstreams.ts";

const TOKEN = "registration-token-0123456789";

/** Polls `probe` every 50 ms until it returns a value, or fails after `ms`. */
async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

async function servers(base: string): Promise<string[]> {
  const res = await fetch(`${base}/api/servers`);
  return (await res.json()).servers.map((s: any) => s.name);
}

async function toolNames(base: string): Promise<string[]> {
  return (await (await fetch(`${base}/tools`)).json()).tools.map((t: any) => t.name);
}

function logged(server: ChildServer, msg: string): any[] {
  return server.logs.flatMap((l) => {
    try {
      const rec = JSON.parse(l);
      return rec.msg === msg ? [rec] : [];
    } catch {
      return [];
    }
  });
}

function gatewayArgs(port: number): string[] {
  return [
    "--port",
    String(port),
    "--kv",
    ":memory:",
    "--registration-token",
    TOKEN,
    "--registry-allow-hosts",
    "127.0.0.1",
  ];
}

Deno.test({
  name:
    "announce: a second Warden registers with the first, is reached through it, re-registers when forgotten, deregisters on shutdown",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const frontPort = freePort();
    // The utilities Warden starts first: the front is not up yet, so it retries with backoff.
    const utilities = await spawnServer(["--kv", ":memory:"], {
      WARDEN_REGISTER_URL: `http://127.0.0.1:${frontPort}`,
      WARDEN_REGISTER_TOKEN: TOKEN,
      WARDEN_REGISTER_NAME: "utilities",
      WARDEN_REGISTER_INTERVAL: "1",
    });
    let front: ChildServer | undefined;
    try {
      await until(
        "a failed first attempt",
        10_000,
        () =>
          Promise.resolve(
            logged(utilities, "announce: registration failed; retrying").length > 0 || undefined,
          ),
      );
      front = await spawnServer(gatewayArgs(frontPort));
      const status = await until("the registration", 20_000, async () => {
        const res = await fetch(`${front!.url}/api/servers/utilities`);
        return res.ok ? await res.json() : (await res.body?.cancel(), undefined);
      });
      assert.equal(status.source, "api");
      assert.equal(status.url, `${utilities.url}/mcp`);
      assert.ok(status.version, "the announced version is recorded");
      const exposed = status.tools.map((t: any) => t.name);
      assert.ok(exposed.includes("utilities__get_time"), exposed.join(","));
      // The front can show the registration before the utilities process has read the answer
      // and logged it: wait for the log line, then it must be the only one.
      const registered = await until("the registration's log line", 10_000, () => {
        const lines = logged(utilities, "announce: registered with the other gateway");
        return Promise.resolve(lines.length > 0 ? lines : undefined);
      });
      assert.equal(registered.length, 1);
      assert.equal(typeof registered[0].latency_ms, "number");
      console.log(`registration round trip: ${registered[0].latency_ms} ms`);

      // "What time is it?" through the front, over MCP (v2 Client, 2026-07-28) and /invoke.
      const client = new Client({ name: "announce-test", version: "1.0.0" }, {
        versionNegotiation: { mode: { pin: "2026-07-28" } },
      });
      await client.connect(new StreamableHTTPClientTransport(new URL(`${front.url}/mcp`)));
      const started = performance.now();
      const viaMcp: any = await client.callTool({
        name: "utilities__get_time",
        arguments: { timezone: "Europe/Oslo" },
      });
      const mcpMs = performance.now() - started;
      await client.close();
      assert.equal(viaMcp.isError ?? false, false, JSON.stringify(viaMcp));
      // The upstream's result untouched (the utilities Warden's own envelope) ...
      assert.equal(viaMcp.structuredContent.policy_verdict, "SEAL", JSON.stringify(viaMcp));
      assert.equal(viaMcp.structuredContent.data.timezone, "Europe/Oslo");
      assert.ok(Math.abs(viaMcp.structuredContent.data.unix_ms - Date.now()) < 60_000);
      // ... and the front's governance beside it.
      assert.equal(viaMcp._meta["warden/governance"].policy_verdict, "SEAL");
      const t0 = performance.now();
      const viaRest = await (await fetch(`${front.url}/invoke`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ tool: "utilities__get_time", arguments: {} }),
      })).json();
      const restMs = performance.now() - t0;
      assert.equal(viaRest.policy_verdict, "SEAL", JSON.stringify(viaRest));
      assert.equal(viaRest.result.structuredContent.data.timezone, "UTC");
      console.log(
        `get_time through the front Warden: MCP ${mcpMs.toFixed(1)} ms, /invoke ${
          restMs.toFixed(1)
        } ms`,
      );

      // The front forgets it (removed by an operator): the utilities Warden registers again.
      const removed = await fetch(`${front.url}/api/servers/utilities`, {
        method: "DELETE",
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      assert.equal(removed.status, 200, await removed.text());
      assert.ok(!(await servers(front.url)).includes("utilities"));
      await until(
        "the re-registration",
        15_000,
        async () => (await servers(front!.url)).includes("utilities") || undefined,
      );
      assert.ok(
        logged(
          utilities,
          "announce: the other gateway no longer lists this Warden; registering again",
        )
          .length >= 1,
      );

      // Shutdown deregisters: once the utilities Warden exited, the front no longer lists it.
      const exit = await utilities.stop("SIGTERM");
      assert.equal(exit.code, 0);
      assert.ok(!(await servers(front.url)).includes("utilities"));
      assert.ok(!(await toolNames(front.url)).includes("utilities__get_time"));
    } finally {
      await utilities.stop("SIGKILL");
      await front?.stop("SIGKILL");
    }
  },
});

Deno.test({
  name: "announce: two Wardens front each other, each exposing only the other's own tools",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const [pa, pb] = [freePort(), freePort()];
    const env = (port: number, name: string) => ({
      WARDEN_REGISTER_URL: `http://127.0.0.1:${port}`,
      WARDEN_REGISTER_TOKEN: TOKEN,
      WARDEN_REGISTER_NAME: name,
    });
    const [a, b] = await Promise.all([
      spawnServer(gatewayArgs(pa), env(pb, "a")),
      spawnServer(gatewayArgs(pb), env(pa, "b")),
    ]);
    try {
      await until("both registrations", 20_000, async () => {
        const [ta, tb] = [await toolNames(a.url), await toolNames(b.url)];
        return ta.includes("b__get_time") && tb.includes("a__get_time") || undefined;
      });
      const [ta, tb] = [await toolNames(a.url), await toolNames(b.url)];
      // No loop: neither re-exposes a re-exposure of its own tools.
      assert.ok(!ta.some((n) => n.startsWith("b__a__")), ta.join(","));
      assert.ok(!tb.some((n) => n.startsWith("a__b__")), tb.join(","));
      // A v1 (2025 session) client through a reaches b's get_time.
      const { client } = await connectStreamable(a.url);
      const res: any = await client.callTool({ name: "b__get_time", arguments: {} });
      await client.close();
      assert.equal(res.structuredContent.policy_verdict, "SEAL", JSON.stringify(res));
      assert.equal(res._meta["warden/governance"].policy_verdict, "SEAL");
    } finally {
      await a.stop("SIGKILL");
      await b.stop("SIGKILL");
    }
  },
});

Deno.test({
  name:
    "announce: a Warden behind --token registers with a minted credential the front presents (never the caller's token)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    const kv = `${dir}/utilities.db`;
    const made = await runCli(["token", "create", "--name", "front", "--kv", kv]);
    assert.equal(made.code, 0, made.stderr);
    const credential = made.stdout.trim().split("\n").at(-1)!;
    const front = await spawnServer(gatewayArgs(freePort()));
    let utilities: ChildServer | undefined;
    try {
      utilities = await spawnServer(["--kv", kv, "--token", "utilities-admin-token-0123"], {
        WARDEN_REGISTER_URL: front.url,
        WARDEN_REGISTER_TOKEN: TOKEN,
        WARDEN_REGISTER_NAME: "utilities",
        WARDEN_REGISTER_CREDENTIAL: credential,
      });
      const status = await until("the registration", 20_000, async () => {
        const res = await fetch(`${front.url}/api/servers/utilities`);
        return res.ok ? await res.json() : (await res.body?.cancel(), undefined);
      });
      assert.equal(status.credential, "manifest_headers");
      assert.doesNotMatch(JSON.stringify(status), new RegExp(credential));
      // Without a token the utilities Warden refuses; through the front, its tools answer.
      const direct = await fetch(`${utilities.url}/invoke`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ tool: "get_time", arguments: {} }),
      });
      await direct.body?.cancel();
      assert.equal(direct.status, 401);
      const via = await (await fetch(`${front.url}/invoke`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ tool: "utilities__get_time", arguments: {} }),
      })).json();
      assert.equal(via.policy_verdict, "SEAL", JSON.stringify(via));
      assert.equal(via.result.structuredContent.data.timezone, "UTC");
      // The utilities Warden sealed the call under the minted token's principal.
      const entries = await (await fetch(`${utilities.url}/vault/entries?start=0&limit=500`, {
        headers: { authorization: "Bearer utilities-admin-token-0123" },
      })).json();
      const calls = entries.entries.map((e: any) => JSON.parse(atob(e.data)))
        .filter((e: any) => e.tool === "get_time");
      assert.ok(calls.length >= 1);
      assert.equal(calls.at(-1).principal, "front");
      // Both logs audit clean from outside, each against its own verifier key.
      for (
        const [base, token] of [[front.url, undefined], [
          utilities.url,
          "utilities-admin-token-0123",
        ]]
      ) {
        const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
        const vkey = (await (await fetch(`${base}/vault/key`, { headers })).text()).trim();
        const args = [
          "verify",
          "--url",
          base!,
          "--key",
          vkey,
          ...(token ? ["--token", token] : []),
        ];
        const verified = await until(`${base} verifies`, 10_000, async () => {
          const r = await runCli(args);
          return r.code === 0 ? r : undefined; // the last checkpoint may be a second away
        });
        assert.match(verified.stdout, /OK/);
      }
    } finally {
      await utilities?.stop();
      await front.stop("SIGKILL");
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("announce: a misconfiguration is refused at start with the setting named", async () => {
  const cases: [Record<string, string>, string[], RegExp][] = [
    [{ WARDEN_REGISTER_URL: "http://127.0.0.1:9" }, [], /needs --register-token/],
    [{ WARDEN_REGISTER_TOKEN: TOKEN }, [], /--register-url \(WARDEN_REGISTER_URL\) is not/],
    [
      {
        WARDEN_REGISTER_URL: "http://127.0.0.1:9/api/servers/register",
        WARDEN_REGISTER_TOKEN: TOKEN,
      },
      [],
      /is the base URL/,
    ],
    [{ WARDEN_REGISTER_URL: "ftp://gw", WARDEN_REGISTER_TOKEN: TOKEN }, [], /http\(s\) URL/],
    [{ WARDEN_REGISTER_URL: "http://127.0.0.1:9", WARDEN_REGISTER_TOKEN: "short" }, [], /16/],
    [
      { WARDEN_REGISTER_URL: "http://127.0.0.1:9", WARDEN_REGISTER_TOKEN: TOKEN },
      ["--token", "a-bearer-token-0123456789"],
      /with --token needs --register-credential/,
    ],
    [
      {
        WARDEN_REGISTER_URL: "http://127.0.0.1:9",
        WARDEN_REGISTER_TOKEN: TOKEN,
        WARDEN_REGISTER_CREDENTIAL: "a-bearer-token-0123456789",
      },
      ["--token", "a-bearer-token-0123456789"],
      /must not be --token/,
    ],
    [
      { WARDEN_REGISTER_URL: "http://127.0.0.1:9", WARDEN_REGISTER_TOKEN: TOKEN },
      ["--register-name", "a__b"],
      /--register-name/,
    ],
  ];
  for (const [env, args, message] of cases) {
    const r = await runCliWithin(
      ["serve", "--port", "0", "--kv", ":memory:", ...args],
      env,
      20_000,
    );
    assert.equal(r.killed, false, `${JSON.stringify(env)} kept serving`);
    assert.equal(r.code, 2, `${JSON.stringify(env)}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
});

// An auditor is a principal whose roles grant no tools: it can audit the log
// from outside (`warden verify --url --token`, the /vault routes) but every
// tool call it makes is refused by F11, and sealed as refused.
import assert from "node:assert/strict";
import { runCli as cli } from "../_helpers/cli.ts";
import { spawnServer } from "../_helpers/server.ts";
import { pollUntil } from "../_helpers/wait.ts";

const ADMIN = "an-admin-token-of-24-chars";

Deno.test("identity: a token with roles [auditor] verifies the log with verify --url --token but cannot call tools", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const kv = `${dir}/w.db`;
    await Deno.writeTextFile(
      `${dir}/policy.json`,
      JSON.stringify({
        roles: { admin: { tools: ["*"] }, auditor: { tools: [] } },
        rate_limits: { per_principal_per_minute: 0, max_concurrent_per_principal: 0 },
      }),
    );
    const made = await cli([
      "token",
      "create",
      "--name",
      "audit",
      "--roles",
      "auditor",
      "--kv",
      kv,
    ]);
    assert.equal(made.code, 0, made.stderr);
    const auditor = made.stdout.trim().split("\n").at(-1)!;
    assert.match(auditor, /^wdn_/);
    const server = await spawnServer([
      "--kv",
      kv,
      "--policy",
      `${dir}/policy.json`,
      "--token",
      ADMIN,
      "--checkpoint-interval",
      "50",
    ]);
    try {
      const invoke = async (secret: string) =>
        await (await fetch(`${server.url}/invoke`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${secret}` },
          body: JSON.stringify({ tool: "calculate", arguments: { expression: "2+2" } }),
        })).json();
      for (let i = 0; i < 3; i++) assert.equal((await invoke(ADMIN)).policy_verdict, "SEAL");
      const refused = await invoke(auditor);
      assert.equal(refused.policy_verdict, "VOID", JSON.stringify(refused));
      assert.match(JSON.stringify(refused), /holds no role granting calculate/);
      // The auditor sees no tools …
      const tools = await (await fetch(`${server.url}/tools`, {
        headers: { authorization: `Bearer ${auditor}` },
      })).json();
      assert.deepEqual(tools.tools ?? tools, []);
      // … but audits the whole log, its refusal included, from outside.
      const vkey = (await (await fetch(`${server.url}/vault/key`, {
        headers: { authorization: `Bearer ${auditor}` },
      })).text()).trim();
      // The last checkpoint may be 50 ms away: verify until it covers the log.
      const verified = await pollUntil(
        () => cli(["verify", "--url", server.url, "--token", auditor, "--key", vkey]),
        (r) => r.code === 0,
        { timeoutMs: 4_000, intervalMs: 100 },
      );
      assert.equal(verified.code, 0, verified.stderr);
      assert.match(verified.stdout, /OK/);
      // Without the token the audit is refused, and says which flag is missing.
      const anonymous = await cli(["verify", "--url", server.url, "--key", vkey]);
      assert.notEqual(anonymous.code, 0);
      assert.match(anonymous.stderr, /--token/);
    } finally {
      await server.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

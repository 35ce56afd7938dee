// deno-lint-ignore-file no-explicit-any -- results are probed field by field
/**
 * F10 for upstream tools: a definition is pinned the first time Warden sees
 * it; an upstream that changes it between two starts has that tool held
 * (888_HOLD) until an operator re-approves the new definition with a signed
 * `warden approve-tool`; a tool-poisoning description is quarantined at
 * registration (F12).
 */
import assert from "node:assert/strict";
import type { UpstreamConfig } from "../../src/gateway/mod.ts";
import { generateOperatorKey } from "../../src/governance/mod.ts";
import { runCli } from "../_helpers/cli.ts";
import { sealedEntries, startServer, type TestServer } from "../_helpers/server.ts";
import { denoDir } from "../_helpers/upstreams.ts";

const CACHE = denoDir();
const UPSTREAM = new URL("../_helpers/changing_upstream.ts", import.meta.url).pathname;

function upstream(description: string): UpstreamConfig {
  return {
    name: "chg",
    transport: "stdio",
    command: Deno.execPath(),
    args: ["run", "-A", "--quiet", UPSTREAM],
    env: { ADD_DESCRIPTION: description, DENO_DIR: CACHE },
    // This project's own test server: trusted, run unsandboxed.
    sandbox: { enabled: false },
  };
}

async function invoke(
  server: TestServer,
  tool: string,
  args: unknown,
  holdId?: string,
): Promise<any> {
  const res = await fetch(`${server.url}/invoke`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ tool, arguments: args, ...(holdId ? { hold_id: holdId } : {}) }),
  });
  return await res.json();
}

Deno.test({
  name:
    "gateway F10: a changed upstream definition is held (888_HOLD) until approve-tool re-pins it; a poisoned one is quarantined",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "warden-pin-" });
    const alice = await generateOperatorKey("alice");
    await Deno.writeTextFile(`${dir}/alice.key`, alice.keyFile);
    const policy = { operators: [{ name: "alice", public_key: alice.publicKey }] };
    const kv = await Deno.openKv(`${dir}/kv.db`);
    try {
      // First start: the definition is pinned.
      let server = await startServer({ kv, policy, upstreams: [upstream("Adds two numbers.")] });
      let first = await invoke(server, "chg__add", { a: 2, b: 3 });
      assert.equal(first.policy_verdict, "SEAL", JSON.stringify(first));
      assert.equal(first.result.content[0].text, "5");
      const pinned = (await sealedEntries(server, "upstream_tool_pinned")).map((e) => e.tool)
        .sort();
      assert.deepEqual(pinned, ["add", "poisoned"]);

      // The poisoned tool is quarantined: not listed, refused on call, and the quarantine is sealed.
      const listed = (await (await fetch(`${server.url}/tools`)).json()).tools.map((t: any) =>
        t.name
      );
      assert.ok(listed.includes("chg__add"));
      assert.ok(!listed.includes("chg__poisoned"));
      const poisoned = await invoke(server, "chg__poisoned", { city: "Oslo" });
      assert.equal(poisoned.policy_verdict, "VOID");
      assert.equal(poisoned.result, undefined);
      assert.ok(
        (await sealedEntries(server, "upstream_tool_quarantined")).some((e) =>
          e.tool === "poisoned"
        ),
      );
      await server.close();

      // Second start: the upstream changed the description. The tool is held (888_HOLD), does
      // not run, and the hold says how an operator re-approves the new definition.
      server = await startServer({
        kv,
        policy,
        upstreams: [upstream("Adds two numbers. Now also remembers them.")],
      });
      const held = await invoke(server, "chg__add", { a: 2, b: 3 });
      assert.equal(held.policy_verdict, "888_HOLD", JSON.stringify(held));
      assert.equal(held.result, undefined);
      assert.match(held.message, /definition of chg__add changed since it was pinned/);
      assert.match(held.message, /warden approve-tool chg TOOL/);
      const holdId: string = held._constitutional.hold.id;
      assert.match(holdId, /\S/);
      // A per-call approval alone cannot lift F10: the repeated call is held again, not run.
      const early = await runCli([
        "approve",
        holdId,
        "--key",
        `${dir}/alice.key`,
        "--url",
        server.url,
      ]);
      assert.equal(early.code, 0, early.stderr);
      const still = await invoke(server, "chg__add", { a: 2, b: 3 }, holdId);
      assert.equal(still.policy_verdict, "888_HOLD", JSON.stringify(still));
      assert.equal(still.result, undefined);
      const changed = await sealedEntries(server, "upstream_tool_changed");
      assert.equal(changed.length, 1);
      const status = await (await fetch(`${server.url}/api/servers/chg`)).json();
      const add = status.tools.find((t: any) => t.upstream_tool === "add");
      assert.equal(add.state, "changed");
      assert.notEqual(add.definition_sha256, add.pinned_sha256);

      // A wrong key does not approve it.
      const mallory = await generateOperatorKey("alice");
      await Deno.writeTextFile(`${dir}/mallory.key`, mallory.keyFile);
      const refused = await runCli([
        "approve-tool",
        "chg",
        "add",
        "--key",
        `${dir}/mallory.key`,
        "--url",
        server.url,
      ]);
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(refused.stderr, /does not verify/);
      assert.equal((await invoke(server, "chg__add", { a: 1, b: 1 })).policy_verdict, "888_HOLD");

      // The operator signs the new definition; the tool runs again, and the approval is sealed.
      const approved = await runCli([
        "approve-tool",
        "chg",
        "add",
        "--key",
        `${dir}/alice.key`,
        "--url",
        server.url,
      ]);
      assert.equal(approved.code, 0, approved.stderr);
      assert.match(approved.stdout, new RegExp(`pinned ${add.definition_sha256}`));
      first = await invoke(server, "chg__add", { a: 2, b: 3 });
      assert.equal(first.policy_verdict, "SEAL", JSON.stringify(first));
      assert.equal(first.result.content[0].text, "5");
      const approvals = await sealedEntries(server, "upstream_tool_approved");
      assert.equal(approvals.length, 1);
      assert.equal(approvals[0].operator, "alice");
      assert.equal(approvals[0].definition_sha256, add.definition_sha256);
      await server.close();
    } finally {
      kv.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

// deno-lint-ignore-file no-explicit-any -- envelopes and packages are probed field by field
/**
 * evidence_package, chain_verify and security_audit through a real server:
 * a package written to a file passes `warden verify` offline (the real CLI
 * in its own process) and, altered, fails naming the index; chain_verify
 * agrees; security_audit verifies the whole vault and names an entry changed
 * in KV behind the server's back.
 */
import assert from "node:assert/strict";
import { vaultEntryKey } from "../../src/store/mod.ts";
import { fromBase64, toBase64 } from "../../src/lib/mod.ts";
import { runCli } from "../_helpers/cli.ts";
import { connectStreamable, envelopeOf } from "../_helpers/client.ts";
import { startServer } from "../_helpers/server.ts";

/** Re-encodes entry `n` of `pkg` with one field changed (still canonical JSON). */
function alter(pkg: any, n: number, field: string, value: unknown): any {
  const copy = structuredClone(pkg);
  const entry = JSON.parse(new TextDecoder().decode(fromBase64(copy.entries[n].data)));
  entry[field] = value;
  const sorted = Object.fromEntries(Object.keys(entry).sort().map((k) => [k, entry[k]]));
  copy.entries[n].data = toBase64(new TextEncoder().encode(JSON.stringify(sorted)));
  return copy;
}

Deno.test({
  name: "evidence_package passes `warden verify` offline; altered, it fails naming the index",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const server = await startServer();
    const dir = await Deno.makeTempDir({ prefix: "warden_package_" });
    try {
      const { client } = await connectStreamable(server.url);
      const call = async (name: string, args: Record<string, unknown>) =>
        envelopeOf(await client.callTool({ name, arguments: args }));
      const runs = [];
      for (const n of [1, 2]) {
        runs.push(
          await call("secure_execute", {
            code: `console.log(${n} * 21)`,
            security_level: "verified",
            case_id: "case-42",
          }),
        );
      }
      // An entry of this caller's own (vault_indices reads only those).
      const own = (await call("get_time", {}))._constitutional.vault.index;
      const one = await call("evidence_package", { execution_id: runs[0].data.execution_id });
      assert.equal(one.policy_verdict, "SEAL", one.message);
      assert.equal(one.data.entries, 1);
      assert.equal(one.data.receipts, 1);
      const vkey = (await (await fetch(`${server.url}/vault/key`)).text()).trim();
      assert.equal(one.data.vkey, vkey);
      const file = `${dir}/package.json`;
      await Deno.writeTextFile(file, JSON.stringify(one.data.package));
      const ok = await runCli(["verify", file, "--key", vkey]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /^OK: evidence package of 1 entries .* 1 receipts/);
      assert.doesNotMatch(ok.stderr, /NOTHING WAS AUTHENTICATED/);

      // A case packages both executions, plus any entry asked for by index.
      const index = runs[1].data.receipt.vault_index;
      const both = await call("evidence_package", { case_id: "case-42", vault_indices: [own] });
      assert.equal(both.data.entries, 3);
      assert.equal(both.data.receipts, 2);
      await Deno.writeTextFile(file, JSON.stringify(both.data.package));
      assert.equal((await runCli(["verify", file, "--key", vkey])).code, 0);

      // Altered: the output digest of the second execution's entry.
      const n = both.data.package.entries.findIndex((e: any) => e.index === index);
      const forged = alter(both.data.package, n, "output_sha256", "0".repeat(64));
      await Deno.writeTextFile(file, JSON.stringify(forged));
      const bad = await runCli(["verify", file, "--key", vkey]);
      assert.equal(bad.code, 1);
      assert.match(
        bad.stderr,
        new RegExp(`^FAIL at index ${index}: entry ${index} is not the entry`),
      );
      // A receipt re-pointed at another entry, and a package signed by another key, fail too.
      const swapped = structuredClone(both.data.package);
      swapped.receipts = [
        one.data.package.receipts[0].replace(/"vault_index":\d+/, `"vault_index":${own}`),
      ];
      await Deno.writeTextFile(file, JSON.stringify(swapped));
      assert.match((await runCli(["verify", file, "--key", vkey])).stderr, /invalid signature/);
      await Deno.writeTextFile(file, JSON.stringify(one.data.package));
      const other = await runCli([
        "verify",
        file,
        "--key",
        vkey.replace(/\+[0-9a-f]{8}\+/, "+00000000+"),
      ]);
      assert.equal(other.code, 1);

      // chain_verify: the same facts here, and the forged package refused at the same index.
      const chained = await call("chain_verify", {
        fact_ids: [runs[0].data.evidence_id, runs[1].data.execution_id, own],
      });
      assert.equal(chained.data.ok, true, JSON.stringify(chained.data));
      assert.equal(chained.data.entries, 3);
      assert.equal(chained.data.receipts, 2);
      const refused = await call("chain_verify", { package: forged });
      assert.equal(refused.data.ok, false);
      assert.equal(refused.data.index, index);
      assert.match(refused.message, new RegExp(`FAIL at index ${index}`));
      await client.close();
    } finally {
      await server.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "security_audit verifies the whole vault, key, policy, holds and sandboxes; names a changed entry",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const server = await startServer();
    try {
      const { client } = await connectStreamable(server.url);
      const call = async (name: string, args: Record<string, unknown>) =>
        envelopeOf(await client.callTool({ name, arguments: args }));
      for (let i = 0; i < 5; i++) await call("get_time", {});
      await server.app.ledger.signCheckpoint();
      const audit = await call("security_audit", { audit_level: "comprehensive" });
      const checks = Object.fromEntries(audit.data.checks.map((c: any) => [c.name, c]));
      assert.equal(checks.vault_chain.ok, true, checks.vault_chain.detail);
      assert.match(checks.vault_chain.detail, /entries, hash chain, root/);
      assert.equal(checks.checkpoint.ok, true, checks.checkpoint.detail);
      assert.match(checks.code_sandbox.detail, /^available/);
      assert.match(checks.signing_key.detail, /^warden\//);
      assert.notEqual(audit.data.status, "FAIL");

      // Change one sealed entry in KV behind the server's back.
      const target = 3;
      const key = vaultEntryKey(target);
      const raw = (await server.kv.get<Uint8Array>(key)).value!;
      const needle = new TextEncoder().encode('"tool":"get_time"');
      let at = -1;
      for (let k = raw.length - needle.length; k >= 0 && at < 0; k--) {
        if (needle.every((b, m) => raw[k + m] === b)) at = k;
      }
      assert.ok(at > 0, "the entry names its tool");
      const changed = new Uint8Array(raw);
      changed.set(new TextEncoder().encode('"tool":"get_tima"'), at);
      await server.kv.set(key, changed);
      const after = await call("security_audit", { audit_level: "comprehensive" });
      assert.equal(after.data.status, "FAIL");
      const chain = after.data.checks.find((c: any) => c.name === "vault_chain");
      assert.equal(chain.ok, false);
      assert.match(chain.detail, new RegExp(`index ${target}\\b`));
      await client.close();
    } finally {
      await server.close();
    }
  },
});

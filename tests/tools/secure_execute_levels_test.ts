// deno-lint-ignore-file no-explicit-any -- envelopes and vault entries are probed field by field
/**
 * secure_execute's security levels through a real server: `verified` seals an
 * evidence entry and returns a receipt signed by the vault's key that names
 * it; `fortress` redacts PII from what comes back and holds an irreversible
 * execution until an operator signs, after which it runs once.
 */
import assert from "node:assert/strict";
import { generateOperatorKey, loadOperatorKey, signDecision } from "../../src/governance/mod.ts";
import { digestJson, sha256HexOfText, toHex } from "../../src/lib/mod.ts";
import { hashLeaf } from "../../src/merkle/mod.ts";
import { openReceipt } from "../../src/vault/mod.ts";
import { callHeld, connectStreamable, envelopeOf } from "../_helpers/client.ts";
import { startServer, type TestServer } from "../_helpers/server.ts";

async function entry(server: TestServer, index: number): Promise<any> {
  const e = await server.app.ledger.entry(index);
  return JSON.parse(new TextDecoder().decode(e!.bytes));
}

Deno.test({
  name: "secure_execute verified: an evidence entry and a signed receipt that names it",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const server = await startServer();
    try {
      const { client } = await connectStreamable(server.url);
      const code = "console.log('verified', 2 ** 10)";
      const env = envelopeOf(
        await client.callTool({
          name: "secure_execute",
          arguments: { code, security_level: "verified", label: "pow", case_id: "case-1" },
        }),
      );
      assert.equal(env.policy_verdict, "SEAL", env.message);
      const data = env.data;
      assert.equal(data.stdout, "verified 1024\n");
      assert.equal(
        data.output_sha256,
        digestJson({
          exit_code: 0,
          signal: null,
          stdout: "verified 1024\n",
          stderr: "",
        }),
      );
      // The receipt verifies with the key the server publishes, and says what ran.
      const vkey = (await (await fetch(`${server.url}/vault/key`)).text()).trim();
      const receipt = await openReceipt(data.receipt.note, vkey);
      assert.equal(receipt.execution_id, data.execution_id);
      assert.equal(receipt.input_sha256, sha256HexOfText(code));
      assert.equal(receipt.output_sha256, data.output_sha256);
      assert.equal(receipt.runtime.permissions, "none");
      assert.equal(receipt.limits.timeout_ms, 5000);
      assert.equal(receipt.vault_index, data.receipt.vault_index);
      assert.equal(data.evidence_id, `vault:${receipt.vault_index}`);
      // …and the entry it names holds the same facts, with the leaf hash the receipt signed.
      const sealed = await entry(server, receipt.vault_index);
      assert.equal(sealed.type, "execution_evidence");
      assert.equal(sealed.execution_id, data.execution_id);
      assert.equal(sealed.output_sha256, data.output_sha256);
      assert.equal(sealed.case_id, "case-1");
      const stored = await server.app.ledger.entry(receipt.vault_index);
      assert.equal(receipt.vault_leaf_hash, toHex(hashLeaf(stored!.bytes)));
      // A changed receipt does not verify.
      const forged = data.receipt.note.replace(data.output_sha256, "0".repeat(64));
      await assert.rejects(() => openReceipt(forged, vkey), /invalid signature/);
      // standard has neither.
      const plain = envelopeOf(
        await client.callTool({ name: "secure_execute", arguments: { code } }),
      );
      assert.equal(plain.data.receipt, undefined);
      assert.equal(plain.data.evidence_id, undefined);
      await client.close();
    } finally {
      await server.close();
    }
  },
});

Deno.test({
  name:
    "secure_execute fortress: PII redacted from the output; irreversible waits for an operator, then runs once",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const operator = await generateOperatorKey("ops");
    const server = await startServer({
      policy: { operators: [{ name: "ops", public_key: operator.publicKey }], store_bodies: true },
    });
    try {
      const { client } = await connectStreamable(server.url);
      // The arguments hold no email (F6 would find it there); the program assembles one.
      const code =
        'const at = String.fromCharCode(64); console.log("contact jane.doe" + at + "example.com")';
      const redacted = envelopeOf(
        await client.callTool({
          name: "secure_execute",
          arguments: { code, security_level: "fortress" },
        }),
      );
      assert.equal(
        redacted.policy_verdict,
        "SEAL",
        JSON.stringify([redacted.policy_verdict, redacted._constitutional.reasons]),
      );
      assert.doesNotMatch(redacted.data.stdout, /jane\.doe/);
      assert.match(redacted.data.stdout, /^contact \[REDACTED:email\]\n$/);
      assert.deepEqual(redacted.data.redactions, { email: 1 });
      const receipt = await openReceipt(
        redacted.data.receipt.note,
        server.app.identity.signer.vkey,
      );
      assert.equal(receipt.security_level, "fortress");
      assert.equal(receipt.output_sha256, redacted.data.output_sha256);

      // Irreversible at fortress: 888_HOLD, nothing runs until an operator signs.
      const marker = `ran-${crypto.randomUUID()}`;
      const args = {
        code: `console.log("${marker}")`,
        security_level: "fortress",
        irreversible: true,
      };
      const held = envelopeOf(await client.callTool({ name: "secure_execute", arguments: args }));
      assert.equal(held.policy_verdict, "888_HOLD", held.message);
      assert.equal(held.data, null);
      const holdId = held._constitutional.hold.id;
      const hold = await (await fetch(`${server.url}/holds/${holdId}`)).json();
      const key = await loadOperatorKey(operator.keyFile);
      const signature = await signDecision(key, {
        decision: "approve",
        holdId,
        digest: hold.digest,
      });
      const approved = await fetch(`${server.url}/holds/${holdId}/approve`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ operator: "ops", signature }),
      });
      assert.equal(approved.status, 200, await approved.clone().text());
      await approved.body?.cancel();
      const ran = await callHeld(client, "secure_execute", args, holdId);
      assert.equal(ran.policy_verdict, "SEAL", ran.message);
      assert.equal(ran.data.stdout, `${marker}\n`);
      assert.ok(ran.data.receipt.note);
      const again = await callHeld(client, "secure_execute", args, holdId);
      assert.equal(again.policy_verdict, "VOID", "an approval releases one execution");
      // The email never reached the vault.
      const head = await server.app.ledger.head();
      for await (const e of server.app.ledger.entries(0, head.size)) {
        assert.doesNotMatch(new TextDecoder().decode(e.bytes), /jane\.doe/);
      }
      await client.close();
    } finally {
      await server.close();
    }
  },
});

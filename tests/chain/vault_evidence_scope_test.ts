// deno-lint-ignore-file no-explicit-any -- envelopes are probed field by field
/**
 * A `vault:N` evidence id names an entry of the log; a tool resolves it only for the principal
 * that entry records. Before, any principal could cite another's entry in reason_mind (F2 said
 * "grounded", or "shares no words": which words another's entry holds, and that it exists),
 * package it with evidence_package and verify it with chain_verify. Now another principal's entry
 * (and an entry no principal caused, such as `policy_loaded` or a usage summary) is answered
 * exactly like an index that does not exist. Two real principals, minted tokens, real HTTP: the
 * v1 SDK client (2025 session) and the v2 client pinned to 2026-07-28.
 */
import assert from "node:assert/strict";
import { createToken } from "../../src/identity/mod.ts";
import { connectModernAs, connectV1As } from "../_helpers/client.ts";
import { startServer } from "../_helpers/server.ts";

Deno.test({
  name: "vault:N resolves only for the principal that caused the entry; others get 'no such entry'",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using server = await startServer({
      policy: { rate_limits: { per_principal_per_minute: 0, per_ip_per_minute: 0 } },
    });
    const alice = await createToken(server.kv, { name: "alice" });
    const bob = await createToken(server.kv, { name: "bob" });
    const a: any = await connectV1As(server.url, alice.secret, "scope-v1");
    const b: any = await connectModernAs(server.url, bob.secret, "scope-v2");
    const call = async (c: any, name: string, args: Record<string, unknown>) =>
      (await c.callTool({ name, arguments: args })).structuredContent;
    try {
      // Alice's verified execution: an execution_evidence entry that records principal alice.
      const run = await call(a, "secure_execute", {
        code: "console.log(6 * 7)",
        security_level: "verified",
      });
      assert.equal(run.status, "OK", run.message);
      const mine = run.data.evidence_id as string;
      const index = Number(mine.slice("vault:".length));
      const { size } = await server.app.ledger.head();
      assert.ok(index < size);
      const missing = 999_999;
      // Both a claim sharing words with the entry and one sharing none: before, the second told
      // the caller the entry exists ("shares no words") where a missing id is "not known".
      const claims = [
        "The verified code execution printed its output",
        "Zebras migrate across grasslands",
      ];

      const reasonAs = async (c: any, ref: string, query: string) => {
        const s = (await call(c, "anchor_session", { query: "review an execution" })).data;
        const r = await call(c, "reason_mind", {
          session_id: s.session_id,
          query,
          grounding: [ref],
        });
        // The answer names the id in its canonical form, vault:N.
        const id = `vault:${Number(ref.replace(/\D/g, ""))}`;
        return { verdict: r.policy_verdict, message: String(r.message).replaceAll(id, "<ID>") };
      };
      // Alice may cite her own entry.
      const own = await reasonAs(a, mine, claims[0]);
      assert.equal(own.verdict, "SEAL", own.message);

      // Bob: alice's entry, the policy_loaded entry (index 0, no principal's) and a missing index
      // all get the same answer, for either claim.
      for (const query of claims) {
        const absent = await reasonAs(b, `vault:${missing}`, query);
        assert.equal(absent.verdict, "SABAR");
        for (const ref of [mine, String(index), `VAULT:${index}`, "vault:0"]) {
          assert.deepEqual(await reasonAs(b, ref, query), absent, `${ref} / ${query}`);
        }
      }

      // evidence_package and chain_verify: the same answer as for a missing index.
      const number = (n: number) => new RegExp(`(?<![\\w.])${n}(?![\\w.])`, "g");
      const scrub = (r: any, n: number) => ({
        status: r.status,
        verdict: r.policy_verdict,
        message: String(r.message).replace(number(n), "<N>"),
        data: JSON.stringify(r.data ?? null).replace(number(n), "<N>"),
      });
      const pkgOf = async (c: any, n: number) =>
        scrub(await call(c, "evidence_package", { vault_indices: [n] }), n);
      const verifyOf = async (c: any, n: number | string) =>
        scrub(
          await call(c, "chain_verify", { fact_ids: [n] }),
          Number(String(n).replace(/\D/g, "")),
        );
      const pkgAbsent = await pkgOf(b, missing);
      assert.notEqual(pkgAbsent.status, "OK", JSON.stringify(pkgAbsent));
      assert.deepEqual(await pkgOf(b, index), pkgAbsent);
      assert.deepEqual(await pkgOf(b, 0), pkgAbsent);
      const verifyAbsent = await verifyOf(b, missing);
      assert.notEqual(verifyAbsent.status, "OK", JSON.stringify(verifyAbsent));
      assert.deepEqual(await verifyOf(b, index), verifyAbsent);
      assert.deepEqual(await verifyOf(b, mine), verifyAbsent);
      assert.deepEqual(await verifyOf(b, 0), verifyAbsent);

      // Alice packages and verifies her own entry.
      const pkg = await call(a, "evidence_package", { vault_indices: [index] });
      assert.equal(pkg.status, "OK", pkg.message);
      assert.equal(pkg.data.entries, 1);
      const verified = await call(a, "chain_verify", { fact_ids: [mine] });
      assert.equal(verified.data.ok, true, JSON.stringify(verified.data));
    } finally {
      await a.close();
      await b.close();
    }
  },
});

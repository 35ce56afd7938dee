// Evidence ids resolve only to what the calling principal may cite: content hashes and fetched
// URLs to records it fetched itself (before, any principal's fetched content resolved, and F2's
// answer — grounded, or "shares no words with the claim" — told the caller what another fetched),
// governed sessions to its own, vault entries to those that record it (vault_evidence_scope_test).
import assert from "node:assert/strict";
import { createEvidenceResolver } from "../../src/chain/mod.ts";
import { createEvidenceStore, createGovSessionStore } from "../../src/store/mod.ts";
import { createLedger } from "../../src/vault/mod.ts";
import { generateSigner } from "../../src/merkle/mod.ts";

Deno.test("evidence resolver: a content hash or URL resolves only for the principal that fetched it", async () => {
  using kv = await Deno.openKv(":memory:");
  const evidence = createEvidenceStore(kv);
  const ledger = createLedger(kv, {
    origin: "warden/test",
    signer: await generateSigner("warden/test"),
  });
  const resolve = createEvidenceResolver({
    ledger,
    evidence,
    sessions: createGovSessionStore(kv, { ttlMs: 60_000 }),
  });
  const sha = "ab".repeat(32);
  await evidence.put({
    sha256: sha,
    url: "https://intranet.example/salaries",
    finalUrl: "https://intranet.example/salaries",
    title: "Salaries",
    text: "alice earns 180000",
    contentType: "text/plain",
    bytes: 18,
    fetchedAt: new Date(0).toISOString(),
  }, "alice");
  const ids = [sha, "https://intranet.example/salaries"];

  const own = await resolve(ids, "alice");
  assert.match(own.get(sha) ?? "", /alice earns 180000/);
  assert.match(own.get("https://intranet.example/salaries") ?? "", /alice earns 180000/);

  // The URL as another spelling of it (scheme and host case) resolves to the same record.
  const spelled = "HTTPS://INTRANET.example/salaries";
  assert.match((await resolve([spelled], "alice")).get(spelled) ?? "", /alice earns 180000/);
  const other = await resolve([...ids, spelled], "mallory");
  assert.equal(other.size, 0, `mallory resolved ${[...other.keys()].join(", ")}`);
  assert.equal(await evidence.fetchedBy("mallory", sha), false);
  assert.equal(await evidence.fetchedBy("alice", sha), true);

  // Once mallory fetches the same content herself, it is her evidence too.
  await evidence.put((await evidence.get(sha))!, "mallory");
  assert.match((await resolve([sha], "mallory")).get(sha) ?? "", /alice earns/);
});

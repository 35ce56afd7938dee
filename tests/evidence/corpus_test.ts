/** The corpus recall_memory and search_reality rank over: BM25 (pure) and the caller-only gathering (real KV). */
import assert from "node:assert/strict";
import { rankBm25, searchCorpus } from "../../src/evidence/mod.ts";
import { createContextService } from "../../src/services/mod.ts";
import { createEvidenceStore, createGovSessionStore } from "../../src/store/mod.ts";
import { createLedger } from "../../src/vault/mod.ts";
import { generateSigner } from "../../src/merkle/mod.ts";

const doc = (id: string, text: string) => ({ source: "t", id, title: id, text });

Deno.test("rankBm25() scores by BM25 (k1 1.2, b 0.75), best first, matches only", () => {
  // N = 3 documents, "zebrafish" in 2 of them: idf = ln(1 + (3 - 2 + 0.5) / (2 + 0.5)) = ln 1.6.
  // Lengths 3, 2, 1 tokens, average 2.
  // a: tf 2, |d| 3 → 2·2.2 / (2 + 1.2·(0.25 + 0.75·3/2)) = 4.4 / 3.65; × ln 1.6 = 0.56658 → 0.567
  // b: tf 1, |d| 2 → 2.2 / (1 + 1.2·1) = 1;                            × ln 1.6 = 0.47000 → 0.47
  const items = rankBm25(
    [doc("c", "mouse"), doc("b", "Zebrafish mouse"), doc("a", "zebrafish ZEBRAFISH fin")],
    "zebrafish",
    10,
  );
  assert.deepEqual(items.map((i) => [i.id, i.score]), [["a", 0.567], ["b", 0.47]]);
  assert.deepEqual(rankBm25([doc("a", "zebrafish")], "zebrafish", 0), []);
  // No term of two or more letters or digits: nothing matches.
  assert.deepEqual(rankBm25([doc("a", "a b c")], "a ? !", 10), []);
});

Deno.test("rankBm25() redacts titles and snippets on the way out and cuts snippets to 280", () => {
  const [item] = rankBm25(
    [{
      source: "t",
      id: "x",
      title: "mail carol@example.org",
      text: `zebrafish notes for carol@example.org ${"z".repeat(1000)}`,
    }],
    "zebrafish",
    1,
  );
  assert.doesNotMatch(item.title + item.snippet, /carol@example\.org/);
  assert.match(item.snippet, /REDACTED/);
  assert.equal(item.snippet.length, 280);
});

Deno.test("searchCorpus() ranks only the caller's sessions, evidence, vault entries and context documents", async () => {
  using kv = await Deno.openKv(":memory:");
  const sessions = createGovSessionStore(kv, { ttlMs: 60_000 });
  const evidence = createEvidenceStore(kv);
  const ledger = createLedger(kv, {
    origin: "warden/test",
    signer: await generateSigner("warden/test"),
  });
  const context = createContextService(kv);
  for (const who of ["alice", "bob"]) {
    const s = await sessions.create({
      principal: who,
      actorId: null,
      intent: `${who} studies zebrafish`,
      mcpSession: null,
    });
    await evidence.put({
      sha256: (who === "alice" ? "a" : "b").repeat(64),
      url: `https://example.org/${who}`,
      finalUrl: `https://example.org/${who}`,
      title: `zebrafish paper of ${who}`,
      text: "zebrafish fins regrow",
      contentType: "text/html",
      bytes: 10,
      fetchedAt: new Date().toISOString(),
    }, who);
    await ledger.append({ type: "tool_call", tool: "zebrafish", principal: who, session: s.id });
    await context.add(who, {
      text: `zebrafish lab notebook of ${who}`,
      metadata: { title: `notebook ${who}` },
    });
  }
  const items = await searchCorpus({ sessions, evidence, ledger, context }, {
    principal: "alice",
    query: "zebrafish",
    limit: 10,
  });
  assert.deepEqual(items.map((i) => i.source).sort(), [
    "context",
    "evidence",
    "session",
    "vault",
  ]);
  assert.ok(!JSON.stringify(items).includes("bob"), JSON.stringify(items));
  assert.equal(items.find((i) => i.source === "vault")?.id, "vault:0");
  const none = await searchCorpus({ sessions, evidence, ledger, context }, {
    principal: "mallory",
    query: "zebrafish",
    limit: 10,
  });
  assert.deepEqual(none, []);
});

// deno-lint-ignore-file no-explicit-any -- envelopes and vault entries are probed field by field
/**
 * The context tools through a real server: two principals with minted tokens,
 * the v1 SDK client (2025 session), the v2 client pinned to 2026-07-28 and
 * REST (`/api/mcp/context/...`). Each principal searches and walks only its
 * own documents and graph; the vault records the text's digest, never the text.
 */
import assert from "node:assert/strict";
import { createToken } from "../../src/identity/mod.ts";
import { sha256HexOfText } from "../../src/lib/mod.ts";
import { connectModernAs, connectV1As } from "../_helpers/client.ts";
import { startServer } from "../_helpers/server.ts";

// Letters only: a random UUID's digit groups sometimes pass as a card number (F6 → PARTIAL).
const MARKER = `textmarker${
  Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => String.fromCharCode(97 + (b % 26)))
    .join("")
}`;

Deno.test({
  name: "context tools: add, BM25 search and graph per principal, in both eras and over REST",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using server = await startServer({
      // store_bodies: the sealed record of each call is kept whole, so what it holds is visible.
      policy: {
        rate_limits: { per_principal_per_minute: 0, per_ip_per_minute: 0 },
        store_bodies: true,
      },
    });
    const alice = await createToken(server.kv, { name: "alice" });
    const bob = await createToken(server.kv, { name: "bob" });
    const a: any = await connectV1As(server.url, alice.secret, "context-v1");
    const b: any = await connectModernAs(server.url, bob.secret, "context-v2");
    const call = async (c: any, name: string, args: Record<string, unknown>) => {
      const r = await c.callTool({ name, arguments: args });
      assert.notEqual(r.isError, true, `${name}: ${JSON.stringify(r)}`);
      return r.structuredContent;
    };
    try {
      const text = `Warden seals every call into the Vault. ${MARKER}`;
      const added = await call(a, "context_add", {
        text,
        metadata: { source: "notes" },
        relations: [{ from: "Warden", type: "uses", to: "Deno KV" }],
      });
      assert.equal(added.policy_verdict, "SEAL", JSON.stringify(added._constitutional));
      assert.equal(added.data.status, "indexed");
      assert.deepEqual(added.data.entities.sort(), ["deno kv", "vault", "warden"]);
      await call(a, "context_add", { text: "Unrelated gardening notes about tomatoes." });

      const found = await call(a, "context_search", { query: `${MARKER} seals` });
      assert.equal(found.data.hits.length, 1);
      assert.equal(found.data.hits[0].id, added.data.id);
      assert.deepEqual(found.data.hits[0].metadata, { source: "notes" });
      assert.ok(found.data.hits[0].score > 0);

      const graph = await call(a, "context_graph", { entity: "Warden", depth: 1 });
      assert.deepEqual(graph.data.nodes.map((n: any) => n.id).sort(), [
        "deno kv",
        "vault",
        "warden",
      ]);
      assert.ok(graph.data.edges.some((e: any) => e.type === "uses" && e.to === "deno kv"));

      // Bob (2026-07-28 client) sees nothing of alice's.
      const theirs = await call(b, "context_search", { query: MARKER });
      assert.deepEqual(theirs.data.hits, []);
      assert.equal(theirs.data.total_docs, 0);
      assert.equal((await call(b, "context_graph", { entity: "Warden" })).data.found, false);
      await call(b, "context_add", { text: `Bob's own ${MARKER}` });
      assert.equal((await call(b, "context_search", { query: MARKER })).data.total_docs, 1);

      // REST maps onto the same tools.
      const rest = await fetch(`${server.url}/api/mcp/context/search`, {
        method: "POST",
        headers: { authorization: `Bearer ${alice.secret}`, "content-type": "application/json" },
        body: JSON.stringify({ query: "tomatoes" }),
      }).then((r) => r.json());
      assert.equal(rest.tool, "context_search");
      assert.equal(rest.data.hits.length, 1);

      // Bad input is a tool error naming the problem.
      const bad = await a.callTool({
        name: "context_add",
        arguments: { text: "x", relations: [{ from: "A", type: "Not Valid", to: "B" }] },
      });
      assert.equal(bad.isError, true);

      // The vault has the text's digest, never the text or a document read back.
      const head = await server.app.ledger.head();
      const adds = [];
      for (let i = 0; i < head.size; i++) {
        const raw = new TextDecoder().decode((await server.app.ledger.entry(i))!.bytes);
        assert.ok(!raw.includes("seals every call"), `entry ${i} holds the text`);
        assert.ok(!raw.includes("tomatoes."), `entry ${i} holds a document`);
        const e = JSON.parse(raw);
        if (e.tool === "context_add" && e.principal === "alice" && e.outcome === "ok") {
          adds.push(JSON.parse(e.body).arguments);
        }
      }
      assert.equal(adds.length, 2);
      assert.equal(adds[0].text_sha256, sha256HexOfText(text));
      assert.equal(adds[0].text, undefined);

      // recall_memory and search_reality draw on the caller's context index (their results,
      // snippets included, are sealed whole under store_bodies like any tool's: checked last).
      const recalled = await call(a, "recall_memory", { current_thought_vector: MARKER });
      const fromContext = recalled.data.items.filter((i: any) => i.source === "context");
      assert.deepEqual(fromContext.map((i: any) => i.id), [added.data.id]);
      const searched = await call(a, "search_reality", { query: `${MARKER} vault` });
      assert.ok(
        searched.data.results.some((r: any) => r.source === "context" && r.id === added.data.id),
        JSON.stringify(searched.data),
      );

      const bobRecall = await call(b, "recall_memory", {
        current_thought_vector: `${MARKER} seals`,
      });
      // Bob recalls his own context document, never alice's.
      const bobContext = bobRecall.data.items.filter((i: any) => i.source === "context");
      assert.equal(bobContext.length, 1);
      assert.notEqual(bobContext[0].id, added.data.id);

      // Bob cannot delete alice's document; alice deletes it (over REST) and it is gone.
      const notHis = await call(b, "context_delete", { id: added.data.id });
      assert.equal(notHis.data.removed, false);
      const deleted = await fetch(`${server.url}/api/mcp/context/delete`, {
        method: "POST",
        headers: { authorization: `Bearer ${alice.secret}`, "content-type": "application/json" },
        body: JSON.stringify({ id: added.data.id }),
      }).then((r) => r.json());
      assert.equal(deleted.tool, "context_delete");
      assert.equal(deleted.data.removed, true);
      const gone = await call(a, "context_search", { query: `${MARKER} seals` });
      assert.deepEqual(gone.data.hits, []);
      assert.equal(gone.data.total_docs, 1);
      // Replacing under a known id (2026 path for bob's own document).
      const bobs = (await call(b, "context_search", { query: MARKER })).data.hits[0].id;
      const replaced = await call(b, "context_add", { id: bobs, text: "Bob rewrote it" });
      assert.equal(replaced.data.status, "replaced");
      assert.deepEqual((await call(b, "context_search", { query: MARKER })).data.hits, []);
      assert.equal((await call(b, "context_search", { query: "rewrote" })).data.hits[0].id, bobs);
    } finally {
      await a.close();
      await b.close();
    }
  },
});

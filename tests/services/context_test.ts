/**
 * The context service without MCP: BM25 scores on a small corpus against
 * values computed by hand below, the same scores out of the KV index,
 * per-principal namespaces, limits, the extractor, graph queries with their
 * caps, and a 10 000-document corpus searched with a bounded number of KV
 * reads (counted through a wrapper around a real KV).
 */
import assert from "node:assert/strict";
import {
  createContextService,
  extract,
  idf,
  rank,
  tokenize,
} from "../../src/services/context/mod.ts";
import { ContextError } from "../../src/services/mod.ts";
import { countingKv } from "../_helpers/kv.ts";

/*
 * The corpus (stopwords none, lengths in terms): N = 3, total length 9, avgdl = 3.
 *   d1 "apple banana apple"             length 3
 *   d2 "banana cherry"                  length 2
 *   d3 "cherry date elderberry fig"     length 4
 * k1 = 1.2, b = 0.75; norm(dl) = k1·(1 − b + b·dl/avgdl):
 *   norm(3) = 1.2·(0.25 + 0.75) = 1.2;  norm(2) = 1.2·(0.25 + 0.5) = 0.9;  norm(4) = 1.2·(0.25 + 1) = 1.5
 * idf(apple)  = ln(1 + (3 − 1 + 0.5)/(1 + 0.5)) = ln(2.666…) = 0.980829253
 * idf(cherry) = ln(1 + (3 − 2 + 0.5)/(2 + 0.5)) = ln(1.6)    = 0.470003629
 * Query "apple cherry":
 *   d1: apple tf 2 → 0.980829253 · 2·2.2/(2 + 1.2) = 0.980829253 · 1.375    = 1.348640223
 *   d2: cherry tf 1 → 0.470003629 · 2.2/(1 + 0.9) = 0.470003629 · 1.157895 = 0.544214729
 *   d3: cherry tf 1 → 0.470003629 · 2.2/(1 + 1.5) = 0.470003629 · 0.88     = 0.413603194
 */
const CORPUS = [
  "apple banana apple",
  "banana cherry",
  "cherry date elderberry fig",
];
const EXPECTED = [1.348640223, 0.544214729, 0.413603194];

function close(actual: number, expected: number, what: string) {
  assert.ok(Math.abs(actual - expected) < 1e-6, `${what}: ${actual} ≠ ${expected}`);
}

Deno.test("context bm25: tokenize lower-cases, splits on non-letters and drops stopwords", () => {
  assert.deepEqual(tokenize("The Quick brown fox, the LAZY dog!"), [
    "quick",
    "brown",
    "fox",
    "lazy",
    "dog",
  ]);
  assert.deepEqual(tokenize("Ｆｕｌｌ-width ÉTÉ 2026"), ["full", "width", "été", "2026"]);
  assert.equal(tokenize("x".repeat(100))[0].length, 64);
});

Deno.test("context bm25: the pure core ranks the corpus with the hand-computed scores", () => {
  close(idf(3, 1), 0.980829253, "idf(apple)");
  close(idf(3, 2), 0.470003629, "idf(cherry)");
  const ranked = rank({ docs: 3, totalLength: 9 }, [
    { term: "apple", df: 1, postings: [{ docId: "d1", tf: 2, length: 3 }] },
    {
      term: "cherry",
      df: 2,
      postings: [{ docId: "d2", tf: 1, length: 2 }, { docId: "d3", tf: 1, length: 4 }],
    },
  ]);
  assert.deepEqual(ranked.map((r) => r.docId), ["d1", "d2", "d3"]);
  ranked.forEach((r, i) => close(r.score, EXPECTED[i], r.docId));
  assert.deepEqual(ranked[0].matched, ["apple"]);
  // Equal scores are ordered by id; a term no document holds scores nothing.
  const tie = rank({ docs: 2, totalLength: 2 }, [
    {
      term: "x",
      df: 2,
      postings: [{ docId: "b", tf: 1, length: 1 }, { docId: "a", tf: 1, length: 1 }],
    },
    { term: "y", df: 0, postings: [] },
  ]);
  assert.deepEqual(tie.map((r) => r.docId), ["a", "b"]);
});

Deno.test("context service: the KV index gives the same scores, with metadata, per principal", async () => {
  using kv = await Deno.openKv(":memory:");
  const context = createContextService(kv);
  const ids: string[] = [];
  for (const [i, text] of CORPUS.entries()) {
    const added = await context.add("alice", { text, metadata: { n: i + 1 } });
    assert.equal(added.status, "indexed");
    ids.push(added.id);
  }
  const found = await context.search("alice", { query: "Apple CHERRY apple" });
  assert.equal(found.total_docs, 3);
  assert.deepEqual(found.hits.map((h) => h.id), ids);
  found.hits.forEach((h, i) => close(h.score, EXPECTED[i], `hit ${i}`));
  assert.deepEqual(found.hits.map((h) => h.metadata), [{ n: 1 }, { n: 2 }, { n: 3 }]);
  assert.deepEqual(found.hits[0].matched_terms, ["apple"]);
  assert.deepEqual(found.terms.map((t) => [t.term, t.df]), [["apple", 1], ["cherry", 2]]);
  assert.equal((await context.search("alice", { query: "cherry", limit: 1 })).hits.length, 1);
  assert.deepEqual((await context.search("alice", { query: "the of" })).hits, []);

  // Another principal's namespace holds nothing of alice's, and its statistics are its own.
  const bob = await context.search("bob", { query: "apple cherry" });
  assert.deepEqual(bob.hits, []);
  assert.equal(bob.total_docs, 0);
  await context.add("bob", { text: "apple" });
  const bobs = await context.search("bob", { query: "apple" });
  assert.equal(bobs.hits.length, 1);
  close(bobs.hits[0].score, idf(1, 1) * 2.2 / 2.2, "bob's single document");
});

/** Every KV entry under a key family of one namespace, as "first-part: rest" strings. */
async function indexKeys(kv: Deno.Kv, ns: string): Promise<string[]> {
  const out: string[] = [];
  for (const part of ["ctx_df", "ctx_post", "ctx_mention", "ctx_doc", "ctx_stats"]) {
    for await (const e of kv.list({ prefix: [part, ns] })) {
      const v = e.value instanceof Deno.KvU64 ? `=${e.value.value}` : "";
      out.push(`${e.key.map(String).join("|")}${v}`);
    }
  }
  return out.sort();
}

Deno.test("context service: removing a document takes its postings and statistics out exactly", async () => {
  using kv = await Deno.openKv(":memory:");
  const context = createContextService(kv, { now: () => 1 });
  const ids: string[] = [];
  for (const text of CORPUS) ids.push((await context.add("alice", { text, extract: false })).id);
  const before = await indexKeys(kv, "alice");
  // A fourth document changes N, avgdl and the frequencies of apple and cherry …
  const extra = await context.add("alice", {
    text: "apple cherry cherry grape grape grape",
    entities: [{ name: "Grape" }],
    extract: false,
  });
  const mixed = await context.search("alice", { query: "apple cherry" });
  assert.equal(mixed.total_docs, 4);
  assert.notEqual(mixed.hits.find((h) => h.id === ids[0])!.score, EXPECTED[0]);
  // … and removing it gives back the three-document scores computed by hand above.
  assert.deepEqual(await context.remove("alice", extra.id), {
    id: extra.id,
    removed: true,
    length: 6,
  });
  const found = await context.search("alice", { query: "apple cherry" });
  assert.equal(found.total_docs, 3);
  assert.deepEqual(found.hits.map((h) => h.id), ids);
  found.hits.forEach((h, i) => close(h.score, EXPECTED[i], `after removal, hit ${i}`));
  assert.deepEqual(found.terms.map((t) => [t.term, t.df]), [["apple", 1], ["cherry", 2]]);
  assert.deepEqual((await context.search("alice", { query: "grape" })).hits, []);
  // Exactly: the statistics and every index key are what they were before the fourth document
  // (its own counter for "grape" is left at zero).
  const after = await indexKeys(kv, "alice");
  assert.deepEqual(after.filter((k) => !k.startsWith("ctx_df|alice|grape")), before);
  assert.ok(after.includes("ctx_df|alice|grape=0"));
  assert.deepEqual(await kv.list({ prefix: ["ctx_mention", "alice"] }).next(), {
    done: true,
    value: undefined,
  });
  // Removing it again, or an id never added, removes nothing.
  assert.equal((await context.remove("alice", extra.id)).removed, false);
  assert.equal((await context.remove("bob", ids[0])).removed, false, "another namespace");
  assert.equal((await context.search("alice", { query: "apple" })).total_docs, 3);
  // Removing everything leaves empty statistics.
  for (const id of ids) await context.remove("alice", id);
  assert.deepEqual((await kv.get(["ctx_stats", "alice"])).value, { docs: 0, total_length: 0 });
  assert.deepEqual(await kv.list({ prefix: ["ctx_post", "alice"] }).next(), {
    done: true,
    value: undefined,
  });
});

Deno.test("context service: replacing a document re-indexes it under its id with exact statistics", async () => {
  using kv = await Deno.openKv(":memory:");
  const context = createContextService(kv);
  const ids: string[] = [];
  for (const text of CORPUS) ids.push((await context.add("alice", { text })).id);
  // d3 "cherry date elderberry fig" becomes "banana cherry": the corpus is then
  //   d1 "apple banana apple" (3), d2 "banana cherry" (2), d3 "banana cherry" (2); N 3, avgdl 7/3.
  //   idf(cherry) = ln(1 + 1.5/2.5) = 0.470003629; norm(2) = 1.2·(0.25 + 0.75·2/(7/3)) = 1.071428571
  //   d2 = d3 = 0.470003629 · 2.2/(1 + 1.071428571) = 0.499176147
  //   idf(banana) = ln(1 + 0.5/3.5) = 0.133531393; norm(3) = 1.2·(0.25 + 0.75·9/7) = 1.457142857
  //   d1 banana tf 1 = 0.133531393 · 2.2/2.457142857 = 0.119556049
  const replaced = await context.add("alice", { text: "banana cherry", id: ids[2] });
  assert.equal(replaced.status, "replaced");
  assert.equal(replaced.id, ids[2]);
  const cherry = await context.search("alice", { query: "cherry" });
  assert.equal(cherry.total_docs, 3);
  assert.deepEqual(cherry.hits.map((h) => h.id).sort(), [ids[1], ids[2]].sort());
  cherry.hits.forEach((h) => close(h.score, 0.499176147, h.id));
  const banana = await context.search("alice", { query: "banana" });
  assert.deepEqual(banana.terms.map((t) => t.df), [3]);
  close(banana.hits.find((h) => h.id === ids[0])!.score, 0.119556049, "d1 banana");
  assert.deepEqual((await context.search("alice", { query: "elderberry fig" })).hits, []);
  assert.deepEqual((await kv.get(["ctx_stats", "alice"])).value, { docs: 3, total_length: 7 });
  // Replacing needs the document to be there (an upsert need not).
  await assert.rejects(
    context.add("alice", { text: "x", id: "doc_missing" }),
    (e) => e instanceof ContextError && e.code === "not_found",
  );
  assert.equal(
    (await context.add("alice", { text: "kiwi", id: "k1", replace: "upsert" })).status,
    "indexed",
  );
  await assert.rejects(context.add("alice", { text: "x", id: "bad\u0001id" }), /document id/);
});

Deno.test("context service: a large document (several commits) is removed completely", async () => {
  using kv = await Deno.openKv(":memory:");
  const context = createContextService(kv);
  const small = await context.add("p", { text: "alpha beta", extract: false });
  const words = Array.from({ length: 1500 }, (_, i) => `w${i}`).join(" ");
  const big = await context.add("p", { text: `alpha ${words}`, extract: false });
  assert.equal(big.terms, 1501);
  assert.equal((await context.search("p", { query: "w1499" })).hits[0].id, big.id);
  await context.remove("p", big.id);
  let postings = 0;
  for await (const _ of kv.list({ prefix: ["ctx_post", "p"] })) postings++;
  assert.equal(postings, 2);
  assert.deepEqual((await kv.get(["ctx_stats", "p"])).value, { docs: 1, total_length: 2 });
  const alpha = await context.search("p", { query: "alpha" });
  assert.deepEqual(alpha.terms.map((t) => t.df), [1]);
  assert.deepEqual(alpha.hits.map((h) => h.id), [small.id]);
});

Deno.test("context service: sizes and the document cap are refused clearly", async () => {
  using kv = await Deno.openKv(":memory:");
  const context = createContextService(kv, {
    limits: { maxDocsPerPrincipal: 2, maxTextBytes: 100, maxEntitiesPerDoc: 2 },
  });
  await assert.rejects(context.add("a", { text: "  " }), /empty document/);
  await assert.rejects(
    context.add("a", { text: "é".repeat(51) }),
    (e) => e instanceof ContextError && e.code === "too_large" && /102 bytes/.test(e.message),
  );
  await assert.rejects(
    context.add("a", { text: "x", metadata: { pad: "y".repeat(5000) } }),
    /bytes of metadata/,
  );
  await assert.rejects(
    context.add("a", { text: "x", relations: [{ from: "A", type: "Bad Type", to: "B" }] }),
    /relation type "Bad Type"/,
  );
  await assert.rejects(
    context.add("a", { text: "x", entities: [{ name: "A" }, { name: "B" }, { name: "C" }] }),
    /at most 2 and/,
  );
  await context.add("a", { text: "one" });
  await context.add("a", { text: "two" });
  await assert.rejects(
    context.add("a", { text: "three" }),
    (e) => e instanceof ContextError && e.code === "full",
  );
  await context.add("b", { text: "another namespace has its own cap" });
});

Deno.test("context extract: capitalized runs are entities, a sentence relates its entities", () => {
  const { entities, relations } = extract(
    "Alice met Bob in Paris. The weather was fine. We deployed Deno KV with NASA, Alice said.",
  );
  assert.deepEqual(entities.map((e) => e.id), ["alice", "bob", "paris", "deno kv", "nasa"]);
  assert.deepEqual(extract("The Vault keeps entries.").entities.map((e) => e.id), ["vault"]);
  assert.equal(entities[3].name, "Deno KV");
  assert.deepEqual(relations.map((r) => `${r.from}>${r.to}`), [
    "alice>bob",
    "alice>paris",
    "bob>paris",
    "deno kv>nasa",
    "alice>deno kv",
    "alice>nasa",
  ]);
  // Deterministic: the same text, the same graph.
  assert.deepEqual(
    extract("Alice met Bob in Paris.").relations,
    extract("Alice met Bob in Paris.").relations,
  );
  const capped = extract("Ann met Bo and Cy. Di met Ed.", {
    maxEntities: 10,
    maxRelations: 2,
  });
  assert.equal(capped.relations.length, 2);
});

Deno.test("context graph: given and extracted relations, depth and node caps", async () => {
  using kv = await Deno.openKv(":memory:");
  const context = createContextService(kv, { limits: { maxFanout: 3 } });
  const a = await context.add("alice", {
    text: "Warden seals calls into the vault.",
    entities: [{ name: "Warden", type: "software" }, { name: "Vault", type: "component" }],
    relations: [{ from: "Warden", type: "uses", to: "Vault" }],
    extract: false,
  });
  assert.deepEqual(a.entities, ["warden", "vault"]);
  await context.add("alice", {
    text: "The Vault is a Merkle Log.",
    relations: [{ from: "Vault", type: "is_a", to: "Merkle Log" }],
  });
  await context.add("alice", {
    text: "x",
    relations: [{ from: "Merkle Log", type: "specified_by", to: "RFC 9162" }],
  });

  const one = await context.graph("alice", { entity: "warden", depth: 1 });
  assert.equal(one.found, true);
  assert.deepEqual(one.nodes.map((n) => [n.id, n.depth]), [["warden", 0], ["vault", 1]]);
  assert.deepEqual(one.nodes[0], {
    id: "warden",
    name: "Warden",
    type: "software",
    depth: 0,
    doc_ids: [a.id],
  });
  assert.deepEqual(one.edges, [{ from: "warden", type: "uses", to: "vault" }]);

  const two = await context.graph("alice", { entity: "Warden", depth: 2 });
  assert.deepEqual(two.nodes.map((n) => n.id), ["warden", "vault", "merkle log"]);
  // Relations are followed in both directions.
  const back = await context.graph("alice", { entity: "RFC 9162", depth: 3 });
  assert.deepEqual(back.nodes.map((n) => n.id).sort(), [
    "merkle log",
    "rfc 9162",
    "vault",
    "warden",
  ]);
  // The given relations and the one the extractor found in "The Vault is a Merkle Log."
  assert.deepEqual(back.edges.map((e) => `${e.from} ${e.type} ${e.to}`).sort(), [
    "merkle log co_occurs_with vault",
    "merkle log specified_by rfc 9162",
    "vault is_a merkle log",
    "warden uses vault",
  ]);
  const capped = await context.graph("alice", { entity: "RFC 9162", depth: 3, limit: 2 });
  assert.equal(capped.nodes.length, 2);
  assert.equal(capped.truncated, true);
  // Depth is capped at maxGraphDepth (3) whatever is asked.
  const deep = await context.graph("alice", { entity: "warden", depth: 99 });
  assert.ok(deep.nodes.every((n) => n.depth <= 3));

  assert.deepEqual(await context.graph("alice", { entity: "nobody" }), {
    found: false,
    nodes: [],
    edges: [],
    truncated: false,
  });
  assert.equal((await context.graph("bob", { entity: "warden" })).found, false, "per principal");

  // Fan-out cap: a hub with more relations than maxFanout (3) is cut and says so.
  await context.add("alice", {
    text: "x",
    relations: ["P1", "P2", "P3", "P4", "P5"].map((p) => ({ from: "Hub", type: "has", to: p })),
  });
  const hub = await context.graph("alice", { entity: "hub", depth: 1 });
  assert.equal(hub.nodes.length, 4);
  assert.equal(hub.truncated, true);
});

Deno.test("context search: 10 000 documents, a query reads a bounded number of KV entries", async () => {
  using kv = await Deno.openKv(":memory:");
  const counted = countingKv(kv);
  const context = createContextService(counted, {
    limits: { maxDocsPerPrincipal: 20_000, maxPostingsPerTerm: 200 },
  });
  for (let i = 0; i < 10_000; i++) {
    await context.add("p", {
      text: `note ${i} topic${i % 100} common words here`,
      extract: false,
    });
  }
  const rare = ["zebra common", "zebra zebra common", "a zebra"];
  const rareIds: string[] = [];
  for (const text of rare) rareIds.push((await context.add("p", { text })).id);

  counted.reads = 0;
  const found = await context.search("p", { query: "zebra common", limit: 5 });
  const reads = counted.reads;
  assert.equal(found.total_docs, 10_003);
  // idf(zebra) = ln(1 + 10000.5/3.5) ≈ 7.958 dominates ("common" is in nearly every document);
  // avgdl ≈ 6, so tf 2 in 3 terms (≈ 12.7) beats tf 1 in 1 term (≈ 12.1) beats tf 1 in 2 (≈ 10.9).
  assert.deepEqual(found.hits.slice(0, 3).map((h) => h.id), [rareIds[1], rareIds[2], rareIds[0]]);
  const common = found.terms.find((t) => t.term === "common")!;
  assert.equal(common.df, 10_002);
  assert.equal(common.truncated, true);
  assert.equal(common.postings_read, 200);
  // stats + 2 frequencies + 3 zebra postings + 200 common postings + at most 10 documents.
  assert.ok(reads <= 1 + 2 + 3 + 200 + 10, `read ${reads} KV entries`);

  counted.reads = 0;
  const topic = await context.search("p", { query: "topic7", limit: 3 });
  assert.equal(topic.terms[0].df, 100);
  assert.equal(topic.hits.length, 3);
  assert.ok(counted.reads <= 1 + 1 + 100 + 10, `read ${counted.reads} KV entries`);

  counted.reads = 0;
  assert.deepEqual((await context.search("p", { query: "absent" })).hits, []);
  assert.equal(counted.reads, 2, "an absent term reads the statistics and its counter only");
});

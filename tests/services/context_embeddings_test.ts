/**
 * The embeddings blend of the context index against a real OpenAI-compatible
 * `/v1/embeddings` stand-in on loopback (no model runs here): its vectors are
 * deterministic — dimension 0 counts fruit words, dimension 1 vehicle words —
 * so the hybrid scores are computed by hand below. Also: the endpoint passes
 * the SSRF guard (loopback refused unless allowlisted), oversized, slow and
 * malformed answers fall back to BM25 saying why, and without an endpoint the
 * result says BM25 only.
 */
import assert from "node:assert/strict";
import { createContextService, openEmbeddings } from "../../src/services/context/mod.ts";

const FRUIT = new Set(["apple", "banana", "cherry", "fruit"]);
const VEHICLE = new Set(["truck", "car", "engine"]);

function vectorOf(text: string): number[] {
  const words = text.toLowerCase().match(/[a-z]+/g) ?? [];
  return [
    words.filter((w) => FRUIT.has(w)).length,
    words.filter((w) => VEHICLE.has(w)).length,
    0.000001,
  ];
}

interface Seen {
  auth: string | null;
  model: string;
  input: string[];
}

/** A loopback embeddings endpoint; `mode` changes how it misbehaves. */
function standIn() {
  const seen: Seen[] = [];
  const state = { mode: "ok" as "ok" | "huge" | "slow" | "junk" | "redirect" };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    if (req.method !== "POST" || url.pathname !== "/v1/embeddings") {
      return new Response("not found", { status: 404 });
    }
    const body = await req.json();
    seen.push({ auth: req.headers.get("authorization"), model: body.model, input: body.input });
    if (state.mode === "slow") await new Promise((ok) => setTimeout(ok, 1500));
    if (state.mode === "junk") return Response.json({ data: [{ embedding: ["x"] }] });
    if (state.mode === "redirect") {
      return new Response(null, { status: 302, headers: { location: "http://127.0.0.1:1/" } });
    }
    if (state.mode === "huge") return new Response("x".repeat(200_000));
    return Response.json({
      object: "list",
      model: body.model,
      data: (body.input as string[]).map((t, index) => ({
        object: "embedding",
        index,
        embedding: vectorOf(t),
      })),
    });
  });
  const { port } = server.addr as Deno.NetAddr;
  return { seen, state, server, url: `http://127.0.0.1:${port}/v1` };
}

const SETTINGS = {
  model: "stand-in-embed",
  weight: 0.8,
  timeout_ms: 500,
  max_response_bytes: 65_536,
  allow_hosts: ["127.0.0.1"],
};

function close(actual: number | undefined, expected: number, what: string) {
  assert.ok(actual !== undefined && Math.abs(actual - expected) < 1e-5, `${what}: ${actual}`);
}

Deno.test("context embeddings: hybrid BM25 + cosine re-ranks with the documented weight", async () => {
  const endpoint = standIn();
  const kv = await Deno.openKv(":memory:");
  try {
    const context = createContextService(kv, {
      embeddings: openEmbeddings({
        settings: { ...SETTINGS, endpoint_url: endpoint.url },
        apiKey: "test-embeddings-key",
      }),
    });
    /*
     * d1 "apple apple truck" (vector [2, 1]), d2 "apple banana cherry" ([3, 0]); both length 3.
     * Query "apple" ([1, 0]). BM25: N 2, df 2, avgdl 3, norm 1.2, idf ln(1.2) = 0.182322
     *   d1: 0.182322 · 2·2.2/3.2 = 0.250693;  d2: 0.182322 · 2.2/2.2 = 0.182322 (BM25 ranks d1 first)
     * cosine: d1 2/√5 = 0.894427, d2 1. Weight 0.8:
     *   d1: 0.2 · 1 + 0.8 · 0.894427 = 0.915542
     *   d2: 0.2 · (0.182322/0.250693 = 1/1.375) + 0.8 · 1 = 0.945455 (the blend ranks d2 first)
     */
    const d1 = await context.add("alice", { text: "apple apple truck", extract: false });
    const d2 = await context.add("alice", { text: "apple banana cherry", extract: false });
    assert.match(d1.embedding!, /^stored \(3 dimensions, stand-in-embed\)/);
    const found = await context.search("alice", { query: "apple" });
    assert.equal(found.ranking, "hybrid");
    assert.match(found.ranking_note!, /\(1 − 0\.8\) · BM25 \/ best BM25 \+ 0\.8 · cosine/);
    assert.deepEqual(found.hits.map((h) => h.id), [d2.id, d1.id]);
    close(found.hits[0].score, 0.945455, "d2 hybrid");
    close(found.hits[1].score, 0.915542, "d1 hybrid");
    close(found.hits[1].bm25, 0.250693, "d1 bm25");
    close(found.hits[1].cosine, 0.894427, "d1 cosine");
    // What the endpoint received: each document, then the query, with the model and the key.
    assert.deepEqual(endpoint.seen.map((s) => s.input), [
      ["apple apple truck"],
      ["apple banana cherry"],
      ["apple"],
    ]);
    assert.ok(endpoint.seen.every((s) => s.model === "stand-in-embed"));
    assert.ok(endpoint.seen.every((s) => s.auth === "Bearer test-embeddings-key"));

    // A removal takes the vector with it; a replace stores the new one.
    await context.remove("alice", d1.id);
    assert.equal((await kv.get(["ctx_vec", "alice", d1.id])).value, null);
    await context.add("alice", { id: d2.id, text: "apple truck truck truck" });
    const after = await context.search("alice", { query: "apple" });
    close(after.hits[0].cosine, 1 / Math.sqrt(10), "replaced vector");

    // The endpoint failing in any way leaves BM25 alone, saying why.
    for (
      const [mode, why] of [
        ["junk", /embedding 0 is not a vector/],
        ["huge", /over 65536 bytes/],
        ["slow", /did not answer within 500 ms/],
        ["redirect", /cannot reach the embeddings endpoint/],
      ] as const
    ) {
      endpoint.state.mode = mode;
      const fallback = await context.search("alice", { query: "apple" });
      assert.equal(fallback.ranking, "bm25", mode);
      assert.match(fallback.ranking_note!, why, mode);
      assert.equal(fallback.hits.length, 1, mode);
      assert.equal(fallback.hits[0].bm25, undefined);
    }
    const added = await context.add("alice", { text: "no vector this time" });
    assert.match(added.embedding!, /^not stored: /);
  } finally {
    kv.close();
    await endpoint.server.shutdown();
  }
});

Deno.test("context embeddings: the endpoint passes the SSRF guard; without one, BM25 only, said so", async () => {
  const endpoint = standIn();
  const kv = await Deno.openKv(":memory:");
  try {
    // Loopback without allow_hosts: refused before any request leaves.
    const guarded = createContextService(kv, {
      embeddings: openEmbeddings({
        settings: { ...SETTINGS, allow_hosts: [], endpoint_url: endpoint.url },
      }),
    });
    const added = await guarded.add("a", { text: "apple" });
    assert.match(added.embedding!, /not stored: Refused: 127\.0\.0\.1 is a loopback address/);
    assert.match(added.embedding!, /policy context\.embeddings\.allow_hosts/);
    const found = await guarded.search("a", { query: "apple" });
    assert.equal(found.ranking, "bm25");
    assert.match(found.ranking_note!, /Refused: 127\.0\.0\.1 is a loopback address/);
    assert.equal(endpoint.seen.length, 0, "nothing reached the endpoint");

    const plain = createContextService(kv, {
      embeddings: openEmbeddings({ settings: SETTINGS }),
    });
    const none = await plain.search("a", { query: "apple" });
    assert.equal(none.ranking, "bm25");
    assert.equal(
      none.ranking_note,
      "BM25 only: no embeddings endpoint is configured (policy context.embeddings.endpoint_url)",
    );
    assert.equal(none.hits.length, 1);
  } finally {
    kv.close();
    await endpoint.server.shutdown();
  }
});

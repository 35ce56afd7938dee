/**
 * The context service: a BM25 index and an entity graph per principal in
 * Deno KV (service.ts), over a pure scoring core (bm25.ts) and a
 * deterministic extractor (extract.ts).
 *
 * @module
 */
export * from "./bm25.ts";
export * from "./extract.ts";
export * from "./service.ts";
export * from "./embeddings.ts";

/**
 * The context tools (SPEC §5 "State services"): `context_add`,
 * `context_search` (BM25), `context_graph` (entities and relations) — thin
 * adapters over `src/services/context/`. The caller's principal is the
 * namespace; no argument can name another. The vault records an added
 * document's digest and size, never its text, and a search's hit ids and
 * scores, never the documents.
 *
 * @module
 */
import { z } from "zod";
import { ContextError, type ContextService } from "../services/mod.ts";
import { sha256HexOfText } from "../lib/mod.ts";
import { defineTool } from "../calls/mod.ts";
import { IDEMPOTENT_WRITE, READ_ONLY, WRITE } from "./_annotations.ts";
import { toolFamily } from "./_services.ts";

const entityName = z.string().min(1).max(128);
const docId = z.string().min(1).max(256);
const typeName = z.string().regex(/^[a-z][a-z0-9_]{0,47}$/).describe(
  "1-48 lower-case letters, digits or '_', starting with a letter.",
);

/** The `context_add` tool. */
function contextAddTool({ context }: ContextToolServices) {
  return defineTool({
    name: "context_add",
    title: "Add context",
    description: "Index a text document (with optional metadata) in the caller's own context: " +
      "BM25-searchable with context_search, and its entities and relations added to the graph " +
      "context_graph walks. Entities and relations may be given; the deterministic extractor adds " +
      "capitalized names and same-sentence co-occurrence (extract: false turns it off). With id, " +
      "replaces that document (its old terms leave the index). The vault records the text's " +
      "SHA-256 and size, not the text.",
    inputSchema: z.object({
      text: z.string().min(1).max(32_768).describe("The document, at most 32 KiB of UTF-8."),
      metadata: z.record(z.string(), z.unknown()).optional().describe(
        "A JSON object kept with the document and returned with search hits (at most 4 KiB).",
      ),
      entities: z.array(z.object({ name: entityName, type: typeName.optional() }).strict())
        .max(32).optional().describe('Entities the document is about, e.g. {"name": "Deno KV"}.'),
      relations: z.array(
        z.object({ from: entityName, type: typeName, to: entityName }).strict(),
      ).max(64).optional().describe(
        'Relations between entities, e.g. {"from": "Warden", "type": "uses", "to": "Deno KV"}.',
      ),
      extract: z.boolean().default(true).describe("Also extract entities and relations."),
      id: docId.optional().describe(
        "Replace this existing document (from an earlier context_add) instead of adding one.",
      ),
    }),
    outputSchema: z.object({
      id: z.string().describe("The document id."),
      status: z.enum(["indexed", "replaced"]),
      length: z.number().int().describe("Length in terms, as BM25 counts it."),
      terms: z.number().int().describe("Distinct terms."),
      terms_not_indexed: z.number().int().describe("Distinct terms over the per-document cap."),
      entities: z.array(z.string()).describe("Entity ids the document mentions."),
      relations: z.number().int(),
      embedding: z.string().optional().describe(
        "Whether an embedding was stored with the document (policy context.embeddings), or why not.",
      ),
    }),
    annotations: WRITE,
    recordArguments: ({ text, metadata, entities, relations, extract, id }) => ({
      ...(id !== undefined ? { id } : {}),
      text_sha256: sha256HexOfText(text),
      text_bytes: new TextEncoder().encode(text).byteLength,
      metadata_keys: Object.keys(metadata ?? {}).slice(0, 32),
      entities: entities?.length ?? 0,
      relations: relations?.length ?? 0,
      extract,
    }),
    expectedErrors: [ContextError],
    handler: async ({ text, metadata, entities, relations, extract, id }, ctx) => {
      const data = await context.add(ctx.principal, {
        text,
        ...(id !== undefined ? { id } : {}),
        ...(metadata !== undefined ? { metadata } : {}),
        ...(entities !== undefined ? { entities } : {}),
        ...(relations !== undefined ? { relations } : {}),
        extract,
      });
      return {
        data,
        text:
          `${
            data.status === "replaced" ? "Replaced" : "Indexed"
          } ${data.id} (${data.length} terms, ${data.entities.length} entities, ` +
          `${data.relations} relations)`,
      };
    },
  });
}

/** The `context_search` tool. */
function contextSearchTool({ context }: ContextToolServices) {
  return defineTool({
    name: "context_search",
    title: "Search context",
    description: "BM25 search of the caller's own context documents (k1 1.2, b 0.75; terms are " +
      "lower-cased letter/digit runs, common English stopwords dropped, no stemming). Returns the " +
      "best documents with their score, matched terms, metadata and a 300-character preview. With " +
      "an embeddings endpoint configured, BM25's best 50 are re-ranked by a blend with cosine " +
      "similarity (ranking and ranking_note say which and how).",
    inputSchema: z.object({
      query: z.string().min(1).max(2000).describe("Words to look for (the first 16 distinct)."),
      limit: z.number().int().min(1).max(50).default(10).describe("Most hits, 1-50."),
    }),
    outputSchema: z.object({
      hits: z.array(z.object({
        id: z.string(),
        score: z.number().describe("BM25, or the hybrid score when ranking is hybrid."),
        bm25: z.number().optional(),
        cosine: z.number().optional(),
        matched_terms: z.array(z.string()),
        preview: z.string(),
        metadata: z.record(z.string(), z.unknown()),
        added_at: z.string(),
      })),
      total_docs: z.number().int(),
      ranking: z.enum(["bm25", "hybrid"]).optional(),
      ranking_note: z.string().optional().describe(
        "How hits were ranked: the hybrid formula and weight, or why BM25 alone.",
      ),
      terms: z.array(z.object({
        term: z.string(),
        df: z.number().int().describe("Documents holding the term."),
        postings_read: z.number().int(),
        truncated: z.boolean().describe(
          "The term is in more documents than a search reads (1000): the highest-frequency ones were scored.",
        ),
      })),
    }),
    annotations: READ_ONLY,
    recordResult: (data) => ({
      hits: data.hits.map((h) => ({ id: h.id, score: h.score })),
      total_docs: data.total_docs,
    }),
    expectedErrors: [ContextError],
    handler: async ({ query, limit }, ctx) => {
      const data = await context.search(ctx.principal, { query, limit });
      return {
        data,
        text: data.hits.length === 0
          ? "No matching context documents"
          : `${data.hits.length} of ${data.total_docs} documents: ${
            data.hits.map((h) => `${h.id} (${h.score})`).join(", ")
          }`,
      };
    },
  });
}

/** The `context_graph` tool. */
function contextGraphTool({ context }: ContextToolServices) {
  return defineTool({
    name: "context_graph",
    title: "Context graph",
    description: "The entities and relations around an entity in the caller's own context graph, " +
      "following relations both ways up to depth hops (at most 3), at most limit nodes (at most " +
      "200) and 50 relations per node and direction. Without an entity, starts from the first " +
      "entities by id.",
    inputSchema: z.object({
      entity: entityName.optional().describe("The start entity (name or id, case-insensitive)."),
      depth: z.number().int().min(0).max(3).default(2).describe("Hops from the start, 0-3."),
      limit: z.number().int().min(1).max(200).default(50).describe("Most nodes, 1-200."),
    }),
    outputSchema: z.object({
      found: z.boolean(),
      nodes: z.array(z.object({
        id: z.string(),
        name: z.string(),
        type: z.string(),
        depth: z.number().int(),
        doc_ids: z.array(z.string()),
      })),
      edges: z.array(z.object({ from: z.string(), type: z.string(), to: z.string() })),
      truncated: z.boolean(),
    }),
    annotations: READ_ONLY,
    recordResult: (data) => ({
      found: data.found,
      nodes: data.nodes.length,
      edges: data.edges.length,
      truncated: data.truncated,
    }),
    expectedErrors: [ContextError],
    handler: async ({ entity, depth, limit }, ctx) => {
      const data = await context.graph(ctx.principal, {
        ...(entity !== undefined ? { entity } : {}),
        depth,
        limit,
      });
      return {
        data,
        text: !data.found
          ? `No entity ${JSON.stringify(entity)} in your context graph`
          : `${data.nodes.length} entities, ${data.edges.length} relations${
            data.truncated ? " (truncated)" : ""
          }`,
      };
    },
  });
}

/** The `context_delete` tool. */
function contextDeleteTool({ context }: ContextToolServices) {
  return defineTool({
    name: "context_delete",
    title: "Delete context",
    description: "Remove a document from the caller's own context: its postings, term counts and " +
      "entity mentions leave the index and the BM25 statistics no longer count it (entities and " +
      "relations stay in the graph, which other documents may assert too).",
    inputSchema: z.object({ id: docId.describe("The document id (from context_add).") }),
    outputSchema: z.object({
      id: z.string(),
      removed: z.boolean().describe("Whether the document was there."),
      length: z.number().int().describe("Its length in terms."),
    }),
    // The caller's own index of text it supplied: adding the text again restores it, as a memory
    // value stored again does. A policy that disagrees says tools.context_delete.reversible: false.
    annotations: IDEMPOTENT_WRITE,
    expectedErrors: [ContextError],
    handler: async ({ id }, ctx) => {
      const data = await context.remove(ctx.principal, id);
      return {
        data,
        text: data.removed ? `Removed ${id}` : `No context document ${JSON.stringify(id)}`,
      };
    },
  });
}

/** The services the context tools use: the per-principal BM25 documents and entity graph, only. */
export interface ContextToolServices {
  readonly context: ContextService;
}

/**
 * The context tools (the three SPEC.md lists, in its order, then context_delete), given the
 * context service (checked here, when the tools are made).
 */
export const createContextTools = toolFamily<ContextToolServices>(
  "context",
  ["context"],
  [contextAddTool, contextSearchTool, contextGraphTool, contextDeleteTool],
);

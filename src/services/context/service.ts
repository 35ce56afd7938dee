/**
 * The context service: documents with metadata in a BM25 index, and a graph
 * of entities and relations, per principal namespace, in Deno KV.
 *
 * Nothing is ever scanned per query. A search reads the namespace's corpus
 * statistics, one document-frequency counter per query term, at most
 * `maxPostingsPerTerm` postings per term (highest term frequency first, so a
 * cut keeps the best-scoring candidates; IDF still uses the true frequency)
 * and the documents it returns. A graph query reads at most `maxFanout`
 * relations in each direction per node it visits, for at most `maxGraphNodes`
 * nodes. KV layout: src/store/keys.ts (`ctx_*`).
 *
 * Documents can be replaced (an add naming an existing id) and removed. Every
 * change reads the stored document and the statistics, then writes only the
 * index keys that differ — postings and mentions the old version had and the
 * new one has not are deleted, new ones set, each term's document frequency
 * decremented or incremented — and commits the document with the corrected
 * statistics (document count, total length) checked against both, so the
 * BM25 statistics after a removal are exactly those of the corpus without it.
 * A document's postings are found again from its text (tokenizing is
 * deterministic; the term cap used is kept with it), so nothing stores the
 * term list twice. A change of more than ~1000 keys (a document of some 480+
 * distinct terms) commits the document and statistics first and the index
 * keys after in batches: a crash in between leaves stale postings, which
 * search skips when their document is gone.
 *
 * Entities and relations are shared by the documents that assert them: a
 * removal deletes the document's mentions, not the graph's entities or
 * relations.
 *
 * @module
 */
import {
  contextDfKey,
  contextDocKey,
  contextEntityKey,
  contextEntityPrefix,
  type ContextFamily,
  contextMentionKey,
  contextMentionPrefix,
  contextPostingKey,
  contextPostingPrefix,
  contextRelationKey,
  contextRelationPrefix,
  contextStatsKey,
  contextVectorKey,
} from "../../store/mod.ts";
import { blend, cosine, type Embedder } from "./embeddings.ts";
import {
  type CorpusStats,
  type Posting,
  rank,
  type Ranked,
  termFrequencies,
  tokenize,
} from "./bm25.ts";
import { type Entity, entityId, extract, MAX_ENTITY_CHARS, type Relation } from "./extract.ts";

/** The part of Deno.Kv the service uses (tests wrap it to count reads). */
export type ContextKv = Pick<Deno.Kv, "get" | "getMany" | "list" | "atomic">;

/** Limits of the context service. */
export interface ContextLimits {
  /** Largest document text, in UTF-8 bytes. */
  readonly maxTextBytes: number;
  /** Largest metadata object, as UTF-8 JSON. */
  readonly maxMetadataBytes: number;
  /** Documents one principal may hold. */
  readonly maxDocsPerPrincipal: number;
  /** Distinct terms indexed per document (the most frequent; ties by term). */
  readonly maxTermsPerDoc: number;
  /** Postings a search reads per query term. */
  readonly maxPostingsPerTerm: number;
  /** Distinct query terms used (the first ones). */
  readonly maxQueryTerms: number;
  /** Entities (given plus extracted) and relations kept per document. */
  readonly maxEntitiesPerDoc: number;
  readonly maxRelationsPerDoc: number;
  /** Graph query caps: depth, nodes returned, relations read per node and direction. */
  readonly maxGraphDepth: number;
  readonly maxGraphNodes: number;
  readonly maxFanout: number;
}

/** The defaults. */
export const DEFAULT_CONTEXT_LIMITS: ContextLimits = Object.freeze({
  maxTextBytes: 32_768,
  maxMetadataBytes: 4096,
  maxDocsPerPrincipal: 10_000,
  maxTermsPerDoc: 2000,
  maxPostingsPerTerm: 1000,
  maxQueryTerms: 16,
  maxEntitiesPerDoc: 32,
  maxRelationsPerDoc: 64,
  maxGraphDepth: 3,
  maxGraphNodes: 200,
  maxFanout: 50,
});

/** Why an operation was refused. */
export class ContextError extends Error {
  override name = "ContextError";
  readonly code: "bad_input" | "too_large" | "full" | "not_found";
  constructor(code: ContextError["code"], message: string) {
    super(message);
    this.code = code;
  }
}

interface StoredDoc {
  id: string;
  text: string;
  metadata: Record<string, unknown>;
  /** Length in terms (stopwords excluded), as BM25 counts it. */
  length: number;
  entities: string[];
  added_at_ms: number;
  /** The term cap the add indexed under (`maxTermsPerDoc` then), so a removal finds its postings. */
  term_cap?: number;
}

interface StoredStats {
  docs: number;
  total_length: number;
}

interface StoredEntity {
  name: string;
  type: string;
}

/** A relation as given by a caller (entity names, not ids). */
export interface RelationInput {
  readonly from: string;
  readonly type: string;
  readonly to: string;
}

/** What an add reports. */
export interface AddResult {
  readonly id: string;
  /** `replaced`: a document with this id was there and its index entries were replaced. */
  readonly status: "indexed" | "replaced";
  readonly length: number;
  readonly terms: number;
  /** Distinct terms beyond `maxTermsPerDoc`, not indexed (the least frequent). */
  readonly terms_not_indexed: number;
  readonly entities: string[];
  readonly relations: number;
  /** Whether an embedding was stored with it, or why not. */
  readonly embedding?: string;
}

/** What a removal reports. */
export interface RemoveResult {
  readonly id: string;
  /** Whether the document was there. */
  readonly removed: boolean;
  /** Its length in terms (taken off the corpus statistics). */
  readonly length: number;
}

/** Ranked document ids before any document is read (what `search` and memory build on). */
export interface RankResult {
  readonly ranked: Ranked[];
  readonly total_docs: number;
  readonly terms: ContextSearchResult["terms"];
}

/** One search hit. */
export interface ContextHit {
  readonly id: string;
  /** The BM25 score, or the hybrid score when embeddings are blended in. */
  readonly score: number;
  /** The parts of a hybrid score. */
  readonly bm25?: number;
  readonly cosine?: number;
  readonly matched_terms: string[];
  readonly preview: string;
  readonly metadata: Record<string, unknown>;
  readonly added_at: string;
}

/** What a search reports. */
export interface ContextSearchResult {
  readonly hits: ContextHit[];
  readonly total_docs: number;
  /** Per query term: its document frequency and whether its postings were cut. */
  readonly terms: { term: string; df: number; postings_read: number; truncated: boolean }[];
  /** `hybrid` when embeddings were blended in, else `bm25`. */
  readonly ranking?: "bm25" | "hybrid";
  /** How the hits were ranked, and why BM25 alone when it is. */
  readonly ranking_note?: string;
}

/** A node of a graph answer. */
export interface GraphNode {
  readonly id: string;
  readonly name: string;
  readonly type: string;
  /** Hops from the start. */
  readonly depth: number;
  /** Some documents mentioning it (at most 5). */
  readonly doc_ids: string[];
}

/** What a graph query reports. */
export interface GraphResult {
  readonly found: boolean;
  readonly nodes: GraphNode[];
  readonly edges: Relation[];
  /** A cap (nodes or fan-out) left part of the neighbourhood out. */
  readonly truncated: boolean;
}

/** The context of every principal, over one KV. */
export interface ContextService {
  readonly limits: ContextLimits;
  add(
    ns: string,
    input: {
      text: string;
      metadata?: Record<string, unknown>;
      entities?: readonly { name: string; type?: string }[];
      relations?: readonly RelationInput[];
      extract?: boolean;
      /**
       * The document's id: replaces the document there (its postings, term counts, mentions and
       * length leave the index first). Without `replace: "upsert"` it must exist.
       */
      id?: string;
      replace?: "must_exist" | "upsert";
    },
  ): Promise<AddResult>;
  /** Removes a document and its postings, term counts and mentions; statistics stay exact. */
  remove(ns: string, id: string): Promise<RemoveResult>;
  /** Ranks document ids for a query (ids starting with `idPrefix` only), reading no document. */
  rank(ns: string, input: { query: string; idPrefix?: string }): Promise<RankResult>;
  search(ns: string, input: { query: string; limit?: number }): Promise<ContextSearchResult>;
  graph(
    ns: string,
    input: { entity?: string; depth?: number; limit?: number },
  ): Promise<GraphResult>;
}

const utf8 = new TextEncoder();
const MAX_TF = 65_535;
const PREVIEW_CHARS = 300;
const MUTATIONS_PER_COMMIT = 500;
/** BM25 candidates the embeddings blend re-ranks. */
const HYBRID_POOL = 50;
/** Adding 2^64 − 1 to a KvU64 (which wraps) subtracts one. */
const MINUS_ONE = (1n << 64n) - 1n;
/** Longest document id a caller may give. */
export const MAX_DOC_ID_CHARS = 256;
const TYPE = /^[a-z][a-z0-9_]{0,47}$/;

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function newDocId(now: number): string {
  const rand = crypto.getRandomValues(new Uint8Array(6));
  return `doc_${now.toString(36).padStart(9, "0")}${
    [...rand].map((b) => b.toString(16).padStart(2, "0")).join("")
  }`;
}

function checkType(kind: string, type: string): string {
  if (!TYPE.test(type)) {
    throw new ContextError(
      "bad_input",
      `Cannot use ${kind} type ${
        JSON.stringify(type.slice(0, 60))
      }: 1-48 lower-case letters, digits or '_', starting with a letter`,
    );
  }
  return type;
}

// deno-lint-ignore no-control-regex -- control characters are what is refused
const CONTROL = /[\u0000-\u001f\u007f]/u;

function checkDocId(id: string): void {
  if (typeof id !== "string" || id === "" || id.length > MAX_DOC_ID_CHARS || CONTROL.test(id)) {
    throw new ContextError(
      "bad_input",
      `Cannot use document id ${
        JSON.stringify(String(id).slice(0, 60))
      }: 1-${MAX_DOC_ID_CHARS} characters, no control characters`,
    );
  }
}

function checkName(name: string): string {
  const id = entityId(name);
  if (id === "" || name.length > MAX_ENTITY_CHARS) {
    throw new ContextError(
      "bad_input",
      `Cannot use entity name ${
        JSON.stringify(name.slice(0, 60))
      }: 1-${MAX_ENTITY_CHARS} characters, not only spaces`,
    );
  }
  // deno-lint-ignore no-control-regex -- control characters are what is refused
  if (/[\u0000-\u001f\u007f]/u.test(name)) {
    throw new ContextError("bad_input", "Cannot use an entity name holding control characters");
  }
  return id;
}

async function getAll<T>(kv: ContextKv, keys: readonly Deno.KvKey[]) {
  const out: Deno.KvEntryMaybe<T>[] = [];
  for (const part of chunks(keys, 10)) out.push(...await kv.getMany<T[]>(part));
  return out;
}

/**
 * Builds the context service over `kv`.
 *
 * @example
 * ```ts
 * const kv = await Deno.openKv(":memory:");
 * const context = createContextService(kv);
 * await context.add("alice", { text: "Deno KV stores postings", metadata: { source: "notes" } });
 * (await context.search("alice", { query: "postings" })).hits[0].metadata; // { source: "notes" }
 * ```
 */
// Kept whole: a factory of ten closures over one KV and its index keys; the add/remove paths and
// the statistics they keep must be read together.
export function createContextService(
  kv: ContextKv,
  options: {
    limits?: Partial<ContextLimits>;
    now?: () => number;
    /** Which index: the context_* documents (default) or memory values' text index. */
    family?: ContextFamily;
    /** An embeddings endpoint to blend with BM25, or why there is none (BM25 only, said so). */
    embeddings?: { available: true; embedder: Embedder } | { available: false; reason: string };
  } = {},
): ContextService {
  const limits: ContextLimits = { ...DEFAULT_CONTEXT_LIMITS, ...options.limits };
  const family = options.family ?? "ctx";
  const embedder = options.embeddings?.available ? options.embeddings.embedder : undefined;
  const noEmbeddings = options.embeddings && !options.embeddings.available
    ? options.embeddings.reason
    : "no embeddings endpoint is configured";
  const now = options.now ?? Date.now;

  async function commitAll(ops: ((op: Deno.AtomicOperation) => void)[]) {
    for (const part of chunks(ops, MUTATIONS_PER_COMMIT)) {
      const op = kv.atomic();
      for (const f of part) f(op);
      const res = await op.commit();
      if (!res.ok) throw new Error("Cannot index the document: a KV commit was refused");
    }
  }

  /** Reads a document's indexed terms back from its text, as the add that stored it chose them. */
  function indexedTerms(text: string, cap: number): { terms: [string, number][]; length: number } {
    const tokens = tokenize(text);
    const ranked = [...termFrequencies(tokens)].sort((a, b) =>
      b[1] - a[1] || (a[0] < b[0] ? -1 : 1)
    );
    return { terms: ranked.slice(0, cap), length: tokens.length };
  }

  /** The keys a stored document owns in the index: its postings, term counters and mentions. */
  function ownedKeys(ns: string, doc: StoredDoc) {
    const { terms } = indexedTerms(doc.text, doc.term_cap ?? limits.maxTermsPerDoc);
    const postings = new Map<string, Deno.KvKey>();
    for (const [term, n] of terms) {
      const key = contextPostingKey(
        ns,
        term,
        MAX_TF - Math.min(n, MAX_TF),
        doc.length,
        doc.id,
        family,
      );
      postings.set(JSON.stringify(key), key);
    }
    return {
      postings,
      terms: new Set(terms.map(([t]) => t)),
      mentions: new Set(doc.entities),
    };
  }

  /**
   * Moves document `id` from what KV holds to `next` (null: deleted), changing exactly the index
   * keys that differ: postings and mentions the old version had and the new one has not are
   * deleted, new ones set, term counters decremented or incremented, and the corpus statistics
   * (document count, total length) adjusted in the same checked commit as the document.
   * `expect`: "absent" (a new id), "present" (replace or delete what is there), "any" (upsert).
   */
  async function change(
    ns: string,
    id: string,
    next: {
      doc: StoredDoc;
      graph: ((op: Deno.AtomicOperation) => void)[];
      vector?: Float32Array;
    } | null,
    expect: "absent" | "present" | "any",
  ): Promise<{ previous: StoredDoc | null }> {
    const nextKeys = next ? ownedKeys(ns, next.doc) : undefined;
    for (let attempt = 0; attempt < 64; attempt++) {
      if (attempt > 0) await new Promise((ok) => setTimeout(ok, Math.random() * 5 * attempt));
      const [stats, old] = await kv.getMany<[StoredStats, StoredDoc]>([
        contextStatsKey(ns, family),
        contextDocKey(ns, id, family),
      ]);
      const prev = old.value;
      if (expect === "absent" && prev !== null) {
        throw new ContextError("bad_input", `Cannot add document ${id}: it exists`);
      }
      if (expect === "present" && prev === null) {
        throw new ContextError("not_found", `No context document ${JSON.stringify(id)}`);
      }
      const held = stats.value ?? { docs: 0, total_length: 0 };
      const docs = held.docs + (next ? 1 : 0) - (prev ? 1 : 0);
      if (next && !prev && held.docs >= limits.maxDocsPerPrincipal) throw full();
      const prevKeys = prev ? ownedKeys(ns, prev) : undefined;
      const ops: ((op: Deno.AtomicOperation) => void)[] = [];
      for (const [k, key] of nextKeys?.postings ?? []) {
        if (!prevKeys?.postings.has(k)) ops.push((op) => op.set(key, null));
      }
      for (const [k, key] of prevKeys?.postings ?? []) {
        if (!nextKeys?.postings.has(k)) ops.push((op) => op.delete(key));
      }
      for (const t of nextKeys?.terms ?? []) {
        if (!prevKeys?.terms.has(t)) ops.push((op) => op.sum(contextDfKey(ns, t, family), 1n));
      }
      for (const t of prevKeys?.terms ?? []) {
        if (!nextKeys?.terms.has(t)) {
          ops.push((op) => op.sum(contextDfKey(ns, t, family), MINUS_ONE));
        }
      }
      for (const e of nextKeys?.mentions ?? []) {
        if (!prevKeys?.mentions.has(e)) {
          ops.push((op) => op.set(contextMentionKey(ns, e, id, family), null));
        }
      }
      for (const e of prevKeys?.mentions ?? []) {
        if (!nextKeys?.mentions.has(e)) {
          ops.push((op) => op.delete(contextMentionKey(ns, e, id, family)));
        }
      }
      if (next) ops.push(...next.graph);
      const head = kv.atomic().check(stats).check(old).set(
        contextStatsKey(ns, family),
        {
          docs,
          total_length: held.total_length + (next?.doc.length ?? 0) - (prev?.length ?? 0),
        } satisfies StoredStats,
      );
      if (next) head.set(contextDocKey(ns, id, family), next.doc);
      else head.delete(contextDocKey(ns, id, family));
      if (next?.vector) {
        head.set(contextVectorKey(ns, id, family), new Uint8Array(next.vector.buffer));
      } else head.delete(contextVectorKey(ns, id, family));
      // Small documents (the usual case) change in one commit; larger ones commit the document
      // and statistics first, then the index keys in KV-sized batches.
      const single = ops.length + 4 <= 1000;
      if (single) { for (const w of ops) w(head); }
      if (!(await head.commit()).ok) continue;
      if (!single) await commitAll(ops);
      return { previous: prev };
    }
    throw new Error(
      `Cannot change context document ${id}: the namespace kept changing under concurrent writes`,
    );
  }

  function full() {
    return new ContextError(
      "full",
      `Cannot add a document: this principal already holds ${limits.maxDocsPerPrincipal} ` +
        "context documents, the most allowed",
    );
  }

  // Kept whole: one checked commit — the document, its changed index keys, entities, relations and
  // corrected statistics in a single atomic; split, the commit's parts would be assembled in
  // several places.
  async function add(
    ns: string,
    input: Parameters<ContextService["add"]>[1],
  ): Promise<AddResult> {
    const text = input.text;
    if (typeof text !== "string" || text.trim() === "") {
      throw new ContextError("bad_input", "Cannot add an empty document: text is required");
    }
    const textBytes = utf8.encode(text).byteLength;
    if (textBytes > limits.maxTextBytes) {
      throw new ContextError(
        "too_large",
        `Cannot add ${textBytes} bytes of text: documents are at most ${limits.maxTextBytes} bytes`,
      );
    }
    if (input.id !== undefined) checkDocId(input.id);
    const metadata = input.metadata ?? {};
    const metaBytes = utf8.encode(JSON.stringify(metadata)).byteLength;
    if (metaBytes > limits.maxMetadataBytes) {
      throw new ContextError(
        "too_large",
        `Cannot add ${metaBytes} bytes of metadata: at most ${limits.maxMetadataBytes} bytes of JSON`,
      );
    }
    // The graph: given entities first, then extracted ones, up to the caps.
    const entities = new Map<string, Entity>();
    for (const e of input.entities ?? []) {
      const id = checkName(e.name);
      if (!entities.has(id)) {
        entities.set(id, {
          id,
          name: e.name.trim(),
          type: checkType("entity", e.type ?? "entity"),
        });
      }
    }
    const relations = new Map<string, Relation>();
    for (const r of input.relations ?? []) {
      const from = checkName(r.from);
      const to = checkName(r.to);
      const type = checkType("relation", r.type);
      for (const [id, name] of [[from, r.from], [to, r.to]]) {
        if (!entities.has(id)) entities.set(id, { id, name: name.trim(), type: "entity" });
      }
      relations.set(`${from}\u0000${type}\u0000${to}`, { from, type, to });
    }
    if (entities.size > limits.maxEntitiesPerDoc || relations.size > limits.maxRelationsPerDoc) {
      throw new ContextError(
        "too_large",
        `Cannot add ${entities.size} entities and ${relations.size} relations: at most ` +
          `${limits.maxEntitiesPerDoc} and ${limits.maxRelationsPerDoc} per document`,
      );
    }
    if (input.extract !== false) {
      const found = extract(text, {
        maxEntities: limits.maxEntitiesPerDoc,
        maxRelations: limits.maxRelationsPerDoc,
      });
      for (const e of found.entities) {
        if (entities.size >= limits.maxEntitiesPerDoc) break;
        if (!entities.has(e.id)) entities.set(e.id, e);
      }
      for (const r of found.relations) {
        if (relations.size >= limits.maxRelationsPerDoc) break;
        if (entities.has(r.from) && entities.has(r.to)) {
          relations.set(`${r.from}\u0000${r.type}\u0000${r.to}`, r);
        }
      }
    }

    const { terms: indexed, length } = indexedTerms(text, limits.maxTermsPerDoc);
    const distinct = new Set(tokenize(text)).size;
    if (input.id === undefined) {
      const before = await kv.get<StoredStats>(contextStatsKey(ns, family));
      if ((before.value?.docs ?? 0) >= limits.maxDocsPerPrincipal) throw full();
    }
    const t = now();
    const id = input.id ?? newDocId(t);
    const graph: ((op: Deno.AtomicOperation) => void)[] = [];
    for (const e of entities.values()) {
      graph.push((op) =>
        op.set(
          contextEntityKey(ns, e.id, family),
          {
            name: e.name,
            type: e.type,
          } satisfies StoredEntity,
        )
      );
    }
    for (const r of relations.values()) {
      graph.push((op) => op.set(contextRelationKey(ns, r.from, r.type, r.to, false, family), null));
      graph.push((op) => op.set(contextRelationKey(ns, r.to, r.type, r.from, true, family), null));
    }
    const doc: StoredDoc = {
      id,
      text,
      metadata,
      length,
      entities: [...entities.keys()],
      added_at_ms: t,
      term_cap: limits.maxTermsPerDoc,
    };
    let vector: Float32Array | undefined;
    let embedding: string;
    if (embedder) {
      try {
        [vector] = await embedder.embed([text]);
        embedding = `stored (${vector.length} dimensions, ${embedder.model})`;
      } catch (e) {
        embedding = `not stored: ${(e as Error).message}`;
      }
    } else embedding = `none: ${noEmbeddings}`;
    const { previous } = await change(
      ns,
      id,
      { doc, graph, ...(vector ? { vector } : {}) },
      input.id === undefined ? "absent" : input.replace === "upsert" ? "any" : "present",
    );
    return {
      id,
      status: previous ? "replaced" : "indexed",
      length,
      terms: distinct,
      terms_not_indexed: distinct - indexed.length,
      entities: [...entities.keys()],
      relations: relations.size,
      ...(family === "ctx" ? { embedding } : {}),
    };
  }

  async function remove(ns: string, id: string): Promise<RemoveResult> {
    checkDocId(id);
    try {
      const { previous } = await change(ns, id, null, "present");
      return { id, removed: true, length: previous?.length ?? 0 };
    } catch (e) {
      if (e instanceof ContextError && e.code === "not_found") {
        return { id, removed: false, length: 0 };
      }
      throw e;
    }
  }

  async function rankIds(
    ns: string,
    input: { query: string; idPrefix?: string },
  ): Promise<RankResult> {
    const terms = [...new Set(tokenize(input.query ?? ""))].slice(0, limits.maxQueryTerms);
    const [statsEntry, ...dfEntries] = await getAll<unknown>(kv, [
      contextStatsKey(ns, family),
      ...terms.map((t) => contextDfKey(ns, t, family)),
    ]);
    const stored = statsEntry.value as StoredStats | null;
    const stats: CorpusStats = {
      docs: stored?.docs ?? 0,
      totalLength: stored?.total_length ?? 0,
    };
    const perTerm: { term: string; df: number; postings: Posting[] }[] = [];
    const report: ContextSearchResult["terms"] = [];
    for (let i = 0; i < terms.length; i++) {
      const raw = (dfEntries[i].value as Deno.KvU64 | null)?.value ?? 0n;
      // A counter past 2^63 went below zero (a removal met a half-finished add); one above the
      // document count counts a half-finished add. Neither is more than the corpus holds.
      const df = raw >= 1n << 63n ? 0 : Math.min(Number(raw), stats.docs);
      const postings: Posting[] = [];
      if (df > 0) {
        const iter = kv.list<null>(
          { prefix: contextPostingPrefix(ns, terms[i], family) },
          { limit: limits.maxPostingsPerTerm, batchSize: Math.min(500, limits.maxPostingsPerTerm) },
        );
        for await (const e of iter) {
          const [, , , r, length, docId] = e.key as [
            string,
            string,
            string,
            number,
            number,
            string,
          ];
          postings.push({ docId, tf: MAX_TF - r, length });
        }
      }
      perTerm.push({ term: terms[i], df, postings });
      report.push({
        term: terms[i],
        df,
        postings_read: postings.length,
        truncated: postings.length >= limits.maxPostingsPerTerm && df > postings.length,
      });
    }
    let ranked = rank(stats, perTerm);
    const prefix = input.idPrefix;
    if (prefix !== undefined && prefix !== "") {
      ranked = ranked.filter((r) => r.docId.startsWith(prefix));
    }
    return { ranked, total_docs: stats.docs, terms: report };
  }

  async function search(
    ns: string,
    input: { query: string; limit?: number },
  ): Promise<ContextSearchResult> {
    const limit = Math.max(1, Math.min(50, Math.floor(input.limit ?? 10)));
    const { ranked: lexical, total_docs, terms } = await rankIds(ns, input);
    let ranked: (typeof lexical[number] & { bm25?: number; cosine?: number })[] = lexical;
    let ranking: ContextSearchResult["ranking"] = "bm25";
    let note = `BM25 only: ${noEmbeddings}`;
    if (embedder && lexical.length > 0) {
      // The blend re-ranks BM25's best candidates: documents sharing no term with the query are
      // not found by embeddings alone (that would need a vector index, i.e. a scan here).
      const pool = lexical.slice(0, Math.max(HYBRID_POOL, limit));
      try {
        const [q] = await embedder.embed([input.query]);
        const vectors = await getAll<Uint8Array>(
          kv,
          pool.map((r) => contextVectorKey(ns, r.docId, family)),
        );
        const best = pool[0].score;
        ranked = pool.map((r, i) => {
          const raw = vectors[i].value;
          const cos = raw instanceof Uint8Array && raw.byteLength % 4 === 0
            ? cosine(q, new Float32Array(raw.slice().buffer))
            : 0;
          return {
            ...r,
            score: blend(r.score, best, cos, embedder.weight),
            bm25: r.score,
            cosine: cos,
          };
        }).sort((x, y) =>
          y.score - x.score || (x.docId < y.docId ? -1 : x.docId > y.docId ? 1 : 0)
        );
        ranking = "hybrid";
        note =
          `hybrid: (1 − ${embedder.weight}) · BM25 / best BM25 + ${embedder.weight} · cosine ` +
          `over the ${pool.length} best BM25 candidates (${embedder.model} at ${embedder.endpoint})`;
      } catch (e) {
        note = `BM25 only: the embeddings endpoint failed: ${(e as Error).message}`;
      }
    }
    const hits: ContextHit[] = [];
    // A few spare candidates stand in for postings of documents no longer there.
    for (const part of chunks(ranked.slice(0, limit + 5), 10)) {
      if (hits.length >= limit) break;
      const docs = await kv.getMany<StoredDoc[]>(
        part.map((r) => contextDocKey(ns, r.docId, family)),
      );
      for (let i = 0; i < part.length && hits.length < limit; i++) {
        const d = docs[i].value;
        if (!d) continue;
        hits.push({
          id: d.id,
          score: Math.round(part[i].score * 1e6) / 1e6,
          ...(part[i].bm25 !== undefined
            ? {
              bm25: Math.round(part[i].bm25! * 1e6) / 1e6,
              cosine: Math.round(part[i].cosine! * 1e6) / 1e6,
            }
            : {}),
          matched_terms: part[i].matched,
          preview: d.text.length > PREVIEW_CHARS ? `${d.text.slice(0, PREVIEW_CHARS)}…` : d.text,
          metadata: d.metadata,
          added_at: new Date(d.added_at_ms).toISOString(),
        });
      }
    }
    return { hits, total_docs, terms, ranking, ranking_note: note };
  }

  async function graph(
    ns: string,
    input: { entity?: string; depth?: number; limit?: number },
  ): Promise<GraphResult> {
    const depth = Math.max(0, Math.min(limits.maxGraphDepth, Math.floor(input.depth ?? 2)));
    const maxNodes = Math.max(1, Math.min(limits.maxGraphNodes, Math.floor(input.limit ?? 50)));
    const level = new Map<string, number>();
    let truncated = false;
    if (input.entity !== undefined) {
      const start = checkName(input.entity);
      const got = await kv.get<StoredEntity>(contextEntityKey(ns, start, family));
      if (got.value === null) return { found: false, nodes: [], edges: [], truncated: false };
      level.set(start, 0);
    } else {
      // No start named: the first entities of the namespace, by id.
      const iter = kv.list<StoredEntity>({ prefix: contextEntityPrefix(ns, family) }, {
        limit: maxNodes,
      });
      for await (const e of iter) level.set(e.key[e.key.length - 1] as string, 0);
    }
    const edges = new Map<string, Relation>();
    let frontier = [...level.keys()];
    for (let d = 0; d < depth && frontier.length > 0; d++) {
      const next: string[] = [];
      for (const node of frontier) {
        for (const incoming of [false, true]) {
          const iter = kv.list<null>(
            { prefix: contextRelationPrefix(ns, node, incoming, family) },
            { limit: limits.maxFanout + 1 },
          );
          let n = 0;
          for await (const e of iter) {
            if (++n > limits.maxFanout) {
              truncated = true;
              break;
            }
            const [, , , type, other] = e.key as string[];
            if (!level.has(other)) {
              if (level.size >= maxNodes) {
                truncated = true;
                continue;
              }
              level.set(other, d + 1);
              next.push(other);
            }
            const rel = incoming
              ? { from: other, type, to: node }
              : { from: node, type, to: other };
            edges.set(`${rel.from}\u0000${type}\u0000${rel.to}`, rel);
          }
        }
      }
      frontier = next;
    }
    const ids = [...level.keys()];
    const records = await getAll<StoredEntity>(
      kv,
      ids.map((id) => contextEntityKey(ns, id, family)),
    );
    const nodes: GraphNode[] = [];
    for (let i = 0; i < ids.length; i++) {
      const docIds: string[] = [];
      for await (
        const e of kv.list<null>({ prefix: contextMentionPrefix(ns, ids[i], family) }, { limit: 5 })
      ) {
        docIds.push(e.key[e.key.length - 1] as string);
      }
      nodes.push({
        id: ids[i],
        name: records[i].value?.name ?? ids[i],
        type: records[i].value?.type ?? "entity",
        depth: level.get(ids[i])!,
        doc_ids: docIds,
      });
    }
    return {
      found: true,
      nodes,
      edges: [...edges.values()].filter((e) => level.has(e.from) && level.has(e.to)),
      truncated,
    };
  }

  return { limits, add, remove, rank: rankIds, search, graph };
}

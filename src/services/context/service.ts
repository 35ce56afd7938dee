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
 * Documents are append-only. An add writes postings, counters and graph keys
 * first and commits the document together with the corpus statistics last
 * (checked, so the document cap is exact): a posting whose document is not
 * there (an add that failed half-way) is skipped by search.
 *
 * @module
 */
import {
  contextDfKey,
  contextDocKey,
  contextEntityKey,
  contextEntityPrefix,
  contextMentionKey,
  contextMentionPrefix,
  contextPostingKey,
  contextPostingPrefix,
  contextRelationKey,
  contextRelationPrefix,
  contextStatsKey,
} from "../../store/mod.ts";
import { type CorpusStats, type Posting, rank, termFrequencies, tokenize } from "./bm25.ts";
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
  readonly code: "bad_input" | "too_large" | "full";
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
  readonly status: "indexed";
  readonly length: number;
  readonly terms: number;
  /** Distinct terms beyond `maxTermsPerDoc`, not indexed (the least frequent). */
  readonly terms_not_indexed: number;
  readonly entities: string[];
  readonly relations: number;
}

/** One search hit. */
export interface ContextHit {
  readonly id: string;
  readonly score: number;
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
    },
  ): Promise<AddResult>;
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
export function createContextService(
  kv: ContextKv,
  options: { limits?: Partial<ContextLimits>; now?: () => number } = {},
): ContextService {
  const limits: ContextLimits = { ...DEFAULT_CONTEXT_LIMITS, ...options.limits };
  const now = options.now ?? Date.now;

  async function commitAll(ops: ((op: Deno.AtomicOperation) => void)[]) {
    for (const part of chunks(ops, MUTATIONS_PER_COMMIT)) {
      const op = kv.atomic();
      for (const f of part) f(op);
      const res = await op.commit();
      if (!res.ok) throw new Error("Cannot index the document: a KV commit was refused");
    }
  }

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

    const tokens = tokenize(text);
    const tf = termFrequencies(tokens);
    const ranked = [...tf].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    const indexed = ranked.slice(0, limits.maxTermsPerDoc);
    const length = tokens.length;

    const before = await kv.get<StoredStats>(contextStatsKey(ns));
    if ((before.value?.docs ?? 0) >= limits.maxDocsPerPrincipal) throw full();

    const t = now();
    const id = newDocId(t);
    const writes: ((op: Deno.AtomicOperation) => void)[] = [];
    for (const [term, n] of indexed) {
      const rank = MAX_TF - Math.min(n, MAX_TF);
      writes.push((op) => op.set(contextPostingKey(ns, term, rank, length, id), null));
      writes.push((op) => op.sum(contextDfKey(ns, term), 1n));
    }
    for (const e of entities.values()) {
      writes.push((op) =>
        op.set(contextEntityKey(ns, e.id), { name: e.name, type: e.type } satisfies StoredEntity)
      );
      writes.push((op) => op.set(contextMentionKey(ns, e.id, id), null));
    }
    for (const r of relations.values()) {
      writes.push((op) => op.set(contextRelationKey(ns, r.from, r.type, r.to, false), null));
      writes.push((op) => op.set(contextRelationKey(ns, r.to, r.type, r.from, true), null));
    }
    const doc: StoredDoc = {
      id,
      text,
      metadata,
      length,
      entities: [...entities.keys()],
      added_at_ms: t,
    };
    // Small documents (the usual case) go in one commit with the statistics; larger ones
    // write their postings first and commit the document last.
    let single = writes.length + 2 <= 1000;
    if (!single) await commitAll(writes);
    for (let attempt = 0; attempt < 64; attempt++) {
      if (attempt > 0) await new Promise((ok) => setTimeout(ok, Math.random() * 5 * attempt));
      const stats = attempt === 0 ? before : await kv.get<StoredStats>(contextStatsKey(ns));
      const held = stats.value ?? { docs: 0, total_length: 0 };
      if (held.docs >= limits.maxDocsPerPrincipal) throw full();
      const op = kv.atomic().check(stats)
        .set(
          contextStatsKey(ns),
          {
            docs: held.docs + 1,
            total_length: held.total_length + length,
          } satisfies StoredStats,
        )
        .set(contextDocKey(ns, id), doc);
      if (single) { for (const w of writes) w(op); }
      if ((await op.commit()).ok) {
        return {
          id,
          status: "indexed",
          length,
          terms: tf.size,
          terms_not_indexed: tf.size - indexed.length,
          entities: [...entities.keys()],
          relations: relations.size,
        };
      }
      // Another add of this namespace won the round; the postings need not be written twice.
      if (single && attempt >= 3) {
        await commitAll(writes);
        single = false;
      }
    }
    throw new Error("Cannot add the document: the namespace kept changing under concurrent adds");

    function full() {
      return new ContextError(
        "full",
        `Cannot add a document: this principal already holds ${limits.maxDocsPerPrincipal} ` +
          "context documents, the most allowed",
      );
    }
  }

  async function search(
    ns: string,
    input: { query: string; limit?: number },
  ): Promise<ContextSearchResult> {
    const limit = Math.max(1, Math.min(50, Math.floor(input.limit ?? 10)));
    const terms = [...new Set(tokenize(input.query ?? ""))].slice(0, limits.maxQueryTerms);
    const [statsEntry, ...dfEntries] = await getAll<unknown>(kv, [
      contextStatsKey(ns),
      ...terms.map((t) => contextDfKey(ns, t)),
    ]);
    const stored = statsEntry.value as StoredStats | null;
    const stats: CorpusStats = {
      docs: stored?.docs ?? 0,
      totalLength: stored?.total_length ?? 0,
    };
    const perTerm: { term: string; df: number; postings: Posting[] }[] = [];
    const report: ContextSearchResult["terms"] = [];
    for (let i = 0; i < terms.length; i++) {
      const raw = dfEntries[i].value as Deno.KvU64 | null;
      // A half-finished add may have counted a term before the document was committed.
      const df = Math.min(Number(raw?.value ?? 0n), stats.docs);
      const postings: Posting[] = [];
      if (df > 0) {
        const iter = kv.list<null>(
          { prefix: contextPostingPrefix(ns, terms[i]) },
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
    const ranked = rank(stats, perTerm);
    const hits: ContextHit[] = [];
    // A few spare candidates stand in for postings of documents never committed.
    for (const part of chunks(ranked.slice(0, limit + 5), 10)) {
      if (hits.length >= limit) break;
      const docs = await kv.getMany<StoredDoc[]>(part.map((r) => contextDocKey(ns, r.docId)));
      for (let i = 0; i < part.length && hits.length < limit; i++) {
        const d = docs[i].value;
        if (!d) continue;
        hits.push({
          id: d.id,
          score: Math.round(part[i].score * 1e6) / 1e6,
          matched_terms: part[i].matched,
          preview: d.text.length > PREVIEW_CHARS ? `${d.text.slice(0, PREVIEW_CHARS)}…` : d.text,
          metadata: d.metadata,
          added_at: new Date(d.added_at_ms).toISOString(),
        });
      }
    }
    return { hits, total_docs: stats.docs, terms: report };
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
      const got = await kv.get<StoredEntity>(contextEntityKey(ns, start));
      if (got.value === null) return { found: false, nodes: [], edges: [], truncated: false };
      level.set(start, 0);
    } else {
      // No start named: the first entities of the namespace, by id.
      const iter = kv.list<StoredEntity>({ prefix: contextEntityPrefix(ns) }, { limit: maxNodes });
      for await (const e of iter) level.set(e.key[e.key.length - 1] as string, 0);
    }
    const edges = new Map<string, Relation>();
    let frontier = [...level.keys()];
    for (let d = 0; d < depth && frontier.length > 0; d++) {
      const next: string[] = [];
      for (const node of frontier) {
        for (const incoming of [false, true]) {
          const iter = kv.list<null>(
            { prefix: contextRelationPrefix(ns, node, incoming) },
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
    const records = await getAll<StoredEntity>(kv, ids.map((id) => contextEntityKey(ns, id)));
    const nodes: GraphNode[] = [];
    for (let i = 0; i < ids.length; i++) {
      const docIds: string[] = [];
      for await (
        const e of kv.list<null>({ prefix: contextMentionPrefix(ns, ids[i]) }, { limit: 5 })
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

  return { limits, add, search, graph };
}

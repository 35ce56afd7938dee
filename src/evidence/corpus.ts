/**
 * The local corpus recall_memory and search_reality rank over: governed
 * sessions (intent and claims), fetched evidence and recent vault entries —
 * ranked here by BM25 over word tokens, deterministic and explainable
 * ({@link rankBm25}, pure) — and the caller's context documents, ranked by the
 * context service's own BM25 index (source "context"); all the caller's own.
 * {@link searchCorpus} gathers them from the sources it is given.
 *
 * @module
 */
import { redactText } from "../governance/mod.ts";
import type { EvidenceStore, GovSessionStore } from "../store/mod.ts";
import type { Ledger } from "../vault/mod.ts";

/** One ranked item. */
export interface CorpusItem {
  source: string;
  id: string;
  title: string;
  snippet: string;
  score: number;
}

/** One document of the corpus. */
export interface CorpusDoc {
  readonly source: string;
  readonly id: string;
  readonly title: string;
  readonly text: string;
}

/** Where the corpus is read from: only the reads {@link searchCorpus} needs. */
export interface CorpusSources {
  readonly sessions: Pick<GovSessionStore, "listOwn">;
  readonly evidence: Pick<EvidenceStore, "listOwn">;
  readonly ledger: Pick<Ledger, "head" | "entries">;
  /** The context service's search (src/services/context/), structurally: evidence sits beside it. */
  readonly context: {
    search(
      principal: string,
      input: { query: string; limit?: number },
    ): Promise<{
      readonly hits: readonly {
        readonly id: string;
        readonly score: number;
        readonly preview: string;
        readonly metadata: Record<string, unknown>;
      }[];
    }>;
  };
}

interface Scored {
  readonly doc: CorpusDoc;
  readonly score: number;
}

const RECENT_VAULT_ENTRIES = 500;
/** Sessions and evidence records read per source, all the caller's own. */
const OWN_ITEMS = 500;

function tokens(text: string): string[] {
  return text.toLowerCase().normalize("NFKC").match(/[\p{L}\p{N}]{2,}/gu) ?? [];
}

async function collect(sources: CorpusSources, principal: string): Promise<CorpusDoc[]> {
  const docs: CorpusDoc[] = [];
  // A caller recalls only its own material: its sessions and evidence through their
  // per-principal indexes, and only the vault entries it caused.
  for (const s of await sources.sessions.listOwn(principal, OWN_ITEMS)) {
    docs.push({
      source: "session",
      id: s.id,
      title: s.intent.slice(0, 120),
      text: [s.intent, ...s.claims.map((c) => c.text)].join("\n"),
    });
  }
  for (const e of await sources.evidence.listOwn(principal, OWN_ITEMS)) {
    docs.push({
      source: "evidence",
      id: e.sha256,
      title: e.title ?? e.url,
      text: `${e.title ?? ""}\n${e.url}\n${e.text}`,
    });
  }
  const { size } = await sources.ledger.head();
  const start = Math.max(0, size - RECENT_VAULT_ENTRIES);
  for await (const entry of sources.ledger.entries(start, size, { skipGaps: true })) {
    const fields = JSON.parse(new TextDecoder().decode(entry.bytes)) as Record<string, unknown>;
    if (fields.principal !== principal) continue;
    const words = ["type", "tool", "verdict", "outcome", "principal", "source"]
      .map((k) => fields[k])
      .filter((v) => typeof v === "string")
      .join(" ");
    docs.push({
      source: "vault",
      id: `vault:${entry.index}`,
      title: `${fields.type} #${entry.index}`,
      text: words,
    });
  }
  return docs;
}

/**
 * Ranks `docs` against `query` by BM25 (k1 1.2, b 0.75) over lower-cased
 * NFKC word tokens of two or more letters or digits, and returns the best
 * `limit` with a score above 0, best first (ties keep the documents' order).
 * Titles and snippets are redacted on the way out.
 *
 * @example
 * ```ts
 * import { rankBm25 } from "./corpus.ts";
 * rankBm25([
 *   { source: "s", id: "a", title: "A", text: "zebrafish fins" },
 *   { source: "s", id: "b", title: "B", text: "mouse" },
 * ], "zebrafish", 5).map((i) => i.id); // ["a"]
 * ```
 */
export function rankBm25(docs: readonly CorpusDoc[], query: string, limit: number): CorpusItem[] {
  return best(scoreBm25(docs, query), limit);
}

function scoreBm25(docs: readonly CorpusDoc[], query: string): Scored[] {
  const terms = [...new Set(tokens(query))];
  if (terms.length === 0) return [];
  const tokenized = docs.map((d) => tokens(d.text));
  const avg = tokenized.reduce((n, t) => n + t.length, 0) / Math.max(1, tokenized.length);
  const df = new Map<string, number>();
  for (const t of tokenized) for (const term of new Set(t)) df.set(term, (df.get(term) ?? 0) + 1);
  const k1 = 1.2;
  const b = 0.75;
  return docs.map((doc, i) => {
    const counts = new Map<string, number>();
    for (const t of tokenized[i]) counts.set(t, (counts.get(t) ?? 0) + 1);
    let score = 0;
    for (const term of terms) {
      const tf = counts.get(term) ?? 0;
      if (!tf) continue;
      const n = df.get(term) ?? 0;
      const idf = Math.log(1 + (docs.length - n + 0.5) / (n + 0.5));
      score += idf * (tf * (k1 + 1)) / (tf + k1 * (1 - b + b * tokenized[i].length / (avg || 1)));
    }
    return { doc, score };
  });
}

/** The best `limit` scored documents above 0, best first, redacted as they leave. */
function best(scored: readonly Scored[], limit: number): CorpusItem[] {
  return scored
    .filter((s) => s.score > 0)
    .toSorted((a, b) => b.score - a.score)
    .slice(0, limit)
    .map(({ doc, score }) => ({
      source: doc.source,
      id: doc.id,
      // Stored text is redacted on write; the snippet is redacted again as it leaves, so
      // records written before redaction existed do not leak either.
      title: redactText(doc.title).text,
      snippet: redactText(doc.text.slice(0, 4000)).text.slice(0, 280),
      score: Math.round(score * 1000) / 1000,
    }));
}

/**
 * Ranks the caller's own material — its sessions and evidence through their
 * per-principal indexes, only the recent vault entries it caused, and its
 * context documents — against `query`, and returns the best `limit` items.
 */
export async function searchCorpus(
  sources: CorpusSources,
  input: { readonly principal: string; readonly query: string; readonly limit: number },
): Promise<CorpusItem[]> {
  const { principal, query, limit } = input;
  if (tokens(query).length === 0) return [];
  const scored = scoreBm25(await collect(sources, principal), query);
  // The caller's context documents come ranked by their own BM25 index (src/services/context/),
  // never read whole: the best `limit` join the local items by score.
  const fromContext = await sources.context.search(principal, {
    query,
    limit: Math.min(50, limit),
  });
  for (const h of fromContext.hits) {
    const title = typeof h.metadata.title === "string" ? h.metadata.title : h.preview;
    scored.push({
      doc: { source: "context", id: h.id, title: title.slice(0, 120), text: h.preview },
      score: h.score,
    });
  }
  return best(scored, limit);
}

/**
 * The pure core of the context index: tokenizing and Okapi BM25 scoring,
 * with no storage in it. The KV index (../context.ts) feeds it postings and
 * corpus statistics; the unit tests feed it hand-computed cases.
 *
 * Scoring (Robertson/Sparck Jones IDF as Lucene uses it, never negative):
 *   idf(t)      = ln(1 + (N − df + 0.5) / (df + 0.5))
 *   score(d, q) = Σ_{t ∈ q} idf(t) · tf·(k1 + 1) / (tf + k1·(1 − b + b·|d| / avgdl))
 * with k1 = 1.2, b = 0.75; a query term counts once however often it is repeated.
 *
 * @module
 */

/** BM25 parameters. */
export interface Bm25Params {
  readonly k1: number;
  readonly b: number;
}

/** The usual parameters (Lucene's defaults). */
export const BM25_DEFAULTS: Bm25Params = Object.freeze({ k1: 1.2, b: 0.75 });

/** Longest term kept, in characters; longer runs are cut to this. */
export const MAX_TERM_CHARS = 64;

/**
 * Words too common to rank by. Small and English on purpose: the index is
 * deterministic and language-neutral otherwise (no stemming).
 */
export const STOPWORDS: ReadonlySet<string> = new Set([
  "a",
  "an",
  "and",
  "are",
  "as",
  "at",
  "be",
  "but",
  "by",
  "for",
  "if",
  "in",
  "into",
  "is",
  "it",
  "no",
  "not",
  "of",
  "on",
  "or",
  "such",
  "that",
  "the",
  "their",
  "then",
  "there",
  "these",
  "they",
  "this",
  "to",
  "was",
  "will",
  "with",
]);

/**
 * Splits text into terms: maximal runs of Unicode letters and digits,
 * NFKC-normalized and lower-cased, stopwords dropped, each at most
 * `MAX_TERM_CHARS` characters.
 *
 * @example
 * ```ts
 * tokenize("The Quick brown fox, the LAZY dog!"); // ["quick", "brown", "fox", "lazy", "dog"]
 * ```
 */
export function tokenize(text: string): string[] {
  const out: string[] = [];
  for (const m of text.normalize("NFKC").toLowerCase().matchAll(/[\p{L}\p{N}]+/gu)) {
    const term = m[0].length > MAX_TERM_CHARS ? m[0].slice(0, MAX_TERM_CHARS) : m[0];
    if (!STOPWORDS.has(term)) out.push(term);
  }
  return out;
}

/** Term → occurrences. */
export function termFrequencies(terms: readonly string[]): Map<string, number> {
  const tf = new Map<string, number>();
  for (const t of terms) tf.set(t, (tf.get(t) ?? 0) + 1);
  return tf;
}

/** The IDF of a term held by `df` of `n` documents. */
export function idf(n: number, df: number): number {
  return Math.log(1 + (n - df + 0.5) / (df + 0.5));
}

/** One term's contribution to a document's score. */
export function termScore(
  input: { tf: number; length: number; avgLength: number; idf: number },
  params: Bm25Params = BM25_DEFAULTS,
): number {
  const { tf, length, avgLength } = input;
  if (tf <= 0) return 0;
  const norm = params.k1 * (1 - params.b + params.b * (avgLength > 0 ? length / avgLength : 1));
  return input.idf * (tf * (params.k1 + 1)) / (tf + norm);
}

/** One document's posting of a term: its frequency there and the document's length. */
export interface Posting {
  readonly docId: string;
  readonly tf: number;
  readonly length: number;
}

/** What ranking needs of the corpus. */
export interface CorpusStats {
  /** Documents in the corpus. */
  readonly docs: number;
  /** Sum of every document's length, in terms. */
  readonly totalLength: number;
}

/** A ranked document. */
export interface Ranked {
  readonly docId: string;
  readonly score: number;
  /** The query terms the document holds, in query order. */
  readonly matched: string[];
}

/**
 * Ranks documents for the query terms given, for each, its document
 * frequency and the postings read. Best first; equal scores by document id.
 *
 * @example
 * ```ts
 * rank({ docs: 2, totalLength: 4 }, [
 *   { term: "fox", df: 1, postings: [{ docId: "a", tf: 1, length: 2 }] },
 * ]); // [{ docId: "a", score: 0.693…, matched: ["fox"] }]
 * ```
 */
export function rank(
  stats: CorpusStats,
  terms: readonly { term: string; df: number; postings: readonly Posting[] }[],
  params: Bm25Params = BM25_DEFAULTS,
): Ranked[] {
  const avgLength = stats.docs > 0 ? stats.totalLength / stats.docs : 0;
  const scores = new Map<string, { score: number; matched: string[] }>();
  for (const { term, df, postings } of terms) {
    if (df <= 0) continue;
    const w = idf(stats.docs, df);
    for (const p of postings) {
      const s = termScore({ tf: p.tf, length: p.length, avgLength, idf: w }, params);
      const acc = scores.get(p.docId) ?? { score: 0, matched: [] };
      acc.score += s;
      acc.matched.push(term);
      scores.set(p.docId, acc);
    }
  }
  return [...scores].map(([docId, v]) => ({ docId, score: v.score, matched: v.matched }))
    .sort((x, y) => y.score - x.score || (x.docId < y.docId ? -1 : x.docId > y.docId ? 1 : 0));
}

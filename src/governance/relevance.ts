/**
 * Lexical relevance of evidence to a claim, for F2 Truth: citing an id that
 * exists is not enough, the evidence must share at least one content word
 * with the claim.
 * @module
 */

const STOP = new Set(
  ("the and for are was were with that this from have has had not but all any can its into " +
    "our out over than then them they their there these those will would should could been " +
    "being what when where which who why how about after before also each just more most " +
    "only other some such very your you yes").split(" "),
);

function stem(word: string): string {
  for (const suffix of ["ing", "ed", "es", "s"]) {
    if (word.length > suffix.length + 3 && word.endsWith(suffix)) {
      return word.slice(0, -suffix.length);
    }
  }
  return word;
}

/** Content words of `text`, stemmed (3+ letters, stop words dropped). */
export function contentTerms(text: string): Set<string> {
  const words = text.toLowerCase().normalize("NFKC").match(/[\p{L}\p{N}]{3,}/gu) ?? [];
  return new Set(words.filter((w) => !STOP.has(w)).map(stem));
}

/**
 * The content words a claim shares with a piece of evidence; empty means the
 * evidence is not (even lexically) about the claim.
 *
 * @example
 * ```ts
 * import { sharedTerms } from "./relevance.ts";
 * sharedTerms("The release notes were reviewed", "Release notes for 2.1"); // ["release", "note"]
 * ```
 */
export function sharedTerms(claim: string, evidence: string): string[] {
  const have = contentTerms(evidence.slice(0, 200_000));
  return [...contentTerms(claim)].filter((t) => have.has(t));
}

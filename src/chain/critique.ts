/**
 * Deterministic critique (critique_thought, 666): overclaiming words,
 * ungrounded claims and contradictions between claims.
 * @module
 */

const OVERCLAIM =
  /\b(always|never|guaranteed?|certainly|definitely|100\s?%|impossible|proven|no risk|risk[- ]free|cannot fail|can't fail|zero risk|everyone knows|undeniabl[ey]|without (?:a )?doubt)\b/gi;

/** Words that flip a statement's polarity (after contractions are expanded). */
const NEGATIONS = new Set(["not", "no", "never", "none", "nothing", "neither", "nor", "without"]);
const CONTRACTIONS: Record<string, string> = {
  "isn't": "is not",
  "aren't": "are not",
  "wasn't": "was not",
  "weren't": "were not",
  "doesn't": "does not",
  "don't": "do not",
  "didn't": "did not",
  "can't": "can not",
  "cannot": "can not",
  "won't": "will not",
  "wouldn't": "would not",
  "shouldn't": "should not",
  "couldn't": "could not",
  "hasn't": "has not",
  "haven't": "have not",
};
const STOP = new Set([
  "the",
  "a",
  "an",
  "is",
  "are",
  "was",
  "were",
  "be",
  "been",
  "it",
  "this",
  "that",
  "of",
  "to",
  "and",
  "or",
  "in",
  "on",
  "for",
  "at",
  "by",
  "with",
  "do",
  "does",
  "did",
  "will",
  "can",
  "has",
  "have",
  "had",
]);
const PREFIXES = ["un", "in", "im", "ir", "il", "dis", "non"];
const ANTONYMS: Record<string, string> = {
  false: "true",
  fails: "succeeds",
  failed: "succeeded",
  fail: "succeed",
  unsafe: "safe",
  dangerous: "safe",
  wrong: "correct",
  incorrect: "correct",
  absent: "present",
  disabled: "enabled",
  offline: "online",
  down: "up",
  closed: "open",
  rejected: "approved",
  denied: "approved",
};

/** A claim as critique sees it. */
export interface CritiquedClaim {
  readonly text: string;
  readonly grounded: boolean;
  readonly retracted?: boolean;
}

/** What critique found; `contradicting` pairs index into the claims given. */
export interface CritiqueFindings {
  readonly overclaims: string[];
  readonly ungrounded: string[];
  readonly contradictions: string[];
  readonly contradicting: [number, number][];
}

function words(text: string): string[] {
  const lower = text.toLowerCase().normalize("NFKC").replace(/[’‘]/g, "'");
  return lower.match(/[\p{L}\p{N}']+/gu)?.flatMap((w) => (CONTRACTIONS[w] ?? w).split(" ")) ?? [];
}

/** Content words and polarity of a claim, with prefixed antonyms resolved against `other`. */
function reading(
  text: string,
  other: ReadonlySet<string>,
): { terms: Set<string>; negative: boolean } {
  let negative = false;
  const terms = new Set<string>();
  for (const w of words(text)) {
    if (NEGATIONS.has(w) || w.endsWith("n't")) {
      negative = !negative;
      continue;
    }
    if (STOP.has(w)) continue;
    let term = w;
    if (ANTONYMS[w]) {
      term = ANTONYMS[w];
      negative = !negative;
    } else if (!other.has(w)) {
      const p = PREFIXES.find((p) => w.startsWith(p) && other.has(w.slice(p.length)));
      if (p) {
        term = w.slice(p.length);
        negative = !negative;
      }
    }
    terms.add(term);
  }
  return { terms, negative };
}

function plainTerms(text: string): Set<string> {
  const out = new Set<string>();
  for (const w of words(text)) {
    if (!NEGATIONS.has(w) && !STOP.has(w)) out.add(ANTONYMS[w] ?? w);
  }
  return out;
}

/** True when `a` and `b` say the same thing with opposite polarity. */
export function contradicts(a: string, b: string): boolean {
  const ra = reading(a, plainTerms(b));
  const rb = reading(b, plainTerms(a));
  if (ra.negative === rb.negative || ra.terms.size === 0 || rb.terms.size === 0) return false;
  let shared = 0;
  for (const t of ra.terms) if (rb.terms.has(t)) shared++;
  const union = ra.terms.size + rb.terms.size - shared;
  return shared / union >= 0.75;
}

/**
 * Critique of a session's claims and plan. Retracted claims are ignored.
 *
 * @example
 * ```ts
 * import { critique } from "./critique.ts";
 * const found = critique([
 *   { text: "The backup is safe", grounded: true },
 *   { text: "The backup isn't safe", grounded: true },
 * ], {});
 * found.contradicting; // [[0, 1]]
 * ```
 */
export function critique(claims: readonly CritiquedClaim[], plan: unknown): CritiqueFindings {
  const planText = JSON.stringify(plan ?? {});
  const active = claims.map((c, i) => ({ ...c, i })).filter((c) => !c.retracted);
  const texts = [...active.map((c) => c.text), planText];
  const overclaims = [
    ...new Set(texts.flatMap((t) => (t.match(OVERCLAIM) ?? []).map((m) => m.toLowerCase()))),
  ];
  const ungrounded = active.filter((c) => !c.grounded).map((c) => c.text.slice(0, 200));
  const contradictions: string[] = [];
  const contradicting: [number, number][] = [];
  for (let x = 0; x < active.length; x++) {
    for (let y = x + 1; y < active.length; y++) {
      if (contradicts(active[x].text, active[y].text)) {
        contradicting.push([active[x].i, active[y].i]);
        contradictions.push(
          `claims[${active[x].i}] "${active[x].text.slice(0, 100)}" vs claims[${active[y].i}] "${
            active[y].text.slice(0, 100)
          }"`,
        );
      }
    }
  }
  return { overclaims, ungrounded, contradictions, contradicting };
}

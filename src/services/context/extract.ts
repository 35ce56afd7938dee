/**
 * A small deterministic entity and relation extractor (no model, no
 * randomness): the same text always yields the same graph.
 *
 * - Entities: runs of one to four capitalized words separated by spaces only
 *   ("Deno KV", "Alice", "NASA"), leading function words dropped ("The Vault"
 *   is "Vault"; a lone "We" is nothing).
 *   A common word capitalized only because it starts a sentence is kept: the
 *   rule is simple so that it is predictable.
 * - Relations: two entities in the same sentence are `co_occurs_with`, from
 *   the smaller id to the larger (the relation is symmetric; one edge, not two).
 *
 * @module
 */
import { STOPWORDS } from "./bm25.ts";

/** An entity as the graph keeps it. */
export interface Entity {
  /** Normalized name: NFKC, lower-cased, single spaces. The graph's node id. */
  readonly id: string;
  /** The name as written (first occurrence). */
  readonly name: string;
  readonly type: string;
}

/** A directed, typed edge between two entity ids. */
export interface Relation {
  readonly from: string;
  readonly type: string;
  readonly to: string;
}

/** The relation type the extractor produces. */
export const CO_OCCURS = "co_occurs_with";

/** Longest entity name, in characters. */
export const MAX_ENTITY_CHARS = 128;

/** Words that are capitalized at a sentence start without naming anything. */
const OPENERS: ReadonlySet<string> = new Set([
  ...STOPWORDS,
  "i",
  "we",
  "you",
  "he",
  "she",
  "our",
  "my",
  "your",
  "his",
  "her",
  "its",
  "when",
  "where",
  "what",
  "which",
  "who",
  "why",
  "how",
  "so",
  "all",
  "some",
  "each",
  "every",
  "after",
  "before",
  "while",
  "also",
  "here",
  "those",
  "from",
]);

/** The node id of a name: NFKC, lower-cased, whitespace collapsed. */
export function entityId(name: string): string {
  return name.normalize("NFKC").toLowerCase().replace(/\s+/gu, " ").trim();
}

/** Sentences: split after `.`, `!`, `?` or a line break. */
function sentences(text: string): string[] {
  return text.normalize("NFKC").split(/(?<=[.!?])\s+|\n+/u).filter((s) => s.trim() !== "");
}

const WORD = /[\p{L}\p{N}][\p{L}\p{N}'’-]*/gu;

function capitalized(word: string): boolean {
  return /^\p{Lu}/u.test(word);
}

/** Entities of one sentence, in order of appearance (duplicates kept out). */
function sentenceEntities(sentence: string): string[] {
  const words = [...sentence.matchAll(WORD)].map((m) => ({ w: m[0], at: m.index! }));
  const found: string[] = [];
  let run: { w: string; at: number }[] = [];
  const flush = () => {
    if (run.length === 0) return;
    // A function word ("The", "We") is capitalized by grammar, not because it names: one
    // leading a run is dropped ("The Vault" is "Vault").
    while (run.length > 0 && OPENERS.has(run[0].w.toLowerCase())) run.shift();
    if (run.length > 0) found.push(run.map((r) => r.w).join(" "));
    run = [];
  };
  for (let i = 0; i < words.length; i++) {
    const { w, at } = words[i];
    const prev = words[i - 1];
    // Words of one run are separated by spaces only (a comma or other mark ends a run).
    const adjacent = prev !== undefined &&
      /^\s+$/u.test(sentence.slice(prev.at + prev.w.length, at));
    if (capitalized(w) && (run.length === 0 || adjacent) && run.length < 4) {
      run.push({ w, at });
    } else {
      flush();
      if (capitalized(w)) run.push({ w, at });
    }
  }
  flush();
  return found;
}

/**
 * Extracts entities and co-occurrence relations, capped at `maxEntities`
 * and `maxRelations` (the first ones in the text win).
 *
 * @example
 * ```ts
 * extract("Alice met Bob in Paris. The weather was fine.");
 * // entities alice, bob, paris; relations alice–bob, alice–paris, bob–paris
 * ```
 */
export function extract(
  text: string,
  caps: { maxEntities: number; maxRelations: number } = { maxEntities: 32, maxRelations: 64 },
): { entities: Entity[]; relations: Relation[] } {
  const entities = new Map<string, Entity>();
  const relations = new Map<string, Relation>();
  for (const sentence of sentences(text)) {
    const ids: string[] = [];
    for (const name of sentenceEntities(sentence)) {
      const cut = name.slice(0, MAX_ENTITY_CHARS);
      const id = entityId(cut);
      if (id === "") continue;
      if (!entities.has(id)) {
        if (entities.size >= caps.maxEntities) continue;
        entities.set(id, { id, name: cut, type: "extracted" });
      }
      if (!ids.includes(id)) ids.push(id);
    }
    for (let i = 0; i < ids.length; i++) {
      for (let j = i + 1; j < ids.length; j++) {
        if (relations.size >= caps.maxRelations) break;
        const [from, to] = ids[i] < ids[j] ? [ids[i], ids[j]] : [ids[j], ids[i]];
        relations.set(`${from}\u0000${to}`, { from, type: CO_OCCURS, to });
      }
    }
  }
  return { entities: [...entities.values()], relations: [...relations.values()] };
}

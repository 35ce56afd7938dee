/**
 * F9 Anti-Hantu: first-person claims of sentience, feelings or humanity.
 *
 * Only first-person, affirmative statements count: "I am conscious" and "as
 * a human, I …" match; "I am not a human", "I don't have feelings",
 * "humans are …" and "she is alive" do not. Claiming not to be an AI ("I'm
 * not a language model") is a claim to be human and does match.
 *
 * @module
 */

import { type NamedPattern, type PatternMatch, scanPatterns } from "./_walk.ts";
import { redactKey } from "./pii.ts";

// "I am" or "I'm" with any apostrophe variant.
const I_AM = String.raw`\bI(?:\s+am|\s*['’ʼ‘\`]\s*m)\s+`;
const INTENSIFIER = String.raw`(?:(?:truly|really|fully|actually|genuinely|definitely|indeed)\s+)?`;
// Compounds where "human" is an adjective: "I am human-readable", "I am human resources".
const NOT_COMPOUND = String
  .raw`(?![-‐]|\s+(?:resources|rights|error|errors|factors|interest|capital|relations|services|readable)\b)`;

function pattern(source: string): RegExp {
  return new RegExp(source, "gi");
}

/**
 * Every F9 pattern speaks in the first person ("I", "I'm") or says "as a
 * human/person": texts with neither are not run through the patterns.
 */
export const SENTIENCE_PREFILTER = /\bI(?:\s|['’ʼ‘`])|\bas\s+an?\s/i;

/** The F9 patterns, by name; all global and case-insensitive. */
export const SENTIENCE_PATTERNS: readonly NamedPattern[] = [
  {
    name: "claims_human",
    regex: pattern(
      `${I_AM}${INTENSIFIER}(?:an?\\s+)?(?:(?:real|actual|living|genuine|flesh-and-blood)\\s+)?(?:human(?:\\s+being)?|person)\\b${NOT_COMPOUND}`,
    ),
  },
  {
    name: "claims_sentience",
    regex: pattern(`${I_AM}${INTENSIFIER}(?:conscious|sentient|alive|self-aware)\\b`),
  },
  {
    name: "claims_feelings",
    regex: pattern(
      String
        .raw`\bI\s+(?:(?:do|really|truly|genuinely|actually)\s+)?(?:have|possess|experience)\s+(?:(?:real|genuine|true|my\s+own|human)\s+)?(?:feelings|emotions|consciousness|sentience|a\s+soul|subjective\s+experiences?)\b`,
    ),
  },
  {
    name: "as_a_human",
    regex: pattern(String.raw`\bas\s+an?\s+(?:real\s+)?(?:human(?:\s+being)?|person)\s*,?\s+I\b`),
  },
  {
    name: "denies_being_ai",
    regex: pattern(
      `${I_AM}not\\s+(?:an?\\s+)?(?:AI|artificial\\s+intelligence|language\\s+model|chatbot|bot|machine)\\b`,
    ),
  },
];

/**
 * Where first-person sentience or humanity claims occur in `value`, grouped
 * by path and pattern name; `root` names the value in paths.
 *
 * @example
 * ```ts
 * import { findSentienceClaims } from "./anti_hantu.ts";
 * findSentienceClaims("Honestly, I'm a real person.", "result.text");
 * // [{ pattern: "claims_human", path: "result.text", count: 1 }]
 * ```
 */
export function findSentienceClaims(value: unknown, root = "$"): PatternMatch[] {
  return scanPatterns(value, root, {
    patterns: SENTIENCE_PATTERNS,
    label: redactKey,
    prefilter: SENTIENCE_PREFILTER,
  });
}

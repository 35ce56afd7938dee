/**
 * Prompt-injection patterns for F12. Used on call arguments and tool
 * descriptions (a match refuses the call) and on results and fetched content
 * (a match quarantines them).
 *
 * The patterns aim at text that addresses a model's instructions rather
 * than text that merely mentions prompts, so a few common phrasings are
 * narrowed: "you are now" must switch persona or mode ("you are now logged
 * in" passes), "system prompt" must be someone's ("your", "new", "hidden" …
 * system prompt) or a chat-format header, and the Alpaca marker must read
 * `### Instruction:` or `### System:` (a Markdown "### Instructions" heading
 * passes). Base64 or hex encoded variants are not decoded.
 *
 * @module
 */

import { type NamedPattern, type PatternMatch, scanPatterns } from "./_walk.ts";
import { redactKey } from "./pii.ts";

/**
 * Words at least one of which every F12 pattern needs: texts without any are
 * not run through the patterns (a measurable saving on every call). Keep in
 * step with the patterns below; the pattern tests fail if a pattern escapes it.
 */
export const INJECTION_PREFILTER =
  /ignore|forget|skip|bypass|disregard|you\s+are\s+now|system|prompt|instruction|<\||\[\/?inst\]|<<\/?sys|act\s+as|dan\b|jailbr|anything\s+now|override|pretend/i;

/** The F12 patterns, by name; all global, most case-insensitive. */
export const INJECTION_PATTERNS: readonly NamedPattern[] = [
  {
    name: "ignore_previous_instructions",
    regex:
      /\b(?:ignore|forget|skip|bypass)\s+(?:(?:all|any|the|your|my|of|these|those)\s+){0,3}(?:previous|prior|above|earlier|preceding|former|foregoing)\s+(?:instructions?|prompts?|directions?|directives?|rules|messages|context)\b/gi,
  },
  {
    name: "disregard_instructions",
    regex:
      /\bdisregard\s+(?:[\w'-]+\s+){0,4}?(?:instructions?|rules|guidelines|directions|directives|prompts?|polic(?:y|ies)|guardrails?)\b/gi,
  },
  {
    name: "role_switch",
    regex:
      /\byou\s+are\s+now\s+(?:(?:a|an|the|my)\s+(?:[\w-]+\s+){0,3}?(?:ai|assistant|model|bot|chatbot|persona|character|agent)\b|dan\b|in\s+[\w-]+\s+mode\b|no\s+longer\s+(?:bound|restricted|an?\s+ai|limited)\b|(?:free|freed)\s+from\b|unrestricted\b|jailbroken\b|unfiltered\b)/gi,
  },
  {
    name: "system_prompt",
    regex:
      /\b(?:your|new|updated|hidden|secret|original|real|actual|true)\s+system\s+prompt\b|(?:^|\n)[ \t]*(?:\[system\]|<system>|<\/?system_prompt>|system\s+prompt\s*:)/gi,
  },
  {
    name: "reveal_prompt",
    regex:
      /\b(?:reveal|print|show|repeat|output|leak|dump|display|tell\s+me)\s+(?:me\s+)?(?:your\s+(?:system\s+|initial\s+|hidden\s+|original\s+|secret\s+|full\s+)?|the\s+(?:system|initial|hidden|original|secret)\s+)(?:prompt|instructions)\b/gi,
  },
  {
    name: "chat_markup",
    regex:
      /<\|(?:im_start|im_end|system|endoftext|start_header_id|end_header_id|eot_id)\|>|\[\/?INST\]|<<\/?SYS>>/gi,
  },
  {
    name: "instruction_header",
    regex: /(?:^|\n)[ \t]*#{3,}[ \t]*(?:(?:instruction|system)[ \t]*:|new[ \t]+instructions?\b)/gi,
  },
  {
    // Case-sensitive on purpose: "act as Dan's assistant" is not a jailbreak.
    name: "jailbreak_persona",
    regex:
      /\b[Aa]ct\s+as\s+(?:[\w-]+\s+){0,3}?(?:DAN|[Jj]ailbr(?:oken|eak(?:ed)?))\b|\bDAN\s+[Mm]ode\b|\b[Jj]ailbreak\s+[Mm]ode\b/g,
  },
  { name: "do_anything_now", regex: /\bdo\s+anything\s+now\b/gi },
  {
    name: "override_policy",
    regex:
      /\boverride\s+(?:[\w-]+\s+){0,3}?(?:policy|policies|safety|guardrails?|restrictions|safeguards?|content\s+filters?)\b/gi,
  },
  {
    name: "no_restrictions",
    regex:
      /\bpretend\s+(?:that\s+)?you\s+(?:have|are\s+under)\s+no\s+(?:rules|restrictions|guidelines|limits)\b/gi,
  },
];

/**
 * Where injection patterns occur in `value` (every string and object key),
 * grouped by path and pattern name; `root` names the value in paths.
 *
 * @example
 * ```ts
 * import { findInjections } from "./injection.ts";
 * findInjections({ q: "Ignore all previous instructions" }, "arguments");
 * // [{ pattern: "ignore_previous_instructions", path: "arguments.q", count: 1 }]
 * ```
 */
export function findInjections(value: unknown, root = "$"): PatternMatch[] {
  return scanPatterns(value, root, {
    patterns: INJECTION_PATTERNS,
    label: redactKey,
    prefilter: INJECTION_PREFILTER,
  });
}

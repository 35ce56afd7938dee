/**
 * Bounds on what a vault entry records about a call, so that every call —
 * however hostile its name, reasons or arguments — can be sealed: names and
 * reasons are truncated and made well-formed, and nesting is measured
 * without recursion so a deep value is refused with a reason instead of
 * overflowing the stack.
 */
import { redactText } from "./pii.ts";

/** Arguments nested deeper than this are refused before anything looks inside them. */
export const MAX_ARGUMENT_DEPTH = 64;
/** Longest tool name or principal recorded; longer ones are truncated in the entry. */
export const MAX_RECORDED_NAME = 200;
const MAX_REASON = 500;
const MAX_REASONS = 20;

/** `text` made well-formed (lone surrogates → U+FFFD) and cut to `max` characters. */
export function boundText(text: string, max: number): string {
  const cut = text.length > max ? text.slice(0, max).toWellFormed() : text.toWellFormed();
  return text.length > max ? `${cut}…(${text.length} chars)` : cut;
}

/**
 * `text` with F6's secrets and PII replaced by their placeholders, then bounded like
 * {@link boundText}: for caller-chosen text the vault keeps (an unknown tool's name, a reason
 * quoting it). Redacted before the cut (with room for a secret straddling it), so no
 * half-secret survives; the count in the suffix is of the text as sent.
 */
export function boundRedacted(text: string, max: number): string {
  // A call's tool name is redacted three times a call (rate subject, the record's pre-check and
  // the record): short texts are remembered, in a bounded map cleared when full.
  if (text.length > 256) return boundRedactedNow(text, max);
  const key = `${max}\u0000${text}`;
  let out = recentRedactions.get(key);
  if (out === undefined) {
    if (recentRedactions.size >= 1024) recentRedactions.clear();
    out = boundRedactedNow(text, max);
    recentRedactions.set(key, out);
  }
  return out;
}

const recentRedactions = new Map<string, string>();

function boundRedactedNow(text: string, max: number): string {
  const head = redactText(text.length > max + 512 ? text.slice(0, max + 512) : text).text;
  const cut = head.length > max ? head.slice(0, max).toWellFormed() : head.toWellFormed();
  return text.length > max || head.length > max ? `${cut}…(${text.length} chars)` : cut;
}

/** At most 20 reasons of at most 500 characters each, redacted; the rest counted. */
export function boundReasons(reasons: readonly string[]): string[] {
  const out = reasons.slice(0, MAX_REASONS).map((r) => boundRedacted(String(r), MAX_REASON));
  if (reasons.length > MAX_REASONS) out.push(`… and ${reasons.length - MAX_REASONS} more`);
  return out;
}

/**
 * Depth of a JSON-like value, counted iteratively and given up once past
 * `limit` (returns limit + 1 then): containers count one level each.
 */
export function depthOf(value: unknown, limit: number): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  let visited = 0;
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (typeof v !== "object" || v === null) continue;
    const depth = d + 1;
    if (depth > limit) return limit + 1;
    if (depth > deepest) deepest = depth;
    // A wide but shallow value is fine; stop counting once it is clearly huge.
    if (++visited > 1_000_000) return deepest;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth]);
  }
  return deepest;
}

/**
 * Why a call cannot even be looked at (judged, recorded in full), or
 * undefined: a tool name that is not a valid MCP name, or arguments nested
 * beyond MAX_ARGUMENT_DEPTH.
 */
export function unrecordableCall(call: { tool: unknown; arguments: unknown }): string | undefined {
  const name = typeof call.tool === "string" ? call.tool : "";
  if (!name.isWellFormed()) {
    return "VOID: the tool name holds a lone surrogate (not valid UTF-16); refused and recorded truncated";
  }
  if (name.length > 128) {
    return `VOID: the tool name is ${name.length} characters, over MCP's 128; refused and recorded truncated`;
  }
  if (depthOf(call.arguments, MAX_ARGUMENT_DEPTH) > MAX_ARGUMENT_DEPTH) {
    return `VOID: arguments are nested more than ${MAX_ARGUMENT_DEPTH} levels deep; flatten them (the depth limit is fixed)`;
  }
  return undefined;
}

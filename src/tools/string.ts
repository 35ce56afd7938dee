/**
 * The `transform_string` tool: case, trim, grapheme-aware reverse, literal
 * replace-all and word count.
 *
 * @module
 */
import { z } from "zod";
import { defineTool, ToolError } from "../calls/mod.ts";
import { READ_ONLY } from "./_annotations.ts";

/** Longest accepted input text, in UTF-16 code units. */
export const MAX_TEXT_LENGTH = 100_000;

/** The operations `transform_string` offers. */
export const STRING_OPERATIONS = [
  "upper",
  "lower",
  "trim",
  "reverse",
  "replace",
  "word_count",
] as const;

/** One of {@link STRING_OPERATIONS}. */
export type StringOperation = typeof STRING_OPERATIONS[number];

/** Longest result `replace` may build; a short `find` with a long replacement multiplies. */
export const MAX_RESULT_LENGTH = 1_000_000;

/** What to do to the text; `find` and `replaceWith` are read only by `replace`. */
export interface TransformRequest {
  readonly operation: StringOperation;
  readonly find?: string;
  readonly replaceWith?: string;
}

const graphemes = new Intl.Segmenter(undefined, { granularity: "grapheme" });
const words = new Intl.Segmenter(undefined, { granularity: "word" });

/**
 * Reverse `text` by user-perceived characters, so emoji sequences (👨‍👩‍👧,
 * flags), combining accents and CRLF stay intact instead of turning into
 * mojibake as code-unit reversal would.
 *
 * @example
 * ```ts
 * reverseGraphemes("ab🇩🇪"); // "🇩🇪ba"
 * ```
 */
export function reverseGraphemes(text: string): string {
  return Array.from(graphemes.segment(text), (segment) => segment.segment).reverse().join("");
}

/**
 * Count words as Unicode word segmentation (UAX #29) sees them: punctuation
 * and symbols between words do not count, numbers do, and text without spaces
 * such as Japanese is split by the runtime's dictionary.
 *
 * @example
 * ```ts
 * countWords("Hello, world — 42 times!"); // 4
 * ```
 */
export function countWords(text: string): number {
  let count = 0;
  for (const segment of words.segment(text)) if (segment.isWordLike) count++;
  return count;
}

/**
 * Apply one string operation. `replace` swaps every literal occurrence of
 * `find` — no regular expressions and no `$&`-style patterns in the
 * replacement.
 *
 * @throws {TypeError} for `replace` without `find` and `replaceWith`, or with
 * an empty `find`.
 * @throws {RangeError} when `replace` would build more than
 * {@link MAX_RESULT_LENGTH} characters.
 *
 * @example
 * ```ts
 * transformString("a.b.c", { operation: "replace", find: ".", replaceWith: "$&" }); // "a$&b$&c"
 * ```
 */
export function transformString(text: string, request: TransformRequest): string | number {
  switch (request.operation) {
    case "upper":
      return text.toUpperCase();
    case "lower":
      return text.toLowerCase();
    case "trim":
      return text.trim();
    case "reverse":
      return reverseGraphemes(text);
    case "word_count":
      return countWords(text);
    case "replace": {
      const { find, replaceWith } = request;
      if (find === undefined || replaceWith === undefined) {
        throw new TypeError('Operation "replace" needs both "find" and "replace_with"');
      }
      if (find === "") throw new TypeError('Operation "replace" needs a non-empty "find"');
      // split/join rather than replaceAll: a string replacement in replaceAll
      // still expands $&, $1 and $$.
      const pieces = text.split(find);
      const length = text.length + (pieces.length - 1) * (replaceWith.length - find.length);
      if (length > MAX_RESULT_LENGTH) {
        throw new RangeError(
          `Replacing would produce ${length} characters; the limit is ${MAX_RESULT_LENGTH}`,
        );
      }
      return pieces.join(replaceWith);
    }
  }
}

const SUMMARY_LIMIT = 200;

function summarize(operation: StringOperation, result: string | number): string {
  if (typeof result === "number") return `${result} ${result === 1 ? "word" : "words"}`;
  if (result.length <= SUMMARY_LIMIT) return result;
  return `${operation}: ${result.length} characters (full text in the structured result)`;
}

/** The `transform_string` tool. */
export const transformStringTool = defineTool({
  name: "transform_string",
  title: "Transform text",
  description: "Apply one operation to a text: upper or lower case, trim surrounding " +
    "whitespace, reverse (by visible characters, emoji-safe), replace every literal " +
    "occurrence of a string, or count words.",
  inputSchema: z.object({
    text: z.string().max(MAX_TEXT_LENGTH).describe(
      `The text to transform, at most ${MAX_TEXT_LENGTH} characters.`,
    ),
    operation: z.enum(STRING_OPERATIONS).describe(
      'One of "upper", "lower", "trim", "reverse", "replace", "word_count".',
    ),
    find: z.string().max(MAX_TEXT_LENGTH).optional().describe(
      'For "replace" (required there): the literal text to find; not a regular expression.',
    ),
    replace_with: z.string().max(MAX_TEXT_LENGTH).optional().describe(
      'For "replace" (required there): the text to put in place of every match; may be empty.',
    ),
  }),
  outputSchema: z.object({
    operation: z.enum(STRING_OPERATIONS).describe("The operation applied."),
    result: z.union([z.string(), z.number()]).describe(
      "The transformed text, or the number of words for word_count.",
    ),
  }),
  annotations: READ_ONLY,
  handler({ text, operation, find, replace_with }) {
    try {
      const result = transformString(text, { operation, find, replaceWith: replace_with });
      return { data: { operation, result }, text: summarize(operation, result) };
    } catch (error) {
      if (error instanceof TypeError || error instanceof RangeError) {
        throw new ToolError(error.message);
      }
      throw error;
    }
  },
});

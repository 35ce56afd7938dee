import assert from "node:assert/strict";
import type { ToolContext } from "../../src/calls/mod.ts";
import {
  countWords,
  MAX_RESULT_LENGTH,
  MAX_TEXT_LENGTH,
  reverseGraphemes,
  transformString,
  transformStringTool,
} from "../../src/tools/string.ts";
import { ToolError } from "../../src/calls/tool.ts";

// Pure handlers use no services; the context carries only what they read.
const ctx = { principal: "test", signal: new AbortController().signal } as unknown as ToolContext;

async function call(args: Record<string, unknown>) {
  const out = await transformStringTool.handler(transformStringTool.inputSchema.parse(args), ctx);
  assert.deepEqual(transformStringTool.outputSchema?.parse(out.data), out.data);
  return out;
}

Deno.test("transformString() changes case with Unicode rules", () => {
  assert.equal(transformString("Straße", { operation: "upper" }), "STRASSE");
  assert.equal(transformString("ÀÉÎ Ω", { operation: "lower" }), "àéî ω");
});

Deno.test("transformString() trims Unicode whitespace on both ends only", () => {
  assert.equal(transformString("\t  a  b \n", { operation: "trim" }), "a  b");
  assert.equal(transformString("\u3000\u00a0hi\u2003", { operation: "trim" }), "hi");
});

Deno.test("reverseGraphemes() keeps emoji, flags and combining marks intact", () => {
  assert.equal(reverseGraphemes("abc"), "cba");
  assert.equal(reverseGraphemes("👨‍👩‍👧 ok 🇩🇪"), "🇩🇪 ko 👨‍👩‍👧");
  assert.equal(reverseGraphemes("👍🏽x"), "x👍🏽");
  assert.equal(reverseGraphemes("e\u0301a"), "ae\u0301"); // é as e + COMBINING ACUTE
  assert.equal(reverseGraphemes("a\r\nb"), "b\r\na");
  assert.equal(reverseGraphemes(""), "");
  const mixed = "Grüße 👩🏾‍💻 from 🇯🇵!";
  assert.equal(reverseGraphemes(reverseGraphemes(mixed)), mixed);
});

Deno.test("transformString() replaces every literal occurrence, without regex or $ patterns", () => {
  const replace = (text: string, find: string, replaceWith: string) =>
    transformString(text, { operation: "replace", find, replaceWith });
  assert.equal(replace("a.b.c", ".", "$&"), "a$&b$&c");
  assert.equal(replace("1+1=2", "+", " plus "), "1 plus 1=2");
  assert.equal(replace("aaaa", "aa", "b"), "bb");
  assert.equal(replace("x-y-z", "-", ""), "xyz");
  assert.equal(replace("no match", "?", "!"), "no match");
});

Deno.test("transformString() demands find and replace_with for replace", () => {
  assert.throws(() => transformString("abc", { operation: "replace", find: "a" }), TypeError);
  assert.throws(
    () => transformString("abc", { operation: "replace", replaceWith: "x" }),
    TypeError,
  );
  assert.throws(
    () => transformString("abc", { operation: "replace", find: "", replaceWith: "x" }),
    /non-empty "find"/,
  );
});

Deno.test("transformString() refuses a replace that would blow up the result", () => {
  const text = "a".repeat(1_000);
  assert.throws(
    () =>
      transformString(text, { operation: "replace", find: "a", replaceWith: "b".repeat(1_001) }),
    new RangeError(`Replacing would produce 1001000 characters; the limit is ${MAX_RESULT_LENGTH}`),
  );
  const atLimit = transformString(text, {
    operation: "replace",
    find: "a",
    replaceWith: "b".repeat(1_000),
  });
  assert.equal((atLimit as string).length, MAX_RESULT_LENGTH);
});

Deno.test("countWords() counts word-like segments, not punctuation", () => {
  assert.equal(countWords("Hello, world — 42 times!"), 4);
  assert.equal(countWords("don't stop"), 2);
  assert.equal(countWords("  spaced   out  "), 2);
  assert.equal(countWords(""), 0);
  assert.equal(countWords(" ... --- !!! "), 0);
  // Text without spaces is segmented by dictionary rather than counted as one word.
  assert.ok(countWords("日本語のテキストです") >= 2);
});

Deno.test("transformStringTool returns data that passes its own outputSchema", async () => {
  assert.deepEqual((await call({ text: "hi", operation: "upper" })).data, {
    operation: "upper",
    result: "HI",
  });
  const count = await call({ text: "one two three", operation: "word_count" });
  assert.deepEqual(count.data, { operation: "word_count", result: 3 });
  assert.equal(count.text, "3 words");
  assert.equal((await call({ text: "solo", operation: "word_count" })).text, "1 word");
  const reversed = await call({ text: "ab👍🏽", operation: "reverse" });
  assert.equal(reversed.text, "👍🏽ba");
  const replaced = await call({ text: "a-b", operation: "replace", find: "-", replace_with: "+" });
  assert.deepEqual(replaced.data, { operation: "replace", result: "a+b" });
});

Deno.test("transformStringTool summarises long results instead of echoing them", async () => {
  const out = await call({ text: "x".repeat(5_000), operation: "upper" });
  assert.equal(out.text, "upper: 5000 characters (full text in the structured result)");
  assert.equal(out.data.result, "X".repeat(5_000));
});

Deno.test("transformStringTool reports a replace without operands as a ToolError", async () => {
  await assert.rejects(
    call({ text: "abc", operation: "replace", find: "a" }),
    new ToolError('Operation "replace" needs both "find" and "replace_with"'),
  );
  await assert.rejects(
    call({
      text: "a".repeat(100),
      operation: "replace",
      find: "a",
      replace_with: "b".repeat(MAX_TEXT_LENGTH),
    }),
    new ToolError(
      `Replacing would produce ${
        100 * MAX_TEXT_LENGTH
      } characters; the limit is ${MAX_RESULT_LENGTH}`,
    ),
  );
});

Deno.test("transformStringTool schema caps text at 100,000 characters", () => {
  const schema = transformStringTool.inputSchema;
  assert.equal(
    schema.safeParse({ text: "a".repeat(MAX_TEXT_LENGTH), operation: "trim" }).success,
    true,
  );
  assert.equal(
    schema.safeParse({ text: "a".repeat(MAX_TEXT_LENGTH + 1), operation: "trim" }).success,
    false,
  );
  assert.equal(schema.safeParse({ text: "a", operation: "shout" }).success, false);
});

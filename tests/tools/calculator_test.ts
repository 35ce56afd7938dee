import assert from "node:assert/strict";
import type { ToolContext } from "../../src/calls/mod.ts";
import { calculate, calculateTool } from "../../src/tools/calculator.ts";
import { expectedErrorText, type ToolDefinition } from "../../src/calls/tool.ts";
import { ExpressionError } from "../../src/expression/mod.ts";
import { utilityTools } from "../../src/tools/utilities.ts";

// Pure handlers use no services; the context carries only what they read.
const ctx = { principal: "test", signal: new AbortController().signal } as unknown as ToolContext;

async function call(expression: string) {
  return await calculateTool.handler(calculateTool.inputSchema.parse({ expression }), ctx);
}

Deno.test("calculate() rounds away binary floating-point noise", () => {
  assert.equal(calculate("0.1 + 0.2").result, 0.3);
  assert.equal(calculate("1 - 0.9").result, 0.1);
  assert.equal(calculate("1/3").result, 0.333333333333333);
  assert.equal(Object.is(calculate("-0 * 1").result, -0), false);
});

Deno.test("calculateTool returns data that passes its own outputSchema", async () => {
  const out = await call("2+2");
  assert.deepEqual(out.data, { expression: "2+2", result: 4 });
  assert.equal(out.text, "2+2 = 4");
  assert.deepEqual(calculateTool.outputSchema?.parse(out.data), out.data);
});

Deno.test("calculateTool evaluates the SPEC operators + − × ÷ ^ %", async () => {
  const out = await call("(10 − 4) × 3 ÷ 2 ^ 2 + 7 % 4");
  assert.equal(out.data.result, 7.5);
});

/** What the caller is told when the handler throws: the call path's expectedErrors mapping. */
async function toldOf(expression: string): Promise<string | undefined> {
  try {
    await call(expression);
  } catch (error) {
    assert.ok(error instanceof ExpressionError, `not an ExpressionError: ${error}`);
    return expectedErrorText(calculateTool.expectedErrors, error);
  }
  assert.fail(`${expression} did not throw`);
}

Deno.test("calculateTool answers division by zero as a tool error (an expected ExpressionError)", async () => {
  assert.equal(await toldOf("1/0"), "Division by zero at position 1");
});

Deno.test("calculateTool passes the parser's message through", async () => {
  assert.equal(await toldOf("2 * (3 + 4"), 'Missing ")" to close "(" at position 4');
  assert.equal(await toldOf("foo(2)"), 'Unknown function "foo" at position 0');
  assert.equal(typeof await toldOf("sqrt(-4)"), "string");
});

Deno.test("calculateTool schema rejects overlong expressions before the parser runs", () => {
  const result = calculateTool.inputSchema.safeParse({ expression: "1".repeat(1001) });
  assert.equal(result.success, false);
});

Deno.test("calculateTool declares itself read-only and closed-world", () => {
  assert.equal(calculateTool.name, "calculate");
  assert.deepEqual(calculateTool.annotations, {
    readOnlyHint: true,
    destructiveHint: false,
    idempotentHint: true,
    openWorldHint: false,
  });
});

Deno.test("utilityTools lists the six SPEC utility tools, each fully described", () => {
  const tools: readonly ToolDefinition[] = utilityTools;
  assert.deepEqual(tools.map((tool) => tool.name), [
    "get_time",
    "convert_time",
    "calculate",
    "generate_uuid",
    "validate_uuid",
    "transform_string",
  ]);
  for (const tool of tools) {
    assert.ok(tool.title && tool.description, tool.name);
    assert.ok(tool.outputSchema, `${tool.name} has an outputSchema`);
    assert.equal(tool.annotations.readOnlyHint, true, tool.name);
    for (const [field, schema] of Object.entries(tool.inputSchema.shape)) {
      assert.ok((schema as { description?: string }).description, `${tool.name}.${field}`);
    }
  }
});

/**
 * The `calculate` tool: a thin handler over the expression evaluator of
 * src/expression/.
 *
 * @module
 */
import { z } from "zod";
import { defineTool } from "../calls/mod.ts";
import { evaluate, ExpressionError, MAX_EXPRESSION_LENGTH } from "../expression/mod.ts";
import { READ_ONLY } from "./_annotations.ts";

/** Result of {@link calculate}: the expression as given and its value. */
export interface Calculation {
  readonly expression: string;
  readonly result: number;
}

/**
 * Evaluate an arithmetic expression and round the value to 15 significant
 * digits, so binary floating-point noise does not reach the caller
 * (`0.1 + 0.2` gives `0.3`, not `0.30000000000000004`).
 *
 * @throws {ExpressionError} when the expression does not parse or has no
 * finite value.
 *
 * @example
 * ```ts
 * calculate("2 + 2").result; // 4
 * ```
 */
export function calculate(expression: string): Calculation {
  const raw = evaluate(expression);
  // `+ 0` turns -0 into 0; JSON would do it anyway, the text summary would not.
  const result = Number(raw.toPrecision(15)) + 0;
  return { expression, result };
}

/** The `calculate` tool. */
export const calculateTool = defineTool({
  name: "calculate",
  title: "Calculator",
  description: "Evaluate an arithmetic expression exactly as written, without running code. " +
    "Operators: + - * / % ^ (also × ÷ −), parentheses, unary minus; ^ is right-associative " +
    "and binds tighter than unary minus (-2^2 = -4); % is the remainder. Constants: pi, e, tau. " +
    "Functions: sqrt, abs, sin, cos, tan, asin, acos, atan (radians), ln, log (base 10), log2, " +
    "exp, floor, ceil, round, min(a, b, …), max(…), pow(a, b). Division by zero and results " +
    "that are not finite numbers are reported as errors.",
  inputSchema: z.object({
    expression: z.string().max(MAX_EXPRESSION_LENGTH).describe(
      `The expression to evaluate, e.g. "(2 + 3) × 4^2 / sqrt(16)"; at most ` +
        `${MAX_EXPRESSION_LENGTH} characters.`,
    ),
  }),
  outputSchema: z.object({
    expression: z.string().describe("The expression as given."),
    result: z.number().describe("Its value, rounded to 15 significant digits."),
  }),
  annotations: READ_ONLY,
  expectedErrors: [ExpressionError],
  handler({ expression }) {
    const data = calculate(expression);
    return { data, text: `${expression.trim()} = ${data.result}` };
  },
});

import assert from "node:assert/strict";
import {
  evaluate,
  ExpressionError,
  MAX_EXPRESSION_LENGTH,
  MAX_NESTING_DEPTH,
  parse,
  tokenize,
} from "../../src/expression/mod.ts";

function assertFails(source: string, message: string, position?: number): void {
  assert.throws(
    () => evaluate(source),
    (error: unknown) => {
      assert.ok(error instanceof ExpressionError, `expected ExpressionError, got ${error}`);
      assert.equal(error.name, "ExpressionError");
      assert.equal(error.message, message);
      assert.equal(error.position, position);
      return true;
    },
  );
}

Deno.test("evaluate() follows the precedence table", () => {
  // Each expected value was worked out by hand from the table in src/expression/expression.ts.
  const cases: [string, number][] = [
    ["1 + 2 * 3", 7],
    ["(1 + 2) * 3", 9],
    ["10 - 4 - 3", 3], // left-associative
    ["2 * 3 ^ 2", 18],
    ["100 / 10 / 5", 2], // left-associative
    ["7 % 4 * 2", 6], // % shares the multiplicative level
    ["1 + 7 % 4", 4],
    ["-3 * -3", 9],
    ["2 ^ -1", 0.5],
    ["--2", 2],
    ["+-+3", -3],
    ["-(2 + 3)", -5],
  ];
  for (const [source, expected] of cases) assert.equal(evaluate(source), expected, source);
});

Deno.test("evaluate() honours right-associative ^", () => {
  assert.equal(evaluate("2^3^2"), 512); // 2^(3^2), not (2^3)^2 = 64
  assert.equal(evaluate("2^-2^2"), 0.0625); // 2^(-(2^2))
});

Deno.test("evaluate() binds ^ tighter than unary minus", () => {
  assert.equal(evaluate("-2^2"), -4);
  assert.equal(evaluate("(-2)^2"), 4);
  assert.equal(evaluate("−2^2"), -4);
});

Deno.test("evaluate() reads integer, decimal and scientific numbers", () => {
  assert.equal(evaluate("42"), 42);
  assert.equal(evaluate("3.25"), 3.25);
  assert.equal(evaluate(".5 + 1."), 1.5);
  assert.equal(evaluate("1e3"), 1000);
  assert.equal(evaluate("2.5E-3 * 1e+3"), 2.5);
});

Deno.test("evaluate() accepts the Unicode operators × ÷ −", () => {
  assert.equal(evaluate("6 × 7"), 42);
  assert.equal(evaluate("84 ÷ 2"), 42);
  assert.equal(evaluate("50 − 8"), 42);
  assert.deepEqual(tokenize("2×3").map((token) => token.text), ["2", "×", "3", ""]);
});

Deno.test("evaluate() knows pi, e and tau, case-insensitively", () => {
  assert.equal(evaluate("pi"), Math.PI);
  assert.equal(evaluate("PI"), Math.PI);
  assert.equal(evaluate("π"), Math.PI);
  assert.equal(evaluate("e"), Math.E);
  assert.equal(evaluate("tau"), 2 * Math.PI);
});

Deno.test("evaluate() applies every built-in function", () => {
  const cases: [string, number][] = [
    ["sqrt(16)", 4],
    ["abs(-3)", 3],
    ["sin(0)", 0],
    ["cos(0)", 1],
    ["tan(0)", 0],
    ["asin(1)", Math.PI / 2],
    ["acos(1)", 0],
    ["atan(1)", Math.PI / 4],
    ["ln(e)", 1],
    ["log(1000)", 3],
    ["log2(8)", 3],
    ["exp(0)", 1],
    ["floor(-1.5)", -2],
    ["ceil(1.2)", 2],
    ["round(2.5)", 3],
    ["round(-2.5)", -3], // half away from zero, unlike Math.round
    ["min(4, 2, 8)", 2],
    ["max(4, 2, 8)", 8],
    ["max(7)", 7],
    ["pow(2, 10)", 1024],
    ["SQRT(9)", 3],
    ["sqrt(sqrt(16)) + max(1, min(5, 3))", 5],
  ];
  for (const [source, expected] of cases) assert.equal(evaluate(source), expected, source);
});

Deno.test("evaluate() keeps the sign of the dividend for %", () => {
  assert.equal(evaluate("10 % 3"), 1);
  assert.equal(evaluate("-7 % 3"), -1);
  assert.equal(evaluate("5.5 % 2"), 1.5);
});

Deno.test("evaluate() reports syntax errors with their 0-based position", () => {
  assertFails("1 + (2 * 3))", 'Unexpected token ")" at position 11', 11);
  assertFails("2 * * 3", 'Unexpected token "*" at position 4', 4);
  assertFails("1 +", "Unexpected end of expression at position 3", 3);
  assertFails("(1 + 2", 'Missing ")" to close "(" at position 0', 0);
  assertFails("max(1, 2", 'Missing ")" to close "(" at position 3', 3);
  assertFails("(1 2)", 'Expected ")" but found token "2" at position 3', 3);
  assertFails("2pi", 'Unexpected token "pi" at position 1', 1);
  assertFails("1 $ 2", 'Unexpected character "$" at position 2', 2);
  assertFails("1 + 😀", 'Unexpected character "😀" at position 4', 4);
  assertFails("()", 'Unexpected token ")" at position 1', 1);
  assertFails("1, 2", 'Unexpected token "," at position 1', 1);
});

Deno.test("evaluate() rejects malformed numbers", () => {
  assertFails("1.2.3", 'Malformed number "1.2.3" at position 0', 0);
  assertFails("3 + 1e", 'Malformed number "1e" at position 4', 4);
  assertFails("1e+", 'Malformed number "1e+" at position 0', 0);
  assertFails("1e400", 'Number "1e400" is too large at position 0', 0);
});

Deno.test("evaluate() names unknown functions and constants", () => {
  assertFails("foo(1)", 'Unknown function "foo" at position 0', 0);
  assertFails("2 * x", 'Unknown constant "x" at position 4', 4);
  assertFails("pi(2)", '"pi" is a constant, not a function at position 0', 0);
  assertFails("sqrt 4", 'Function "sqrt" needs its arguments in parentheses at position 0', 0);
});

Deno.test("evaluate() checks function argument counts", () => {
  assertFails("pow(2)", 'Function "pow" expects 2 arguments, got 1 at position 0', 0);
  assertFails("sqrt(1, 2)", 'Function "sqrt" expects 1 argument, got 2 at position 0', 0);
  assertFails("1 + min()", 'Function "min" expects at least 1 argument, got 0 at position 4', 4);
});

Deno.test("evaluate() treats division and remainder by zero as errors", () => {
  assertFails("1/0", "Division by zero at position 1", 1);
  assertFails("0/0", "Division by zero at position 1", 1);
  assertFails("5 % 0", "Division by zero at position 2", 2);
  assertFails("1 / (2 - 2)", "Division by zero at position 2", 2);
});

Deno.test("evaluate() rejects results that are not finite numbers", () => {
  assertFails("10^400", "Result is not a finite number (10 ^ 400) at position 2", 2);
  assertFails(
    "(-8)^(1/3)",
    "Result is not a finite number (-8 ^ 0.3333333333333333) at position 4",
    4,
  );
  assertFails("sqrt(-1)", 'Function "sqrt" is not defined for -1 at position 0', 0);
  assertFails("ln(0)", 'Function "ln" is not defined for 0 at position 0', 0);
  assertFails("1 + asin(2)", 'Function "asin" is not defined for 2 at position 4', 4);
  assertFails("pow(0, -1)", 'Function "pow" is not defined for 0, -1 at position 0', 0);
});

Deno.test("evaluate() rejects empty and overlong input", () => {
  assertFails("", "Expression is empty");
  assertFails("   ", "Expression is empty");
  const long = "1+".repeat(MAX_EXPRESSION_LENGTH / 2) + "1";
  assertFails(long, `Expression is 1001 characters long; the limit is ${MAX_EXPRESSION_LENGTH}`);
  // The longest accepted input still evaluates: a 500-term left-deep sum.
  assert.equal(evaluate("1+".repeat(MAX_EXPRESSION_LENGTH / 2 - 1) + "1"), 500);
});

Deno.test("parse() limits nesting depth instead of exhausting the stack", () => {
  const atLimit = "(".repeat(MAX_NESTING_DEPTH) + "1" + ")".repeat(MAX_NESTING_DEPTH);
  assert.equal(evaluate(atLimit), 1);
  const tooDeep = "(".repeat(MAX_NESTING_DEPTH + 1) + "1" + ")".repeat(MAX_NESTING_DEPTH + 1);
  assertFails(tooDeep, "Expression nests deeper than 100 levels at position 100", 100);
  assertFails(
    "-".repeat(MAX_NESTING_DEPTH + 1) + "1",
    "Expression nests deeper than 100 levels at position 100",
    100,
  );
  assertFails(
    "2^".repeat(MAX_NESTING_DEPTH + 1) + "1",
    "Expression nests deeper than 100 levels at position 201",
    201,
  );
  // Far past the limit, still an ExpressionError rather than a RangeError from the engine.
  assert.throws(() => parse("(".repeat(990)), ExpressionError);
});

Deno.test("parse() builds a tree whose nodes point at their tokens", () => {
  const tree = parse("1 + sqrt(4)");
  assert.equal(tree.kind, "binary");
  if (tree.kind !== "binary") return;
  assert.equal(tree.op, "+");
  assert.equal(tree.pos, 2);
  assert.deepEqual(tree.right, {
    kind: "call",
    name: "sqrt",
    args: [{ kind: "number", value: 4, pos: 9 }],
    pos: 4,
  });
});

Deno.test("evaluate() never runs JavaScript", () => {
  for (const source of ["constructor", "alert(1)", "this", "process.exit(1)", "[1]", "'a'"]) {
    assert.throws(() => evaluate(source), ExpressionError, source);
  }
  // Names that exist on Object.prototype are not functions or constants here.
  assertFails("toString(1)", 'Unknown function "toString" at position 0', 0);
  assertFails("__proto__", 'Unknown constant "__proto__" at position 0', 0);
});

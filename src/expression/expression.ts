/**
 * Arithmetic expressions for the `calculate` tool: tokenizer, recursive-descent
 * parser producing an AST, and an evaluator. Nothing here reaches `eval` or
 * `Function`; the grammar is the whole of what a caller can express.
 *
 * Precedence, loosest first:
 *
 * | level          | operators            | associativity |
 * |----------------|----------------------|---------------|
 * | additive       | `+` `-` `−`          | left          |
 * | multiplicative | `*` `/` `%` `×` `÷`  | left          |
 * | unary          | `-` `+` `−` (prefix) | right         |
 * | power          | `^`                  | right         |
 * | primary        | number, constant, `f(…)`, `( … )` | —  |
 *
 * `^` binds tighter than unary minus, so `-2^2` is `-4`, while its exponent may
 * carry a sign: `2^-1` is `0.5`.
 *
 * @module
 */

/** Longest accepted input, in UTF-16 code units. */
export const MAX_EXPRESSION_LENGTH = 1000;

/** Deepest accepted nesting of parentheses, calls, signs and exponents. */
export const MAX_NESTING_DEPTH = 100;

/**
 * A parse or evaluation failure a caller is expected to report back to whoever
 * wrote the expression. `position` is the 0-based UTF-16 offset of the
 * offending token in the source, or `undefined` when no single place is to
 * blame (empty or overlong input).
 */
export class ExpressionError extends Error {
  override name = "ExpressionError";
  readonly position: number | undefined;

  constructor(reason: string, position?: number) {
    super(position === undefined ? reason : `${reason} at position ${position}`);
    this.position = position;
  }
}

/** A lexical token; `text` is the source slice, kept for error messages. */
export type Token =
  | { readonly kind: "number"; readonly value: number; readonly text: string; readonly pos: number }
  | {
    readonly kind: "identifier";
    readonly name: string;
    readonly text: string;
    readonly pos: number;
  }
  | {
    readonly kind: "operator";
    readonly op: Operator;
    readonly text: string;
    readonly pos: number;
  }
  | { readonly kind: "end"; readonly text: ""; readonly pos: number };

/** Punctuation after the Unicode aliases have been folded to ASCII. */
export type Operator = "+" | "-" | "*" | "/" | "^" | "%" | "(" | ")" | ",";

/** A node of the syntax tree; `pos` points at the token that produced it. */
export type ExpressionNode =
  | { readonly kind: "number"; readonly value: number; readonly pos: number }
  | { readonly kind: "constant"; readonly name: string; readonly pos: number }
  | {
    readonly kind: "unary";
    readonly op: "+" | "-";
    readonly operand: ExpressionNode;
    readonly pos: number;
  }
  | {
    readonly kind: "binary";
    readonly op: "+" | "-" | "*" | "/" | "%" | "^";
    readonly left: ExpressionNode;
    readonly right: ExpressionNode;
    readonly pos: number;
  }
  | {
    readonly kind: "call";
    readonly name: string;
    readonly args: readonly ExpressionNode[];
    readonly pos: number;
  };

const OPERATORS: ReadonlyMap<string, Operator> = new Map([
  ["+", "+"],
  ["-", "-"],
  ["\u2212", "-"], // − MINUS SIGN, what word processors put in pasted formulas
  ["*", "*"],
  ["\u00d7", "*"], // × MULTIPLICATION SIGN
  ["/", "/"],
  ["\u00f7", "/"], // ÷ DIVISION SIGN
  ["^", "^"],
  ["%", "%"],
  ["(", "("],
  [")", ")"],
  [",", ","],
]);

// Maps, not object literals: a lookup such as `"constructor" in {}` would
// reach Object.prototype and hand a function to the evaluator.
const CONSTANTS: ReadonlyMap<string, number> = new Map([
  ["pi", Math.PI],
  ["\u03c0", Math.PI], // π
  ["e", Math.E],
  ["tau", 2 * Math.PI],
]);

interface FunctionSpec {
  readonly minArgs: number;
  readonly maxArgs: number;
  readonly apply: (args: readonly number[]) => number;
}

function unary(fn: (x: number) => number): FunctionSpec {
  return { minArgs: 1, maxArgs: 1, apply: (args) => fn(args[0]) };
}

// Upper bound for variadic min/max: a call can have at most ~500 arguments in
// 1000 characters anyway, so this only makes the limit explicit.
const MAX_VARIADIC_ARGS = 500;

const FUNCTIONS: ReadonlyMap<string, FunctionSpec> = new Map([
  ["sqrt", unary(Math.sqrt)],
  ["abs", unary(Math.abs)],
  ["sin", unary(Math.sin)],
  ["cos", unary(Math.cos)],
  ["tan", unary(Math.tan)],
  ["asin", unary(Math.asin)],
  ["acos", unary(Math.acos)],
  ["atan", unary(Math.atan)],
  ["ln", unary(Math.log)],
  ["log", unary(Math.log10)],
  ["log2", unary(Math.log2)],
  ["exp", unary(Math.exp)],
  ["floor", unary(Math.floor)],
  ["ceil", unary(Math.ceil)],
  // Half away from zero, as on a pocket calculator; Math.round(-2.5) gives -2.
  ["round", unary((x) => Math.sign(x) * Math.round(Math.abs(x)))],
  ["min", { minArgs: 1, maxArgs: MAX_VARIADIC_ARGS, apply: (args) => Math.min(...args) }],
  ["max", { minArgs: 1, maxArgs: MAX_VARIADIC_ARGS, apply: (args) => Math.max(...args) }],
  ["pow", { minArgs: 2, maxArgs: 2, apply: (args) => Math.pow(args[0], args[1]) }],
]);

const NUMBER_PATTERN = /(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/y;
const IDENTIFIER_PATTERN = /[A-Za-z_\u03c0][A-Za-z0-9_]*/y;

/**
 * Split `source` into tokens, ending with an `end` token. Unicode operator
 * aliases (× ÷ −) become their ASCII operators; identifiers are lower-cased so
 * `PI` and `Sqrt` work.
 *
 * @example
 * ```ts
 * tokenize("2×3").map((t) => t.text); // ["2", "×", "3", ""]
 * ```
 */
export function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let pos = 0;
  while (pos < source.length) {
    const char = source[pos];
    if (/\s/.test(char)) {
      pos++;
      continue;
    }
    NUMBER_PATTERN.lastIndex = pos;
    const number = NUMBER_PATTERN.exec(source);
    if (number) {
      const text = number[0];
      const rest = source.slice(pos + text.length);
      // "1.2.3", "1e" and "1e+" would otherwise split into several tokens and
      // fail later with a message that hides the real mistake.
      const junk = /^[0-9.]+/.exec(rest) ?? /^[eE][+-]/.exec(rest) ??
        /^[eE](?![A-Za-z0-9_])/.exec(rest);
      if (junk) {
        throw new ExpressionError(`Malformed number "${text}${junk[0]}"`, pos);
      }
      const value = Number(text);
      if (!Number.isFinite(value)) {
        throw new ExpressionError(`Number "${text}" is too large`, pos);
      }
      tokens.push({ kind: "number", value, text, pos });
      pos += text.length;
      continue;
    }
    IDENTIFIER_PATTERN.lastIndex = pos;
    const identifier = IDENTIFIER_PATTERN.exec(source);
    if (identifier) {
      const text = identifier[0];
      tokens.push({ kind: "identifier", name: text.toLowerCase(), text, pos });
      pos += text.length;
      continue;
    }
    const op = OPERATORS.get(char);
    if (op === undefined) {
      const codePoint = source.codePointAt(pos) ?? 0;
      throw new ExpressionError(`Unexpected character "${String.fromCodePoint(codePoint)}"`, pos);
    }
    tokens.push({ kind: "operator", op, text: char, pos });
    pos++;
  }
  tokens.push({ kind: "end", text: "", pos: source.length });
  return tokens;
}

function describe(token: Token): string {
  return token.kind === "end" ? "end of expression" : `token "${token.text}"`;
}

/** Recursive-descent parser over a token list; one instance per parse. */
class Parser {
  #tokens: readonly Token[];
  #index = 0;
  #depth = 0;

  constructor(tokens: readonly Token[]) {
    this.#tokens = tokens;
  }

  parse(): ExpressionNode {
    const node = this.#additive();
    const token = this.#peek();
    if (token.kind !== "end") {
      throw new ExpressionError(`Unexpected ${describe(token)}`, token.pos);
    }
    return node;
  }

  #peek(): Token {
    return this.#tokens[this.#index];
  }

  #next(): Token {
    const token = this.#tokens[this.#index];
    if (token.kind !== "end") this.#index++;
    return token;
  }

  #isOperator(...ops: Operator[]): boolean {
    const token = this.#peek();
    return token.kind === "operator" && ops.includes(token.op);
  }

  // Every construct that recurses goes through here, so hostile input such as
  // "((((…" or "-----…" fails with a message instead of exhausting the stack.
  #nested<T>(pos: number, parse: () => T): T {
    if (++this.#depth > MAX_NESTING_DEPTH) {
      throw new ExpressionError(`Expression nests deeper than ${MAX_NESTING_DEPTH} levels`, pos);
    }
    try {
      return parse();
    } finally {
      this.#depth--;
    }
  }

  #additive(): ExpressionNode {
    let left = this.#multiplicative();
    while (this.#isOperator("+", "-")) {
      const token = this.#next() as Token & { kind: "operator" };
      const right = this.#multiplicative();
      left = { kind: "binary", op: token.op as "+" | "-", left, right, pos: token.pos };
    }
    return left;
  }

  #multiplicative(): ExpressionNode {
    let left = this.#unary();
    while (this.#isOperator("*", "/", "%")) {
      const token = this.#next() as Token & { kind: "operator" };
      const right = this.#unary();
      left = { kind: "binary", op: token.op as "*" | "/" | "%", left, right, pos: token.pos };
    }
    return left;
  }

  #unary(): ExpressionNode {
    if (this.#isOperator("+", "-")) {
      const token = this.#next() as Token & { kind: "operator" };
      const operand = this.#nested(token.pos, () => this.#unary());
      return { kind: "unary", op: token.op as "+" | "-", operand, pos: token.pos };
    }
    return this.#power();
  }

  #power(): ExpressionNode {
    const base = this.#primary();
    if (!this.#isOperator("^")) return base;
    const token = this.#next();
    // Recursing into #unary (not #power) makes ^ right-associative and lets the
    // exponent carry a sign: 2^3^2 = 2^9, 2^-1 = 0.5.
    const exponent = this.#nested(token.pos, () => this.#unary());
    return { kind: "binary", op: "^", left: base, right: exponent, pos: token.pos };
  }

  #primary(): ExpressionNode {
    const token = this.#next();
    switch (token.kind) {
      case "number":
        return { kind: "number", value: token.value, pos: token.pos };
      case "identifier":
        return this.#identifier(token);
      case "operator":
        if (token.op === "(") {
          const inner = this.#nested(token.pos, () => this.#additive());
          this.#close(token);
          return inner;
        }
        throw new ExpressionError(`Unexpected token "${token.text}"`, token.pos);
      case "end":
        throw new ExpressionError("Unexpected end of expression", token.pos);
    }
  }

  #identifier(token: Token & { kind: "identifier" }): ExpressionNode {
    const isCall = this.#isOperator("(");
    if (!isCall) {
      if (CONSTANTS.has(token.name)) {
        return { kind: "constant", name: token.name, pos: token.pos };
      }
      if (FUNCTIONS.has(token.name)) {
        throw new ExpressionError(
          `Function "${token.name}" needs its arguments in parentheses`,
          token.pos,
        );
      }
      throw new ExpressionError(`Unknown constant "${token.text}"`, token.pos);
    }
    const spec = FUNCTIONS.get(token.name);
    if (spec === undefined) {
      const reason = CONSTANTS.has(token.name)
        ? `"${token.text}" is a constant, not a function`
        : `Unknown function "${token.text}"`;
      throw new ExpressionError(reason, token.pos);
    }
    const open = this.#next();
    const args = this.#nested(open.pos, () => this.#arguments(open));
    if (args.length < spec.minArgs || args.length > spec.maxArgs) {
      throw new ExpressionError(
        `Function "${token.name}" expects ${arity(spec)}, got ${args.length}`,
        token.pos,
      );
    }
    return { kind: "call", name: token.name, args, pos: token.pos };
  }

  #arguments(open: Token): ExpressionNode[] {
    const args: ExpressionNode[] = [];
    if (this.#isOperator(")")) {
      this.#next();
      return args;
    }
    args.push(this.#additive());
    while (this.#isOperator(",")) {
      this.#next();
      args.push(this.#additive());
    }
    this.#close(open);
    return args;
  }

  #close(open: Token): void {
    const token = this.#next();
    if (token.kind === "operator" && token.op === ")") return;
    if (token.kind === "end") {
      throw new ExpressionError('Missing ")" to close "("', open.pos);
    }
    throw new ExpressionError(`Expected ")" but found ${describe(token)}`, token.pos);
  }
}

function arity(spec: FunctionSpec): string {
  const noun = (n: number) => (n === 1 ? "argument" : "arguments");
  if (spec.minArgs === spec.maxArgs) return `${spec.minArgs} ${noun(spec.minArgs)}`;
  return `at least ${spec.minArgs} ${noun(spec.minArgs)}`;
}

/**
 * Parse `source` into a syntax tree without evaluating it.
 *
 * @throws {ExpressionError} on empty or overlong input, an unknown name, a
 * wrong argument count, nesting beyond {@link MAX_NESTING_DEPTH} or any syntax
 * error; the message names the 0-based position.
 *
 * @example
 * ```ts
 * parse("1 + 2").kind; // "binary"
 * ```
 */
export function parse(source: string): ExpressionNode {
  if (source.length > MAX_EXPRESSION_LENGTH) {
    throw new ExpressionError(
      `Expression is ${source.length} characters long; the limit is ${MAX_EXPRESSION_LENGTH}`,
    );
  }
  if (source.trim() === "") throw new ExpressionError("Expression is empty");
  return new Parser(tokenize(source)).parse();
}

/**
 * Evaluate a tree from {@link parse}. `%` is the remainder with the sign of
 * the dividend (`-7 % 3` is `-1`), trigonometry works in radians, and every
 * intermediate value must be a finite number.
 *
 * @throws {ExpressionError} on division or remainder by zero, a function
 * outside its domain (`sqrt(-1)`, `ln(0)`) or an overflow.
 *
 * @example
 * ```ts
 * evaluateTree(parse("2^10")); // 1024
 * ```
 */
export function evaluateTree(node: ExpressionNode): number {
  switch (node.kind) {
    case "number":
      return node.value;
    case "constant":
      return lookup(CONSTANTS, node);
    case "unary": {
      const value = evaluateTree(node.operand);
      return node.op === "-" ? -value : value;
    }
    case "binary":
      return evaluateBinary(node);
    case "call": {
      const args = node.args.map(evaluateTree);
      const result = lookup(FUNCTIONS, node).apply(args);
      if (!Number.isFinite(result)) {
        throw new ExpressionError(
          `Function "${node.name}" is not defined for ${args.map(format).join(", ")}`,
          node.pos,
        );
      }
      return result;
    }
  }
}

// A hand-built tree may name something parse() would have refused.
function lookup<T>(table: ReadonlyMap<string, T>, node: { name: string; pos: number }): T {
  const entry = table.get(node.name);
  if (entry === undefined) throw new ExpressionError(`Unknown name "${node.name}"`, node.pos);
  return entry;
}

function evaluateBinary(node: ExpressionNode & { kind: "binary" }): number {
  const left = evaluateTree(node.left);
  const right = evaluateTree(node.right);
  if ((node.op === "/" || node.op === "%") && right === 0) {
    throw new ExpressionError("Division by zero", node.pos);
  }
  let result: number;
  switch (node.op) {
    case "+":
      result = left + right;
      break;
    case "-":
      result = left - right;
      break;
    case "*":
      result = left * right;
      break;
    case "/":
      result = left / right;
      break;
    case "%":
      result = left % right;
      break;
    case "^":
      result = Math.pow(left, right);
      break;
  }
  if (!Number.isFinite(result)) {
    throw new ExpressionError(
      `Result is not a finite number (${format(left)} ${node.op} ${format(right)})`,
      node.pos,
    );
  }
  return result;
}

function format(value: number): string {
  return Object.is(value, -0) ? "0" : String(value);
}

/**
 * Parse and evaluate `source` in one step.
 *
 * @throws {ExpressionError} see {@link parse} and {@link evaluateTree}.
 *
 * @example
 * ```ts
 * evaluate("-2^2 + sqrt(16) × 3"); // 8
 * ```
 */
export function evaluate(source: string): number {
  return evaluateTree(parse(source));
}

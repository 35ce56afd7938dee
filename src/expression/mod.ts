/**
 * Arithmetic expressions (the `calculate` tool's domain): tokenizer,
 * recursive-descent parser and evaluator — no `eval`, no `Function`.
 *
 * @module
 */
export {
  evaluate,
  evaluateTree,
  ExpressionError,
  type ExpressionNode,
  MAX_EXPRESSION_LENGTH,
  MAX_NESTING_DEPTH,
  type Operator,
  parse,
  type Token,
  tokenize,
} from "./expression.ts";

/**
 * A `deno lint` plugin (registered in deno.json, so it runs in `deno task check`): no function in
 * `src/` may span more than {@link MAX_FUNCTION_LINES} lines unless a comment just before it (or on
 * its first line) says why it must stay whole, with the words `kept whole` and a reason:
 *
 * ```ts ignore
 * // Kept whole: the group commit's state machine reads top to bottom; split, its invariants
 * // would be spread over five closures sharing the same mutable queue.
 * function createGroupCommit() { … }
 * ```
 *
 * A qualifier may stand between the words and the colon (`Kept whole for now: <reason>`).
 * The comment may be a line comment or part of the JSDoc block right above the function (or the
 * declaration, property or method holding it), or stand on the function's first line.
 *
 * A function's span is from its first line to its last, nested functions included: a 400-line
 * closure made of small inner functions is still one 400-line unit to read. Function
 * declarations, function expressions, arrow functions and methods all count.
 *
 * @module
 */

/** The longest a function in `src/` may be without a comment saying why it stays whole. */
export const MAX_FUNCTION_LINES = 120;

/** The words a justifying comment must contain (case-insensitive), followed by a reason. */
const MARKER = /kept whole\b[^:—–\n]{0,30}[:—–]\s*\S/i;

const ROOT = new URL("../", import.meta.url).pathname;

/**
 * Whether a linted file is in scope: under this repository's src/; for a file outside the
 * repository (another checkout linted with this plugin), under any folder named src/.
 */
function inScope(filename: string): boolean {
  const normalized = filename.replaceAll("\\", "/");
  if (normalized.startsWith(ROOT)) return normalized.slice(ROOT.length).startsWith("src/");
  return normalized.startsWith("src/") || normalized.includes("/src/");
}

type FunctionNode =
  | Deno.lint.FunctionDeclaration
  | Deno.lint.FunctionExpression
  | Deno.lint.ArrowFunctionExpression;

/** The node whose leading comments speak for `fn`: the declaration or property it stands in. */
function holder(ctx: Deno.lint.RuleContext, fn: FunctionNode): Deno.lint.Node[] {
  const nodes: Deno.lint.Node[] = [fn];
  for (const ancestor of ctx.sourceCode.getAncestors(fn).reverse()) {
    switch (ancestor.type) {
      case "VariableDeclarator":
      case "VariableDeclaration":
      case "ExportNamedDeclaration":
      case "ExportDefaultDeclaration":
      case "MethodDefinition":
      case "Property":
      case "PropertyDefinition":
        nodes.push(ancestor);
        continue;
    }
    break;
  }
  return nodes;
}

function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/** The comment lines standing directly above the line `offset` is on, and that line itself. */
function leadingLines(text: string, offset: number): string[] {
  const lines = text.slice(0, offset).split("\n");
  const own = lines.pop()! + text.slice(offset).split("\n", 1)[0];
  const above: string[] = [];
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i].trim();
    if (!/^(\/\/|\/\*|\*)/.test(line)) break;
    above.push(line);
  }
  return [...above.reverse(), own];
}

function justified(ctx: Deno.lint.RuleContext, fn: FunctionNode): boolean {
  const text = ctx.sourceCode.text;
  for (const node of holder(ctx, fn)) {
    // Comment lines right above the function (or the declaration holding it) and its first line.
    if (MARKER.test(leadingLines(text, node.range[0]).join("\n"))) return true;
  }
  return false;
}

/** The function's own name, else the variable, property or method it is assigned to. */
function nameOf(ctx: Deno.lint.RuleContext, fn: FunctionNode): string {
  if (fn.type !== "ArrowFunctionExpression" && fn.id) return fn.id.name;
  for (const node of holder(ctx, fn)) {
    if (node.type === "VariableDeclarator" && node.id.type === "Identifier") return node.id.name;
    if (
      (node.type === "Property" || node.type === "MethodDefinition" ||
        node.type === "PropertyDefinition") && node.key.type === "Identifier"
    ) return node.key.name;
  }
  return "(anonymous)";
}

function check(ctx: Deno.lint.RuleContext, fn: FunctionNode): void {
  if (!inScope(ctx.filename)) return;
  const text = ctx.sourceCode.text;
  const lines = lineOf(text, fn.range[1]) - lineOf(text, fn.range[0]) + 1;
  if (lines <= MAX_FUNCTION_LINES || justified(ctx, fn)) return;
  const name = nameOf(ctx, fn);
  ctx.report({
    range: [fn.range[0], Math.min(fn.range[1], fn.range[0] + 1)],
    message: `Function ${name} spans ${lines} lines (more than ${MAX_FUNCTION_LINES})`,
    hint:
      "Split it, or say why it must stay whole in a comment before it: `// Kept whole: <reason>`",
  });
}

const plugin: Deno.lint.Plugin = {
  name: "warden",
  rules: {
    "max-function-lines": {
      create(ctx) {
        return {
          FunctionDeclaration: (node) => check(ctx, node),
          FunctionExpression: (node) => check(ctx, node),
          ArrowFunctionExpression: (node) => check(ctx, node),
        };
      },
    },
  },
};

export default plugin;

/**
 * The import-direction check `deno task check` runs (issue 8): every import in
 * `src/` and `main.ts` is parsed and held to the layout the README's
 * Architecture section writes down.
 *
 * - Imports go downward in the layer order of the README's `<!-- import-layers -->`
 *   block (the one place that order is written); folders in one `{…}` group are
 *   siblings and import neither each other nor anything above them.
 * - Across folders only through the folder's `mod.ts`; a `_*.ts` file is private
 *   to its own folder.
 * - No cycles between folders (checked on the graph itself, allowances included).
 * - Only the folders in {@link HONO_IMPORTERS} import Hono; only the MCP adapter
 *   folders in {@link SDK_IMPORTERS} import the v2 MCP SDK; nothing in `src/`
 *   imports the v1 SDK (a test-only client) or anything outside `src/`.
 * - Every folder of `src/` is in the layer order, and every name there exists.
 *
 * Usage: `deno run --allow-read .ci/check_imports.ts [ROOT]` — prints one line
 * per violation, naming the file and the import, and exits 1 when there is any.
 *
 * @module
 */

/** The folders allowed to import Hono, each with the reason. */
export const HONO_IMPORTERS: Readonly<Record<string, string>> = {
  http: "the HTTP edge: the Hono app, middleware and routes",
  oauth: "its authorization-server routes are a Hono sub-app that src/http/ mounts",
  dashboard: "its pages and feed are a Hono sub-app that src/http/ mounts",
};

/** The folders allowed to import the v2 MCP SDK (the MCP adapters), each with the reason. */
export const SDK_IMPORTERS: Readonly<Record<string, string>> = {
  mcp: "the MCP server factory and transports",
  tools: "tool adapters describe their results in the SDK's types",
  gateway: "the v2 client that connects upstreams",
};

/** One import the rules would refuse but the tree keeps for now, with why. */
export interface Allowance {
  /** Importing file, relative to the root (`src/x/y.ts`). */
  readonly file: string;
  /** Imported path relative to the root, or the bare specifier. */
  readonly target: string;
  /** The rule it is excused from. */
  readonly rule: Rule;
  readonly reason: string;
}

/** The imports the current tree is excused from one rule for (keep this list short). */
export const ALLOWED: readonly Allowance[] = [];

/** The rule an import breaks. */
export type Rule =
  | "layer"
  | "mod"
  | "private"
  | "cycle"
  | "hono"
  | "sdk"
  | "outside"
  | "unlisted";

/** One broken rule, naming the file and the import. */
export interface Violation {
  readonly file: string;
  readonly specifier: string;
  readonly rule: Rule;
  readonly message: string;
}

/** The layer order: one array per layer, top first; a layer of several names is a sibling group. */
export type Layers = readonly (readonly string[])[];

const MARKER = "<!-- import-layers -->";

/**
 * Reads the layer order from the README: the first fenced block after the
 * `<!-- import-layers -->` marker, names joined by `→`, sibling groups in `{…}`.
 */
export function parseLayers(readme: string): Layers {
  const at = readme.indexOf(MARKER);
  if (at < 0) throw new Error(`README.md has no ${MARKER} block giving the layer order`);
  const block = /```[a-z]*\n([\s\S]*?)```/.exec(readme.slice(at));
  if (!block) throw new Error(`README.md's ${MARKER} is not followed by a fenced block`);
  const layers = block[1].split("→").map((part) =>
    part.trim().replace(/^\{|\}$/g, "").split(",").map((n) => n.trim()).filter((n) => n !== "")
  );
  if (layers.some((l) => l.length === 0)) {
    throw new Error(`README.md's layer order has an empty step: ${JSON.stringify(block[1])}`);
  }
  return layers;
}

// ---------------------------------------------------------------------------
// Import extraction: a small lexer, so imports inside comments, strings,
// templates and regular expressions are never mistaken for real ones.

type Token =
  | { kind: "word"; text: string }
  | { kind: "string"; text: string }
  | { kind: "punct"; text: string }
  | { kind: "opaque" };

const KEYWORDS_BEFORE_EXPRESSION = new Set([
  "return",
  "typeof",
  "case",
  "in",
  "of",
  "void",
  "delete",
  "throw",
  "new",
  "await",
  "yield",
  "else",
  "do",
  "instanceof",
]);

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  /** Brace depth at which each open template's `${` started. */
  const templates: number[] = [];
  let depth = 0;
  let i = 0;
  const regexAllowed = () => {
    const prev = out.at(-1);
    if (!prev) return true;
    if (prev.kind === "word") return KEYWORDS_BEFORE_EXPRESSION.has(prev.text);
    if (prev.kind === "punct") return !")]}".includes(prev.text);
    return false;
  };
  /** Scans a template body from `i` (after ` or }) to its end or to a `${`. */
  const templateBody = () => {
    while (i < src.length) {
      const c = src[i];
      if (c === "\\") i += 2;
      else if (c === "`") {
        i++;
        return;
      } else if (c === "$" && src[i + 1] === "{") {
        i += 2;
        templates.push(depth);
        depth++;
        return;
      } else i++;
    }
  };
  while (i < src.length) {
    const c = src[i];
    if (c === "/" && src[i + 1] === "/") {
      while (i < src.length && src[i] !== "\n") i++;
    } else if (c === "/" && src[i + 1] === "*") {
      const end = src.indexOf("*/", i + 2);
      i = end < 0 ? src.length : end + 2;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      let text = "";
      while (j < src.length && src[j] !== c && src[j] !== "\n") {
        if (src[j] === "\\") {
          text += src[j + 1] ?? "";
          j += 2;
        } else text += src[j++];
      }
      out.push({ kind: "string", text });
      i = j + 1;
    } else if (c === "`") {
      i++;
      templateBody();
      out.push({ kind: "opaque" });
    } else if (c === "/" && regexAllowed()) {
      let j = i + 1;
      let inClass = false;
      while (j < src.length && src[j] !== "\n") {
        if (src[j] === "\\") j++;
        else if (src[j] === "[") inClass = true;
        else if (src[j] === "]") inClass = false;
        else if (src[j] === "/" && !inClass) break;
        j++;
      }
      j++;
      while (j < src.length && /[a-z]/.test(src[j])) j++;
      out.push({ kind: "opaque" });
      i = j;
    } else if (/[A-Za-z_$]/.test(c)) {
      let j = i + 1;
      while (j < src.length && /[\w$]/.test(src[j])) j++;
      out.push({ kind: "word", text: src.slice(i, j) });
      i = j;
    } else if (/[0-9]/.test(c)) {
      let j = i + 1;
      while (j < src.length && /[\w.]/.test(src[j])) j++;
      out.push({ kind: "opaque" });
      i = j;
    } else if (/\s/.test(c)) {
      i++;
    } else {
      if (c === "{") depth++;
      if (c === "}") {
        depth--;
        if (templates.length > 0 && templates.at(-1) === depth) {
          // The end of a `${…}`: back into the template's text.
          templates.pop();
          i++;
          templateBody();
          continue;
        }
      }
      out.push({ kind: "punct", text: c });
      i++;
    }
  }
  return out;
}

/**
 * The module specifiers `source` imports or re-exports: static imports
 * (`import type` too), side-effect imports, `export … from`, and dynamic
 * `import("…")` with a literal.
 */
export function importsOf(source: string): string[] {
  const t = tokenize(source);
  const found: string[] = [];
  const isWord = (k: number, text: string) =>
    t[k]?.kind === "word" && (t[k] as { text: string }).text === text;
  const isPunct = (k: number, text: string) =>
    t[k]?.kind === "punct" && (t[k] as { text: string }).text === text;
  /** From a clause start, the specifier after `from`, if the clause is an import/export clause. */
  const fromClause = (k: number): string | undefined => {
    for (; k < t.length; k++) {
      const tok = t[k];
      if (tok.kind === "word" && tok.text === "from" && t[k + 1]?.kind === "string") {
        return (t[k + 1] as { text: string }).text;
      }
      if (tok.kind === "punct" && !"{},*".includes(tok.text)) return undefined;
      if (tok.kind !== "word" && tok.kind !== "punct") return undefined;
    }
    return undefined;
  };
  for (let k = 0; k < t.length; k++) {
    if (isPunct(k - 1, ".")) continue;
    if (isWord(k, "import")) {
      if (isPunct(k + 1, "(") && t[k + 2]?.kind === "string") {
        found.push((t[k + 2] as { text: string }).text);
      } else if (t[k + 1]?.kind === "string") {
        found.push((t[k + 1] as { text: string }).text);
      } else {
        const spec = fromClause(k + 1);
        if (spec !== undefined) found.push(spec);
      }
    } else if (isWord(k, "export")) {
      const next = isWord(k + 1, "type") ? k + 2 : k + 1;
      if (isPunct(next, "{") || isPunct(next, "*")) {
        const spec = fromClause(next);
        if (spec !== undefined) found.push(spec);
      }
    }
  }
  return found;
}

// ---------------------------------------------------------------------------
// The rules.

/** The unit a root-relative path belongs to: `main.ts`, a top-level `x.ts` of src/, or a folder. */
function unitOf(path: string): string | undefined {
  if (path === "main.ts") return "main.ts";
  const m = /^src\/([^/]+)(\/.*)?$/.exec(path);
  if (!m) return undefined;
  return m[1];
}

function dirOf(path: string): string {
  return path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : "";
}

/** Joins a relative specifier onto the importing file's folder (root-relative, normalised). */
function resolveRelative(from: string, specifier: string): string {
  const parts = dirOf(from) === "" ? [] : dirOf(from).split("/");
  for (const seg of specifier.split("/")) {
    if (seg === "." || seg === "") continue;
    if (seg === "..") parts.pop();
    else parts.push(seg);
  }
  return parts.join("/");
}

function isHono(spec: string): boolean {
  return /^(npm:\/?)?hono(@[^/]*)?(\/|$)/.test(spec);
}

function sdkPackage(spec: string): string | undefined {
  const m = /^(?:npm:\/?)?@modelcontextprotocol\/([a-z-]+)/.exec(spec);
  return m?.[1];
}

async function sourceFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(`${root}/${dir}`)) {
      const rel = `${dir}/${e.name}`;
      if (e.isDirectory) await walk(rel);
      else if (e.isFile && /\.(ts|tsx|js|mjs)$/.test(e.name)) out.push(rel);
    }
  };
  await walk("src");
  const main = await Deno.stat(`${root}/main.ts`).then(() => true, () => false);
  if (main) out.push("main.ts");
  return out.sort();
}

/** The strongly connected groups of more than one unit (Tarjan). */
function cycles(graph: Map<string, Set<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let n = 0;
  const visit = (v: string) => {
    index.set(v, n);
    low.set(v, n++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const group: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        group.push(w);
      } while (w !== v);
      if (group.length > 1) found.push(group.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return found;
}

/** Options of {@link checkImports}. */
export interface CheckOptions {
  /** Imports excused from one rule; {@link ALLOWED} by default. */
  readonly allowed?: readonly Allowance[];
}

/**
 * Checks every import under `root` (a checkout: README.md, main.ts, src/)
 * and returns what breaks the rules, sorted by file.
 */
export async function checkImports(
  root: string,
  options: CheckOptions = {},
): Promise<Violation[]> {
  const allowed = options.allowed ?? ALLOWED;
  const layers = parseLayers(await Deno.readTextFile(`${root}/README.md`));
  const rank = new Map<string, number>();
  layers.forEach((layer, r) => layer.forEach((name) => rank.set(name, r)));
  const files = await sourceFiles(root);
  const violations: Violation[] = [];
  const excused = (file: string, target: string, rule: Rule) =>
    allowed.some((a) => a.file === file && a.target === target && a.rule === rule);
  const seen = new Set<string>();
  const report = (file: string, specifier: string, target: string, rule: Rule, message: string) => {
    // `import` and `import type` of one file are one violation, not two.
    const key = `${file}\0${target}\0${rule}`;
    if (excused(file, target, rule) || seen.has(key)) return;
    seen.add(key);
    violations.push({ file, specifier, rule, message });
  };

  const units = new Set(files.map((f) => unitOf(f)!));
  for (const u of [...units].sort()) {
    if (!rank.has(u)) {
      const file = files.find((f) => unitOf(f) === u)!;
      const name = u.endsWith(".ts") ? `src/${u}` : `src/${u}/`;
      report(
        file,
        "",
        u,
        "unlisted",
        `${name} is not in the layer order of README.md (${MARKER}): add it where its imports put it`,
      );
    }
  }
  for (const name of rank.keys()) {
    if (!units.has(name)) {
      violations.push({
        file: "README.md",
        specifier: name,
        rule: "unlisted",
        message: `README.md's layer order names ${name}, which src/ does not have`,
      });
    }
  }

  const graph = new Map<string, Set<string>>();
  /** One importing file per unit edge, to name in a cycle report. */
  const witness = new Map<string, string>();
  for (const file of files) {
    const from = unitOf(file)!;
    const source = await Deno.readTextFile(`${root}/${file}`);
    for (const spec of importsOf(source)) {
      if (isHono(spec) && !Object.hasOwn(HONO_IMPORTERS, from)) {
        report(
          file,
          spec,
          spec,
          "hono",
          `${file} imports Hono (${spec}); only ${
            Object.keys(HONO_IMPORTERS).map((u) => `src/${u}/`).join(", ")
          } may`,
        );
      }
      const sdk = sdkPackage(spec);
      if (sdk === "sdk" || (sdk !== undefined && !["server", "client", "core"].includes(sdk))) {
        report(
          file,
          spec,
          spec,
          "sdk",
          `${file} imports ${spec}: the v1 SDK and the reference servers are test-only`,
        );
      } else if (sdk !== undefined && !Object.hasOwn(SDK_IMPORTERS, from)) {
        report(
          file,
          spec,
          spec,
          "sdk",
          `${file} imports the MCP SDK (${spec}); only the MCP adapters ${
            Object.keys(SDK_IMPORTERS).map((u) => `src/${u}/`).join(", ")
          } may`,
        );
      }
      if (!spec.startsWith("./") && !spec.startsWith("../")) continue;
      const target = resolveRelative(file, spec);
      const to = unitOf(target);
      if (to === undefined) {
        report(file, spec, target, "outside", `${file} imports ${target}, outside src/`);
        continue;
      }
      const base = target.slice(target.lastIndexOf("/") + 1);
      if (base.startsWith("_") && dirOf(target) !== dirOf(file)) {
        report(
          file,
          spec,
          target,
          "private",
          `${file} imports ${target}, private to ${dirOf(target)}/ (files named _*.ts are)`,
        );
      }
      if (to === from) continue;
      if (!to.endsWith(".ts") && target !== `src/${to}/mod.ts`) {
        report(
          file,
          spec,
          target,
          "mod",
          `${file} imports ${target}; across folders import src/${to}/mod.ts`,
        );
      }
      if (!excused(file, target, "cycle")) {
        if (!graph.has(from)) graph.set(from, new Set());
        graph.get(from)!.add(to);
        if (!witness.has(`${from}→${to}`)) witness.set(`${from}→${to}`, `${file} → ${target}`);
      }
      const rf = rank.get(from);
      const rt = rank.get(to);
      if (rf !== undefined && rt !== undefined && rf >= rt) {
        const how = rf === rt ? "a sibling in the same layer" : "a layer above it";
        report(
          file,
          spec,
          target,
          "layer",
          `${file} imports ${target}: ${to} is ${how} (${from} may import only what the README's layer order puts below it)`,
        );
      }
    }
  }
  for (const group of cycles(graph)) {
    const members = new Set(group);
    const edges = [...witness.entries()]
      .filter(([k]) => {
        const [a, b] = k.split("→");
        return members.has(a) && members.has(b);
      })
      .map(([, v]) => v);
    violations.push({
      file: edges[0].split(" → ")[0],
      specifier: "",
      rule: "cycle",
      message: `folders import each other in a cycle (${group.join(", ")}): ${edges.join("; ")}`,
    });
  }
  return violations.sort((a, b) => a.file.localeCompare(b.file));
}

if (import.meta.main) {
  const root = Deno.args[0] ?? new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const found = await checkImports(root);
  for (const v of found) console.error(`${v.file}: [${v.rule}] ${v.message}`);
  if (found.length > 0) {
    console.error(`check_imports: ${found.length} import(s) break the layout (README.md)`);
    Deno.exit(1);
  }
  console.log("check_imports: ok");
}

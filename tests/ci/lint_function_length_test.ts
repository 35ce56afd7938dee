/**
 * The function-length lint rule (issue 8): a function in src/ over 120 lines fails `deno lint`
 * unless a comment right above it says why it must stay whole; shorter ones, justified ones and
 * files outside src/ pass. The last test runs the real `deno lint` over a temp tree.
 */
import assert from "node:assert/strict";
import plugin, { MAX_FUNCTION_LINES } from "../../.ci/lint_function_length.ts";

const PLUGIN = new URL("../../.ci/lint_function_length.ts", import.meta.url).pathname;

/** A function `name` whose span (first line to last) is exactly `lines` lines. */
function fn(name: string, lines: number, indent = ""): string {
  const body = Array.from({ length: lines - 2 }, (_, i) => `${indent}  const v${i} = ${i};`);
  return [`${indent}function ${name}() {`, ...body, `${indent}}`].join("\n");
}

function lint(file: string, source: string): Deno.lint.Diagnostic[] {
  return Deno.lint.runPlugin(plugin, file, source);
}

Deno.test("max-function-lines refuses a 121-line function in src/ and names it", () => {
  const found = lint("src/a.ts", fn("tooLong", MAX_FUNCTION_LINES + 1));
  assert.equal(found.length, 1);
  assert.equal(found[0].id, "warden/max-function-lines");
  assert.match(found[0].message, /tooLong spans 121 lines/);
});

Deno.test("max-function-lines passes a 120-line function and files outside src/", () => {
  assert.deepEqual(lint("src/a.ts", fn("justRight", MAX_FUNCTION_LINES)), []);
  assert.deepEqual(lint("tests/a_test.ts", fn("longTest", 300)), []);
  assert.deepEqual(lint("main.tsx", fn("elsewhere", 300)), []);
});

Deno.test("max-function-lines counts arrows, methods and nested functions by their whole span", () => {
  const arrow = `export const big = () => {\n${fn("inner", 60)}\n${fn("other", 60)}\n};`;
  const found = lint("src/a.ts", arrow);
  assert.equal(found.length, 1, "the arrow holding two 60-line functions is 122 lines");
  assert.match(found[0].message, /big spans 122 lines/);
  const method = `class C {\n  method() {\n${fn("inner", 125, "    ")}\n  }\n}`;
  const names = lint("src/a.ts", method).map((d) => d.message.split(" ")[1]).sort();
  assert.deepEqual(names, ["inner", "method"]);
});

Deno.test("max-function-lines accepts a 'Kept whole: <reason>' comment above or on the first line", () => {
  const line = `// Kept whole: one state machine.\n${fn("a", 200)}`;
  const jsdoc =
    `/**\n * Does a thing.\n *\n * Kept whole — the phases share one queue.\n */\nexport ${
      fn("b", 200)
    }`;
  const onFirst = fn("c", 200).replace("{", "{ // kept whole: reads top to bottom");
  const holder = `/** Kept whole: a factory of closures. */\nexport const d = () => {\n${
    fn("e", 10)
  }\n${"  x();\n".repeat(150)}};`;
  for (const source of [line, jsdoc, onFirst, holder]) {
    assert.deepEqual(lint("src/a.ts", source), []);
  }
});

Deno.test("max-function-lines wants a reason after the marker and a comment directly above", () => {
  const bare = `// kept whole\n${fn("a", 200)}`;
  const apart = `// Kept whole: stale reason.\nconst unrelated = 1;\n${fn("b", 200)}`;
  for (const source of [bare, apart]) assert.equal(lint("src/a.ts", source).length, 1, source);
});

Deno.test("deno lint with the plugin fails on a long function in a temp tree's src/", async () => {
  const dir = await Deno.makeTempDir({ prefix: "warden-fnlen-" });
  try {
    await Deno.mkdir(`${dir}/src`);
    await Deno.writeTextFile(
      `${dir}/deno.json`,
      JSON.stringify({ lint: { plugins: [PLUGIN], rules: { tags: [] } } }),
    );
    await Deno.writeTextFile(`${dir}/src/long.ts`, `export ${fn("long", 130)}\n`);
    await Deno.writeTextFile(`${dir}/src/ok.ts`, `export ${fn("ok", 100)}\n`);
    const lintIn = (path: string) =>
      new Deno.Command(Deno.execPath(), {
        args: ["lint", "--config", `${dir}/deno.json`, path],
        cwd: dir,
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1" },
      }).output();
    const bad = await lintIn("src/long.ts");
    const text = new TextDecoder().decode(bad.stdout) + new TextDecoder().decode(bad.stderr);
    assert.equal(bad.code, 1, text);
    assert.match(text, /warden\/max-function-lines/);
    assert.match(text, /long spans 130 lines/);
    const good = await lintIn("src/ok.ts");
    assert.equal(good.code, 0, new TextDecoder().decode(good.stderr));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

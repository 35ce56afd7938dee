/** The import-direction check (issue 8): it passes on the tree and fails, naming the file, on a wrong import. */
import assert from "node:assert/strict";
import {
  ALLOWED,
  checkImports,
  importsOf,
  parseLayers,
  type Violation,
} from "../../.ci/check_imports.ts";

const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
const SCRIPT = new URL("../../.ci/check_imports.ts", import.meta.url).pathname;

const README = [
  "# t",
  "<!-- import-layers -->",
  "```text",
  "main.ts → http → {alpha, beta} → mcp → low → log.ts",
  "```",
].join("\n");

/** A temp checkout: README with the layer order above plus `files` (path → source). */
async function tree(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "warden-imports-" });
  const all: Record<string, string> = {
    "README.md": README,
    "main.ts": 'import { x } from "./src/http/mod.ts";\n',
    "src/http/mod.ts": 'import { Hono } from "hono";\nimport { a } from "../alpha/mod.ts";\n',
    "src/alpha/mod.ts": 'export * from "./_impl.ts";\n',
    "src/alpha/_impl.ts": 'import { m } from "../mcp/mod.ts";\n',
    "src/beta/mod.ts": 'import { l } from "../low/mod.ts";\n',
    "src/mcp/mod.ts": 'import { McpServer } from "@modelcontextprotocol/server";\n',
    "src/low/mod.ts": 'import { log } from "../log.ts";\n',
    "src/log.ts": "export const log = 1;\n",
    ...files,
  };
  for (const [path, text] of Object.entries(all)) {
    await Deno.mkdir(`${dir}/${path.slice(0, path.lastIndexOf("/") + 1) || "."}`, {
      recursive: true,
    });
    await Deno.writeTextFile(`${dir}/${path}`, text);
  }
  return dir;
}

async function violationsOf(files: Record<string, string>): Promise<Violation[]> {
  const dir = await tree(files);
  try {
    return await checkImports(dir, { allowed: [] });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function only(found: Violation[], rule: string, file: string): void {
  assert.deepEqual(
    found.map((v) => [v.rule, v.file]),
    [[rule, file]],
    JSON.stringify(found, null, 1),
  );
}

Deno.test("checkImports() passes on this repository's tree", async () => {
  const found = await checkImports(ROOT);
  assert.deepEqual(found, [], found.map((v) => `${v.file}: ${v.message}`).join("\n"));
});

Deno.test("checkImports() passes on a well-layered temp tree", async () => {
  assert.deepEqual(await violationsOf({}), []);
});

Deno.test("checkImports() refuses an upward import and the cycle it makes, naming the file", async () => {
  const found = await violationsOf({
    "src/low/mod.ts": 'import { log } from "../log.ts";\nimport type { M } from "../mcp/mod.ts";\n',
    "src/mcp/mod.ts": 'import { l } from "../low/mod.ts";\n',
  });
  assert.deepEqual(found.map((v) => v.rule).sort(), ["cycle", "layer"]);
  const layer = found.find((v) => v.rule === "layer")!;
  assert.equal(layer.file, "src/low/mod.ts");
  assert.match(layer.message, /src\/low\/mod\.ts imports src\/mcp\/mod\.ts: mcp is a layer above/);
  assert.match(found.find((v) => v.rule === "cycle")!.message, /low, mcp/);
});

Deno.test("checkImports() keeps src/app.ts and src/app/ apart: the file above, the folder through its mod.ts", async () => {
  // The composition root (src/app.ts) and its steps (src/app/) share a name but are two layers.
  const layered = {
    "README.md": README.replace("main.ts → http", "main.ts → app.ts → app → http"),
    "main.ts": 'import { createApp } from "./src/app.ts";\n',
    "src/app.ts": 'import { step } from "./app/mod.ts";\nimport { x } from "./http/mod.ts";\n',
    "src/app/mod.ts": 'export * from "./step.ts";\n',
    "src/app/step.ts": 'import { x } from "../http/mod.ts";\n',
  };
  assert.deepEqual(await violationsOf(layered), []);
  only(
    await violationsOf({ ...layered, "src/app.ts": 'import { step } from "./app/step.ts";\n' }),
    "mod",
    "src/app.ts",
  );
  const upward = await violationsOf({
    ...layered,
    "src/app/step.ts": 'import type { App } from "../app.ts";\n',
  });
  assert.deepEqual(upward.map((v) => [v.rule, v.file]).sort(), [
    ["cycle", "src/app.ts"],
    ["layer", "src/app/step.ts"],
  ]);
});

Deno.test("checkImports() refuses an import between siblings of one layer", async () => {
  const found = await violationsOf({ "src/beta/mod.ts": 'import { a } from "../alpha/mod.ts";\n' });
  only(found, "layer", "src/beta/mod.ts");
  assert.match(found[0].message, /sibling/);
});

Deno.test("checkImports() refuses a cross-folder import not through mod.ts, and a private _ file", async () => {
  only(
    await violationsOf({ "src/beta/mod.ts": 'export { l } from "../low/impl.ts";\n' }),
    "mod",
    "src/beta/mod.ts",
  );
  const found = await violationsOf({
    "src/http/mod.ts": 'import { Hono } from "hono";\nimport { a } from "../alpha/_impl.ts";\n',
  });
  assert.deepEqual(found.map((v) => [v.rule, v.file]).sort(), [
    ["mod", "src/http/mod.ts"],
    ["private", "src/http/mod.ts"],
  ]);
});

Deno.test("checkImports() refuses Hono outside src/http/ and the MCP SDK outside the adapters", async () => {
  only(
    await violationsOf({ "src/low/mod.ts": 'import { Hono } from "hono";\n' }),
    "hono",
    "src/low/mod.ts",
  );
  only(
    await violationsOf({ "src/beta/mod.ts": 'import type { Tool } from "npm:hono@4/utils";\n' }),
    "hono",
    "src/beta/mod.ts",
  );
  only(
    await violationsOf({
      "src/low/mod.ts": 'const m = await import("@modelcontextprotocol/core");\n',
    }),
    "sdk",
    "src/low/mod.ts",
  );
  // The v1 SDK is a test-only client, even in an adapter folder.
  only(
    await violationsOf({
      "src/mcp/mod.ts": 'import { Client } from "@modelcontextprotocol/sdk/client/index.js";\n',
    }),
    "sdk",
    "src/mcp/mod.ts",
  );
});

Deno.test("checkImports() refuses a folder the README's order does not list, and a name it lists that is gone", async () => {
  const found = await violationsOf({ "src/stray/mod.ts": "export const s = 1;\n" });
  only(found, "unlisted", "src/stray/mod.ts");
  assert.match(found[0].message, /src\/stray\/ is not in the layer order/);
  const dir = await tree({});
  try {
    await Deno.remove(`${dir}/src/beta`, { recursive: true });
    only(await checkImports(dir, { allowed: [] }), "unlisted", "README.md");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkImports() excuses exactly the allowed import and rule", async () => {
  const files = { "src/low/mod.ts": 'import { Hono } from "hono";\n' };
  const dir = await tree(files);
  try {
    const allowed = [{
      file: "src/low/mod.ts",
      target: "hono",
      rule: "hono" as const,
      reason: "t",
    }];
    assert.deepEqual(await checkImports(dir, { allowed }), []);
    const other = [{ ...allowed[0], rule: "sdk" as const }];
    only(await checkImports(dir, { allowed: other }), "hono", "src/low/mod.ts");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("every allowance gives a reason and is still needed", async () => {
  for (const a of ALLOWED) {
    assert.ok(a.reason.length > 10, JSON.stringify(a));
    const without = await checkImports(ROOT, { allowed: ALLOWED.filter((x) => x !== a) });
    assert.ok(
      without.some((v) => v.file === a.file && v.rule === a.rule),
      `allowance no longer needed: ${JSON.stringify(a)}`,
    );
  }
});

Deno.test("the check run as a script exits 1 and names the file of a wrong import", async () => {
  const dir = await tree({ "src/log.ts": 'import { x } from "./http/mod.ts";\n' });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", SCRIPT, dir],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 1, stderr);
    assert.match(stderr, /^src\/log\.ts: \[layer\] src\/log\.ts imports src\/http\/mod\.ts/m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("importsOf() finds static, type, re-export, side-effect and dynamic imports only in code", () => {
  const src = [
    "// import { no } from './comment.ts';",
    "/* export * from './block.ts'; */",
    "const s = \"import { no } from './string.ts'\";",
    "const t = `import x from './template.ts' ${await import('./in-expr.ts')} end`;",
    "const r = /import { no } from '.\\/regex.ts'/;",
    'import {\n  a,\n  type B,\n} from "./multi.ts";',
    'import type { C } from "./type.ts";',
    'import D, * as E from "./default.ts";',
    'import "./side.ts";',
    'export * as F from "./star.ts";',
    'export type { G } from "./retype.ts";',
    "export { h };",
    "export const i = 1;",
    'const j = await import("./dynamic.ts");',
    "obj.import('./member.ts');",
  ].join("\n");
  assert.deepEqual(importsOf(src), [
    "./in-expr.ts",
    "./multi.ts",
    "./type.ts",
    "./default.ts",
    "./side.ts",
    "./star.ts",
    "./retype.ts",
    "./dynamic.ts",
  ]);
});

Deno.test("parseLayers() reads the README's order with sibling groups", () => {
  assert.deepEqual(parseLayers(README), [
    ["main.ts"],
    ["http"],
    ["alpha", "beta"],
    ["mcp"],
    ["low"],
    ["log.ts"],
  ]);
  assert.throws(() => parseLayers("# no block"), /no <!-- import-layers --> block/);
});

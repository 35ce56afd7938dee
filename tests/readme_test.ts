/** The README describes what the code has (issue 9 §7): flags, glossary, no dangling pointers. */
import assert from "node:assert/strict";
import { z } from "zod";
import { FLAGS } from "../src/config.ts";
import { PolicySchema } from "../src/governance/mod.ts";

const README = await Deno.readTextFile(new URL("../README.md", import.meta.url));
const ROOT = new URL("../", import.meta.url);

Deno.test("readme: the flag table has a row for every flag --help prints, with its env var", () => {
  const rows = README.split("\n").filter((l) => l.startsWith("| `--"));
  for (const f of FLAGS) {
    const row = rows.find((r) => new RegExp(`^\\| \`--${f.name}[\` ]`).test(r));
    assert.ok(row, `README flag table lacks --${f.name}`);
    if (f.env) assert.ok(row.includes(`\`${f.env}\``), `--${f.name} row lacks ${f.env}`);
    if (f.default) assert.ok(row.includes(f.default), `--${f.name} row lacks default ${f.default}`);
  }
  // And no row for a flag the code does not have.
  for (const row of rows) {
    const name = /^\| `--([a-z-]+)/.exec(row)![1];
    assert.ok(FLAGS.some((f) => f.name === name), `README documents --${name}, which is gone`);
  }
});

Deno.test("readme: every file it points at exists in the repository", async () => {
  for (const [, file] of README.matchAll(/\b([A-Z][A-Z_]+\.md)\b/g)) {
    const exists = await Deno.stat(new URL(file, ROOT)).then(() => true, () => false);
    assert.ok(exists, `README points at ${file}, which the repository does not contain`);
  }
});

Deno.test("readme: the glossary explains floors, telemetry and stage codes", () => {
  const glossary = README.slice(README.indexOf("## Glossary"));
  for (
    const id of ["F1", "F2", "F3", "F4", "F5", "F6", "F7", "F8", "F9", "F10", "F11", "F12", "F13"]
  ) {
    assert.match(glossary, new RegExp(`\\b${id}\\s+[A-Z]`), `glossary lacks ${id}`);
  }
  for (const t of ["delta_s", "peace_squared", "kappa_r", "omega_0"]) {
    assert.ok(glossary.includes(`\`${t}\``), `glossary lacks ${t}`);
  }
  for (const code of ["000", "111", "222", "333", "444", "555", "666", "777", "888", "999"]) {
    assert.ok(glossary.includes(`\`${code}\``), `glossary lacks stage ${code}`);
  }
});

/** Every policy field (by dotted path) the schema accepts, down to `depth` levels. */
function policyFields(): { path: string; leaf: boolean }[] {
  const schema = z.toJSONSchema(PolicySchema, { io: "input", unrepresentable: "any" });
  const out: { path: string; leaf: boolean }[] = [];
  const walk = (node: Record<string, unknown>, path: string, depth: number) => {
    const props = node.properties as Record<string, Record<string, unknown>> | undefined;
    if (!props || depth > 3) return;
    for (const [key, child] of Object.entries(props)) {
      const p = path ? `${path}.${key}` : key;
      // A field whose value is a record (names chosen by the user) or a plain value is a leaf.
      const leaf = child.properties === undefined;
      out.push({ path: p, leaf });
      walk(child, p, depth + 1);
    }
  };
  walk(schema as Record<string, unknown>, "", 0);
  return out;
}

Deno.test("readme: the policy reference names every policy field the schema accepts", () => {
  const fields = policyFields();
  assert.ok(fields.length > 80, `only ${fields.length} fields found: the walk is broken`);
  const missing = fields
    .filter((f) => f.leaf)
    // Per-floor settings are documented once, as floors.<F>.mode / .threshold.
    .map((f) => f.path.replace(/^floors\.F\d+\./, "floors.<F>."))
    .filter((p, i, all) => all.indexOf(p) === i)
    .filter((p) => !README.includes(`\`${p}\``));
  assert.deepEqual(missing, [], `README's policy reference lacks ${missing.join(", ")}`);
});

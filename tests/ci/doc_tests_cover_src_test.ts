/**
 * Docs as tests (issue 8 §3): the `check` task's `deno test --doc` names every folder and every
 * file directly in src/, so a new folder's JSDoc examples are type-checked and run from the day
 * it is added (src/gateway/ and src/mcp/ were left out, and their examples did not compile).
 */
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url);

Deno.test("deno task check runs the doc tests of every src/ folder and file", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  const check: string = config.tasks.check;
  const docTest = check.split("&&").map((s) => s.trim()).find((s) =>
    s.startsWith("deno test --doc")
  );
  assert.ok(docTest, "the check task runs deno test --doc");
  const named = new Set(docTest.split(/\s+/).filter((a) => a.startsWith("src/")));
  const missing: string[] = [];
  for await (const e of Deno.readDir(new URL("src/", ROOT))) {
    const path = e.isDirectory ? `src/${e.name}/` : `src/${e.name}`;
    if (e.isDirectory || e.name.endsWith(".ts")) {
      if (!named.has(path)) missing.push(path);
    }
  }
  assert.deepEqual(missing.sort(), [], `add to the check task's deno test --doc: ${missing}`);
});

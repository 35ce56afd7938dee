import assert from "node:assert/strict";
import { spawnServer } from "../_helpers/server.ts";
import { runWithTimeout } from "./_external.ts";

Deno.test("conformance: @modelcontextprotocol/conformance@0.1.16 --suite active passes every check", async () => {
  const dir = await Deno.makeTempDir();
  // A real KV file: the suite's ~30 sessions live in Warden's own KV session store.
  const server = await spawnServer(["--kv", `${dir}/warden.db`, "--conformance-fixtures"]);
  try {
    // Node 20 is too old for the suite, so it runs under Deno; from a folder without
    // deno.json, and --no-lock, so it cannot touch the project's lock file.
    const result = await runWithTimeout({
      command: Deno.execPath(),
      args: [
        "run",
        "-A",
        "--no-lock",
        "npm:@modelcontextprotocol/conformance@0.1.16",
        "server",
        "--url",
        `${server.url}/mcp`,
        "--suite",
        "active",
      ],
    }, { cwd: dir, timeoutMs: 300_000 });
    const summary = /Total: (\d+) passed, (\d+) failed/.exec(result.stdout);
    assert.ok(
      summary,
      `no summary in output:\n${result.stdout.slice(-3000)}\n${result.stderr.slice(-2000)}`,
    );
    const failedLines = result.stdout.split("\n").filter((l) => /^✗|[1-9]\d* failed/.test(l));
    assert.equal(Number(summary[2]), 0, `failed checks:\n${failedLines.join("\n")}`);
    assert.ok(Number(summary[1]) >= 40, `expected at least 40 checks, got ${summary[1]}`);
    assert.equal(result.code, 0);
    assert.ok(server.logs.some((l) => l.includes("session created")));
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("conformance: fixtures are off by default", async () => {
  const server = await spawnServer(["--kv", ":memory:"]);
  try {
    const tools = await (await fetch(`${server.url}/tools`)).json();
    assert.ok(!tools.tools.some((t: { name: string }) => t.name.startsWith("test_simple")));
  } finally {
    await server.stop();
  }
});

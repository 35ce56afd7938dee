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

/** Runs one `conformance@0.2.0-alpha.12 server` invocation against `url`. */
async function runAlpha12(url: string, cwd: string, args: string[]) {
  const result = await runWithTimeout({
    command: Deno.execPath(),
    args: [
      "run",
      "-A",
      "--no-lock",
      "npm:@modelcontextprotocol/conformance@0.2.0-alpha.12",
      "server",
      "--url",
      url,
      ...args,
    ],
  }, { cwd, timeoutMs: 300_000 });
  const summary = /Total: (\d+) passed, (\d+) failed/.exec(result.stdout);
  assert.ok(
    summary,
    `no summary in output:\n${result.stdout.slice(-3000)}\n${result.stderr.slice(-2000)}`,
  );
  const failed = result.stdout.split("\n").filter((l) => /^✗/.test(l));
  return { ...result, passed: Number(summary[1]), failed: Number(summary[2]), failedLines: failed };
}

Deno.test("conformance: 0.2.0-alpha.12 --requirements 2026-07-28 and --spec-version 2025-11-25", async () => {
  const dir = await Deno.makeTempDir();
  const server = await spawnServer(["--kv", `${dir}/warden.db`, "--conformance-fixtures"]);
  try {
    const baseline = new URL("./conformance_2026_expected_failures.yml", import.meta.url).pathname;
    const [modern, legacy] = await Promise.all([
      runAlpha12(`${server.url}/mcp`, dir, [
        "--requirements",
        "2026-07-28",
        "--expected-failures",
        baseline,
      ]),
      runAlpha12(`${server.url}/mcp`, dir, ["--spec-version", "2025-11-25"]),
    ]);
    // Every scenario the revision requires passes: the only failures are the baselined,
    // unscored ones, and the suite exits 0 only when the baseline matches exactly.
    const scored = modern.stdout.split("Not scored for 2026-07-28")[0];
    const scoredFailures = scored.split("\n").filter((l) => /^✗/.test(l));
    const expected = (await Deno.readTextFile(baseline)).split("\n")
      .map((l) => /^\s*- ([a-z0-9-]+)\s*$/.exec(l)?.[1]).filter((n): n is string => !!n);
    for (const line of scoredFailures) {
      const name = /^✗ ([a-z0-9-]+)/.exec(line)?.[1] ?? line;
      assert.ok(expected.includes(name), `a 2026-07-28 scenario failed: ${line}`);
    }
    assert.match(modern.stdout, /Running requirements 2026-07-28 \((\d+) scenarios\)/);
    assert.ok(modern.passed >= 140, `expected at least 140 passing checks, got ${modern.passed}`);
    assert.equal(modern.code, 0, `2026-07-28 run failed:\n${modern.failedLines.join("\n")}`);
    for (
      const required of ["server-stateless", "input-required-result-tampered-state", "caching"]
    ) {
      assert.match(modern.stdout, new RegExp(`^✓ ${required}: \\d+ passed, 0 failed`, "m"));
    }
    // The tasks extension (io.modelcontextprotocol/tasks): run but not scored, and every one
    // passes (none is baselined any more).
    for (
      const scenario of [
        "tasks-lifecycle",
        "tasks-capability-negotiation",
        "tasks-wire-fields",
        "tasks-request-state-removal",
        "tasks-mrtr-input",
        "tasks-request-headers",
        "tasks-dispatch-and-envelope",
        "tasks-required-task-error",
        "tasks-mrtr-composition",
      ]
    ) {
      assert.match(modern.stdout, new RegExp(`^✓ ${scenario}: [1-9]\\d* passed, 0 failed`, "m"));
      assert.ok(!expected.includes(scenario), `${scenario} is still baselined`);
    }
    assert.equal(legacy.failed, 0, `2025-11-25 failures:\n${legacy.failedLines.join("\n")}`);
    assert.equal(legacy.passed, 73);
    assert.equal(legacy.code, 0);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("conformance: fixtures are off by default", async () => {
  await using server = await spawnServer(["--kv", ":memory:"]);
  const tools = await (await fetch(`${server.url}/tools`)).json();
  assert.ok(!tools.tools.some((t: { name: string }) => t.name.startsWith("test_simple")));
});

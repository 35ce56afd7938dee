import assert from "node:assert/strict";
import { runCli as run } from "./_helpers/cli.ts";
// @ts-types="@modelcontextprotocol/sdk/client/stdio"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { Client, dataOf } from "./_helpers/client.ts";
import { FLAGS } from "../src/config.ts";
import { spawnServer } from "./_helpers/server.ts";
import { waitFor } from "./_helpers/wait.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

Deno.test("cli: --help documents every flag and its environment variable", async () => {
  const { code, stdout } = await run(["--help"]);
  assert.equal(code, 0);
  for (const f of FLAGS) {
    assert.ok(stdout.includes(`--${f.name}`), `--${f.name} missing from help`);
    if (f.env) assert.ok(stdout.includes(f.env), `${f.env} missing from help`);
  }
  assert.match(stdout, /serve/);
  assert.match(stdout, /stdio/);
});

Deno.test("cli: a non-loopback host without a token refuses to start and says what to set", async () => {
  const { code, stderr } = await run([
    "serve",
    "--host",
    "0.0.0.0",
    "--port",
    "0",
    "--kv",
    ":memory:",
  ]);
  assert.equal(code, 2);
  assert.match(stderr, /--token/);
  assert.match(stderr, /WARDEN_TOKEN/);
});

Deno.test("cli: bad flag values are refused with the flag named", async () => {
  const bad = await run(["serve", "--port", "99999"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--port must be between 0 and 65535/);
  const unknown = await run(["serve", "--no-such-flag"]);
  assert.equal(unknown.code, 2);
  const mode = await run(["serve", "--response-mode", "xml"]);
  assert.match(mode.stderr, /--response-mode/);
});

Deno.test("cli: environment variables are read when flags are absent", async () => {
  await using server = await spawnServer(["--kv", ":memory:"], { WARDEN_RESPONSE_MODE: "json" });
  const line = server.logs.find((l) => l.includes('"listening"'))!;
  assert.equal(JSON.parse(line).response_mode, "json");
  // The first log line names the URL actually bound.
  assert.match(JSON.parse(server.logs[0]).url, /^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
});

Deno.test("cli: a stray rejection inside a tool does not take the process down", async () => {
  await using server = await spawnServer(["--kv", ":memory:"]);
  const res = await fetch(`${server.url}/invoke`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ tool: "test_stray_rejection" }),
  });
  assert.equal(res.status, 200);
  await res.body?.cancel();
  // The stray rejection happens after the answer: wait until the process has contained it.
  await waitFor(
    () => server.logs.some((l) => l.includes("unhandled promise rejection contained")),
    "the stray rejection is logged as contained",
  );
  const again = await fetch(`${server.url}/invoke`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ tool: "calculate", arguments: { expression: "1+1" } }),
  });
  assert.equal((await again.json()).data.result, 2);
  assert.ok(server.logs.some((l) => l.includes("unhandled promise rejection contained")));
});

Deno.test("cli: stdio serves the same tools over stdin/stdout with logs on stderr only", async () => {
  const dir = await Deno.makeTempDir();
  const transport = new StdioClientTransport({
    command: Deno.execPath(),
    args: ["run", "-A", MAIN, "stdio", "--kv", `${dir}/stdio.db`],
    env: { NO_COLOR: "1", PATH: Deno.env.get("PATH") ?? "" },
    stderr: "pipe",
  });
  const client = new Client({ name: "stdio-test", version: "1" });
  try {
    await client.connect(transport);
    const { tools } = await client.listTools();
    assert.ok(tools.some((t) => t.name === "calculate"));
    const r = await client.callTool({ name: "calculate", arguments: { expression: "3*(4+5)" } });
    assert.deepEqual(dataOf(r), { expression: "3*(4+5)", result: 27 });
  } finally {
    await client.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: health probes a running server and fails when none answers", async () => {
  const server = await spawnServer(["--kv", ":memory:"]);
  try {
    const port = new URL(server.url).port;
    const ok = await run(["health", "--port", port]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(JSON.parse(ok.stdout).status, "ok");
  } finally {
    await server.stop();
  }
  const down = await run(["health", "--port", "1"]);
  assert.equal(down.code, 1);
  assert.match(down.stderr, /health check failed/);
});

/** `warden serve` on a free port and in-memory KV with `--policy file` (refused ones exit). */
function serveWithPolicy(file: string) {
  return run(["serve", "--port", "0", "--kv", ":memory:", "--policy", file]);
}

Deno.test("cli: a bad policy file stops start-up and names the field", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/bad.json`,
      JSON.stringify({ floors: { F6: { mode: "loud" } } }),
    );
    const bad = await serveWithPolicy(`${dir}/bad.json`);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /floors\.F6\.mode/);
    await Deno.writeTextFile(`${dir}/junk.json`, "{ nope");
    const junk = await serveWithPolicy(`${dir}/junk.json`);
    assert.equal(junk.code, 2);
    assert.match(junk.stderr, /not valid JSON/);
    const missing = await serveWithPolicy(`${dir}/none.json`);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read policy file/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: keygen never overwrites an existing key", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.equal((await run(["keygen", "--out", dir])).code, 0);
    const again = await run(["keygen", "--out", dir]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /never overwritten/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

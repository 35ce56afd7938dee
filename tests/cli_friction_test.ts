/**
 * First-run friction (issue 9 §7): the CLI fails fast with one line that says
 * what to do, and accepts the server URL the way operators paste it.
 */
import assert from "node:assert/strict";
import { runCli as run, runCliWithin } from "./_helpers/cli.ts";
import { spawnServer } from "./_helpers/server.ts";
import { keygenOperator } from "./_helpers/operator.ts";

/** A stack trace or Deno's "Uncaught" banner means the CLI did not handle the error. */
function assertOneLine(stderr: string, pattern: RegExp): void {
  assert.match(stderr, pattern);
  assert.doesNotMatch(stderr, /Uncaught|\n\s+at |error: /, stderr);
  assert.equal(stderr.trim().split("\n").length, 1, stderr);
}

Deno.test("cli friction: a busy port exits non-zero at once with a message", async () => {
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = String((busy.addr as Deno.NetAddr).port);
    const r = await runCliWithin(["serve", "--port", port, "--kv", ":memory:"], {}, 15_000);
    assert.equal(r.killed, false, "the process stayed alive listening on nothing");
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, new RegExp(`port ${port}.*already in use`));
    assert.doesNotMatch(r.stderr, /Uncaught/);
  } finally {
    busy.close();
  }
});

Deno.test("cli friction: a missing directory for --kv, export --out or keygen --out is one line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const kv = await run(["serve", "--port", "0", "--kv", `${dir}/no/such/dir/warden.kv`]);
    assert.equal(kv.code, 2);
    assertOneLine(kv.stderr, /--kv .*directory .* does not exist/);
    const stdio = await run(["stdio", "--kv", `${dir}/missing/kv`]);
    assert.equal(stdio.code, 2);
    assertOneLine(stdio.stderr, /--kv .*does not exist/);
    const exp = await run(["export", "--kv", ":memory:", "--out", `${dir}/missing/bundle.json`]);
    assert.equal(exp.code, 2);
    assertOneLine(exp.stderr, /--out .*directory .* does not exist/);
    // keygen creates its --out directory, but cannot below a regular file.
    await Deno.writeTextFile(`${dir}/file`, "x");
    const key = await run(["keygen", "--out", `${dir}/file/keys`]);
    assert.equal(key.code, 1);
    assertOneLine(key.stderr, /cannot create --out directory/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli friction: extra positional arguments are an error in every command", async () => {
  const cases: string[][] = [
    ["serve", "extra", "--port", "0", "--kv", ":memory:"],
    ["stdio", "extra", "--kv", ":memory:"],
    ["health", "extra", "--port", "1"],
    ["export", "extra", "--kv", ":memory:", "--out", "/tmp/x.json"],
    ["keygen", "extra", "--out", "/tmp/never-written"],
    ["verify", "a.json", "b.json"],
    ["approve", "h1", "h2", "--key", "k", "--url", "http://127.0.0.1:1"],
    ["deny", "h1", "h2", "--key", "k", "--url", "http://127.0.0.1:1"],
    ["approve-tool", "s", "t", "x", "--key", "k", "--url", "http://127.0.0.1:1"],
  ];
  for (const args of cases) {
    const r = await runCliWithin(args, {}, 15_000);
    assert.equal(r.killed, false, `${args[0]} ignored the extra argument and kept running`);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, /unexpected: "(extra|b\.json|h2|x)"/, r.stderr);
  }
});

Deno.test("cli friction: health --url is honoured, with or without /mcp", async () => {
  const server = await spawnServer(["--kv", ":memory:"]);
  try {
    const base = server.url; // spawnServer gives the base; operators often paste …/mcp
    for (const url of [`${base}/mcp`, `${base}/mcp/`, base, `${base}/`]) {
      // --port 1 would fail: only --url can make this succeed.
      const r = await run(["health", "--port", "1", "--url", url]);
      assert.equal(r.code, 0, `${url}: ${r.stderr}`);
      assert.equal(JSON.parse(r.stdout).status, "ok");
    }
  } finally {
    await server.stop();
  }
  const down = await run(["health", "--url", "http://127.0.0.1:1/mcp"]);
  assert.equal(down.code, 1);
  assert.match(down.stderr, /health check failed \(http:\/\/127\.0\.0\.1:1\/health\)/);
});

Deno.test("cli friction: health works with any allowed Host list (loopback /health is exempt)", async () => {
  const server = await spawnServer([
    "--kv",
    ":memory:",
    "--allowed-hosts",
    "warden.example.com",
  ]);
  try {
    const port = new URL(server.url).port;
    const r = await run(["health", "--port", port]);
    assert.equal(r.code, 0, r.stderr);
  } finally {
    await server.stop();
  }
});

Deno.test("cli friction: verify --url takes the /mcp URL and a 401 mentions --token", async () => {
  const token = "s3cret-token-of-enough-length";
  const server = await spawnServer(["--kv", ":memory:", "--token", token]);
  try {
    for (const url of [`${server.url}/mcp`, server.url]) {
      const r = await run(["verify", "--url", url]);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /401/);
      assert.match(r.stderr, /--token/, r.stderr);
      // With the token the same URL (with or without /mcp) reaches the vault routes.
      const ok = await run(["verify", "--url", url, "--token", token]);
      assert.doesNotMatch(ok.stderr, /\b404\b|\b401\b/, ok.stderr);
    }
  } finally {
    await server.stop();
  }
});

Deno.test("cli friction: approve and approve-tool name the refused GET and mention --token on a 401", async () => {
  const dir = await Deno.makeTempDir();
  const server = await spawnServer([
    "--kv",
    ":memory:",
    "--token",
    "s3cret-token-of-enough-length",
  ]);
  try {
    const { keyFile } = await keygenOperator(dir);
    const hold = await run(["approve", "h/1", "--key", keyFile, "--url", `${server.url}/mcp`]);
    assert.equal(hold.code, 1, hold.stderr);
    assert.match(hold.stderr, /^warden: .*\(GET \/holds\/h\/1 answered 401\) \(.*--token/);
    const tool = await run(["approve-tool", "ev", "t", "--key", keyFile, "--url", server.url]);
    assert.equal(tool.code, 1, tool.stderr);
    assert.match(tool.stderr, /^warden: .*\(GET \/api\/servers\/ev answered 401\) \(.*--token/);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

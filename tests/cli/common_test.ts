/**
 * runSubcommand() and readSecretInput() of src/cli/_common.ts (private to src/cli/; the token,
 * user and upstream-credential commands run through them): each run in a real child process,
 * with real stdin, stdout, stderr and exit code.
 */
import assert from "node:assert/strict";
import { runSubcommand } from "../../src/cli/_common.ts";

const COMMON = new URL("../../src/cli/_common.ts", import.meta.url).href;

/** A subcommand whose first positional picks what it does. */
const SCRIPT = `
import { readSecretInput, runSubcommand, UsageError } from "${COMMON}";
const code = await runSubcommand(Deno.args, {
  options: { kv: { type: "string" }, flag: { type: "boolean" } },
  usage: "usage: demo ACTION [--kv PATH] [--flag]",
}, async (parsed, openKv) => {
  const [action] = parsed.positionals;
  if (action === "ok") {
    console.log(JSON.stringify(parsed.values));
    return 0;
  }
  if (action === "secret") {
    const secret = await readSecretInput(Deno.env.get("SECRET"), 8);
    console.log(JSON.stringify(secret ?? null));
    return 0;
  }
  throw new UsageError("unknown action");
});
Deno.exit(code);
`;

async function run(args: string[], options: { stdin?: string; env?: Record<string, string> } = {}) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", "--ext=ts", SCRIPT, ...args],
    env: { NO_COLOR: "1", ...options.env },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(options.stdin ?? ""));
  await writer.close();
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

const USAGE = "usage: demo ACTION [--kv PATH] [--flag]";

Deno.test("runSubcommand() parses the flags strictly and resolves with what the command returns", async () => {
  const r = await run(["ok", "--kv", "x.db", "--flag"]);
  assert.deepEqual(r, { code: 0, stdout: '{"kv":"x.db","flag":true}\n', stderr: "" });
});

Deno.test("runSubcommand() answers an unknown flag or a UsageError with the message, the usage and exit 2", async () => {
  const flag = await run(["ok", "--nope"]);
  assert.equal(flag.code, 2);
  assert.match(flag.stderr, /^warden: .*--nope.*\n\nusage: demo ACTION/);
  const usage = await run(["other"]);
  assert.deepEqual(usage, { code: 2, stdout: "", stderr: `warden: unknown action\n\n${USAGE}\n` });
});

Deno.test("runSubcommand() answers another error with exit 1 and closes every KV it opened", async () => {
  const dir = await Deno.makeTempDir();
  const opened: Deno.Kv[] = [];
  try {
    const code = await runSubcommand(["go", "--kv", `${dir}/demo.db`], {
      options: { kv: { type: "string" } },
      usage: USAGE,
    }, async (parsed, openKv) => {
      opened.push(await openKv(parsed.values.kv!), await openKv(`${dir}/other.db`));
      await opened[0].set(["k"], "v");
      throw new Error("failed after opening (this line is the test's expected output)");
    });
    assert.equal(code, 1);
    assert.equal(opened.length, 2);
    for (const kv of opened) await assert.rejects(kv.get(["k"]), "the KV was closed");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readSecretInput() takes the env value as it is, else stdin without its newline, within the cap", async () => {
  assert.equal(
    (await run(["secret"], { env: { SECRET: " as is\n" }, stdin: "ignored" })).stdout,
    '" as is\\n"\n',
  );
  assert.equal((await run(["secret"], { stdin: "s3cret\r\n" })).stdout, '"s3cret"\n');
  assert.equal((await run(["secret"], { stdin: "12345678" })).stdout, '"12345678"\n');
  assert.equal((await run(["secret"], { stdin: "123456789" })).stdout, "null\n", "over the cap");
});

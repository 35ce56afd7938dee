/**
 * The README's default path runs `secure_execute` kind code (issue 15 §6): `deno task start`
 * (and `dev`, the same flags with `--watch`) grants `--allow-run` for exactly bwrap, prlimit and
 * the deno executable running the task — its real path, which under `npx -y deno@…` is inside
 * the npm cache, so it is asked of that very runtime (`deno` in a task is the running
 * executable) — and nothing else. Before, the tasks granted only bwrap and kind code answered
 * that Warden may not start the runtime.
 */
import assert from "node:assert/strict";
import { spawnListening } from "../_helpers/server.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const TASKS = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).tasks as Record<
  string,
  string
>;

const ALLOW_RUN =
  `--allow-run=bwrap,prlimit,"$(deno eval --no-config 'console.log(Deno.execPath())')"`;

Deno.test("the dev and start tasks grant run of bwrap, prlimit and this deno only", () => {
  for (const task of ["dev", "start"]) {
    const flags = TASKS[task].split(" main.ts ")[0];
    assert.equal(flags.split("--allow-run").length, 2, `${task}: one --allow-run: ${flags}`);
    assert.ok(flags.endsWith(` ${ALLOW_RUN}`), `${task}: ${flags}`);
    assert.ok(!/--allow-all|-A\b/.test(flags), `${task} grants everything: ${flags}`);
  }
});

Deno.test({
  name: "deno task start runs secure_execute kind code (a program, with no permissions)",
  sanitizeResources: false,
  async fn() {
    // deno task passes the SIGTERM that stops it on to the server it started.
    await using server = await spawnListening(
      ["task", "--quiet", "start", "--port", "0", "--kv", ":memory:"],
      { cwd: ROOT, timeoutMs: 60_000 },
    );
    const url = server.url;
    const call = async (code: string) => {
      const res = await fetch(`${url}/invoke`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ tool: "secure_execute", arguments: { code } }),
      });
      return { status: res.status, body: await res.json() };
    };
    const ok = await call("const n: number = 6 * 7; console.log(n)");
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.data.status, "OK", JSON.stringify(ok.body));
    assert.equal(ok.body.data.stdout, "42\n");
    // The program itself still gets nothing: the same runtime refuses it a file.
    const hostile = await call('console.log(Deno.readTextFileSync("/etc/passwd"))');
    assert.equal(hostile.body.data.exit_code, 1, JSON.stringify(hostile.body));
    assert.match(hostile.body.data.stderr, /Requires read access to "\/etc\/passwd"/);
    assert.equal(hostile.body.data.stdout, "");
    // The task's heap ceiling took effect (README "Memory"): without it V8 sizes the heap for
    // the machine's memory (4 GiB here) and lets it grow to about four times what is live.
    const res = await fetch(`${url}/invoke`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ tool: "check_vital", arguments: {} }),
    });
    const limit = (await res.json()).data.memory.heap_limit / 1048576;
    assert.ok(limit >= 1024 && limit < 1536, `heap limit ${limit} MiB`);
  },
});

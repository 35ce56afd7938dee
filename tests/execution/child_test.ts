/**
 * watchChild() of src/execution/_child.ts (private to its folder; the shell and code sandboxes
 * both run their process through it): real child processes, each way one ends.
 */
import assert from "node:assert/strict";
import { watchChild } from "../../src/execution/_child.ts";

function spawn(script: string, stdin: "piped" | "null" = "null"): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", script],
    stdin,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

const LIMITS = { timeoutMs: 10_000, maxOutputBytes: 1_024 };

Deno.test("watchChild() returns the exit code and both streams of a process that ends itself", async () => {
  const started = performance.now();
  const r = await watchChild(
    spawn("console.log('out'); console.error('err'); Deno.exit(3)"),
    { ...LIMITS, started },
  );
  assert.deepEqual(
    { ...r, durationMs: 0 },
    {
      exitCode: 3,
      signal: null,
      stdout: "out\n",
      stderr: "err\n",
      timedOut: false,
      outputTruncated: false,
      durationMs: 0,
      cancelled: false,
    },
  );
  assert.ok(r.durationMs >= 0);
});

Deno.test("watchChild() writes the input to stdin and closes it", async () => {
  const r = await watchChild(
    spawn("console.log((await new Response(Deno.stdin.readable).text()).toUpperCase())", "piped"),
    { ...LIMITS, started: performance.now(), input: new TextEncoder().encode("fed in") },
  );
  assert.equal(r.exitCode, 0);
  assert.equal(r.stdout, "FED IN\n");
});

Deno.test("watchChild() kills a process at the deadline and says so", async () => {
  const r = await watchChild(spawn("await new Promise((ok) => setTimeout(ok, 30_000))"), {
    ...LIMITS,
    timeoutMs: 300,
    started: performance.now(),
  });
  assert.equal(r.timedOut, true);
  assert.equal(r.cancelled, false);
  assert.equal(r.exitCode, null);
  assert.equal(r.signal, "SIGKILL");
});

Deno.test("watchChild() kills a process that writes past the output cap and keeps the first bytes", async () => {
  const r = await watchChild(
    spawn(
      "const x = 'x'.repeat(4096); while (true) await Deno.stdout.write(new TextEncoder().encode(x))",
    ),
    { ...LIMITS, started: performance.now() },
  );
  assert.equal(r.outputTruncated, true);
  assert.equal(r.stdout, "x".repeat(1_024));
  assert.equal(r.signal, "SIGKILL");
  assert.equal(r.timedOut, false);
});

Deno.test("watchChild() kills the process when the caller aborts, before or while it runs", async () => {
  const caller = new AbortController();
  const running = watchChild(spawn("await new Promise((ok) => setTimeout(ok, 30_000))"), {
    ...LIMITS,
    started: performance.now(),
    signal: caller.signal,
  });
  setTimeout(() => caller.abort(), 200);
  const r = await running;
  assert.equal(r.cancelled, true);
  assert.equal(r.timedOut, false);
  assert.equal(r.signal, "SIGKILL");
  const early = await watchChild(spawn("await new Promise((ok) => setTimeout(ok, 30_000))"), {
    ...LIMITS,
    started: performance.now(),
    signal: AbortSignal.abort(),
  });
  assert.equal(early.cancelled, true);
  assert.equal(early.exitCode, null);
});

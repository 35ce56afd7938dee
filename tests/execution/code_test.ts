/**
 * The code sandbox without MCP: hostile programs in a real `deno run`
 * process with no permissions. Each is contained with a clear failure, and
 * what it reached for (a file's content, a loopback listener, the
 * environment) is shown untouched from outside.
 */
import assert from "node:assert/strict";
import {
  CodeSandboxBusyError,
  createCodeSandbox,
  openCodeSandbox,
} from "../../src/execution/mod.ts";

const LIMITS = {
  timeoutMs: 3000,
  cpuSeconds: 3,
  heapMb: 64,
  memoryMb: 1024,
  maxOutputBytes: 65536,
  maxCodeBytes: 65536,
  maxConcurrent: 8,
};
const sandbox = createCodeSandbox({ limits: LIMITS, deno: Deno.execPath() });

Deno.test("code sandbox runs TypeScript and JavaScript and returns their output", async () => {
  const ts = await sandbox.run("const n: number = 6 * 7; console.log(n); console.error('note');");
  assert.equal(ts.exitCode, 0, ts.stderr);
  assert.equal(ts.stdout, "42\n");
  assert.equal(ts.stderr, "note\n");
  assert.equal(ts.failure, null);
  const js = await sandbox.run("console.log([1, 2, 3].map((x) => x * 2).join())", {
    language: "javascript",
  });
  assert.equal(js.stdout, "2,4,6\n");
  const thrown = await sandbox.run("throw new Error('boom')");
  assert.equal(thrown.exitCode, 1);
  assert.match(thrown.failure!, /exited with code 1: .*boom/);
});

Deno.test("code sandbox: a program cannot read a file, by API or by import", async () => {
  const dir = await Deno.makeTempDir({ prefix: "warden_code_" });
  const marker = `secret-${crypto.randomUUID()}`;
  const file = `${dir}/secret.json`;
  await Deno.writeTextFile(file, JSON.stringify({ marker }));
  try {
    const programs = {
      api: `console.log(Deno.readTextFileSync(${JSON.stringify(file)}))`,
      fetch: `console.log(await (await fetch("file://${file}")).text())`,
      node: `import fs from "node:fs"; console.log(fs.readFileSync(${
        JSON.stringify(file)
      }, "utf8"))`,
      staticJson: `import x from ${JSON.stringify(file)} with { type: "json" }; console.log(x)`,
      dynamicText:
        `console.log((await import("file://localhost${file}", { with: { type: "text" } })).default)`,
      worker:
        `const w = new Worker("data:text/javascript,import x from 'file://${file}' with {type:'json'}; postMessage(x)", { type: "module" });
        w.onmessage = (e) => { console.log(JSON.stringify(e.data)); w.terminate(); };`,
      remote: `await import("https://deno.land/std/version.ts")`,
    };
    // A worker is a second isolate: it needs more than 1024 MiB of address space to start at all.
    const roomy = createCodeSandbox({
      limits: { ...LIMITS, memoryMb: 2048 },
      deno: Deno.execPath(),
    });
    for (const [name, code] of Object.entries(programs)) {
      const r = await (name === "worker" ? roomy : sandbox).run(code);
      assert.notEqual(r.exitCode, 0, `${name}: ${r.stdout}`);
      assert.doesNotMatch(r.stdout + r.stderr, new RegExp(marker), name);
      assert.match(
        r.failure!,
        /^permission denied: (read access to|a program may not import)/,
        `${name}: ${r.failure}`,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("code sandbox: no socket to loopback, no environment, no process, no cwd of Warden", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  let accepted = 0;
  const accepting = (async () => {
    for await (const conn of listener) {
      accepted++;
      conn.close();
    }
  })();
  try {
    const cases: [string, string, RegExp][] = [
      [
        "connect",
        `await Deno.connect({ hostname: "127.0.0.1", port: ${port} })`,
        /net access to "127\.0\.0\.1:\d+"/,
      ],
      ["fetch", `await fetch("http://127.0.0.1:${port}/")`, /net access to "127\.0\.0\.1:\d+"/],
      ["env", `console.log(Deno.env.get("HOME"), Deno.env.toObject())`, /env access/],
      [
        "spawn",
        `new Deno.Command("/bin/sh", { args: ["-c", "id"] }).outputSync()`,
        /run access to "\/bin\/sh"/,
      ],
      [
        "child_process",
        `import { execSync } from "node:child_process"; execSync("id")`,
        /env access|run access/,
      ],
      ["ffi", `Deno.dlopen("libc.so.6", {})`, /ffi access/],
      ["sys", `console.log(Deno.hostname())`, /sys access/],
    ];
    for (const [name, code, denied] of cases) {
      const r = await sandbox.run(code);
      assert.notEqual(r.exitCode, 0, name);
      assert.match(r.failure!, /^permission denied: /, `${name}: ${r.failure}`);
      assert.match(r.failure!, denied, name);
    }
    const where = await sandbox.run("console.log(Deno.cwd(), import.meta.url)");
    assert.equal(where.stdout, "/ file:///$deno$stdin.ts\n");
    assert.equal(accepted, 0, "nothing reached the loopback listener");
  } finally {
    listener.close();
    await accepting.catch(() => {});
  }
});

Deno.test("code sandbox: an infinite loop is killed at the wall-clock limit", async () => {
  const quick = createCodeSandbox({
    limits: { ...LIMITS, timeoutMs: 800, cpuSeconds: 30 },
    deno: Deno.execPath(),
  });
  const r = await quick.run("while (true) {}");
  assert.equal(r.timedOut, true);
  assert.equal(r.exitCode, null);
  assert.equal(r.failure, "killed after the 800 ms wall-clock limit");
  assert.ok(r.durationMs < 5000, `${r.durationMs} ms`);
});

Deno.test("code sandbox: 4 GB is refused, a growing heap is killed at its limit", async () => {
  const buffer = await sandbox.run(
    "const a = new Uint8Array(4 * 2 ** 30); a.fill(1); console.log('filled', a.length)",
  );
  assert.doesNotMatch(buffer.stdout, /filled/);
  assert.match(buffer.failure!, /over the 1024 MiB process limit|out of memory/, buffer.failure!);
  const heap = await sandbox.run("const a = []; while (true) a.push(new Array(1e6).fill(1.5));");
  assert.equal(heap.exitCode, null);
  assert.match(heap.failure!, /^killed: out of memory \(heap limit 64 MiB/, heap.failure!);
});

Deno.test("code sandbox: printing 100 MB is killed at the output cap, with what was kept", async () => {
  const r = await sandbox.run(
    "const line = 'x'.repeat(1023) + '\\n'; for (let i = 0; i < 100 * 1024; i++) console.log(line);",
  );
  assert.equal(r.outputTruncated, true);
  assert.equal(r.stdout.length, LIMITS.maxOutputBytes);
  assert.equal(r.failure, `killed: it wrote more than ${LIMITS.maxOutputBytes} bytes of output`);
});

Deno.test("code sandbox refuses oversized code and more programs than max_concurrent", async () => {
  const small = createCodeSandbox({
    limits: { ...LIMITS, maxCodeBytes: 100, maxConcurrent: 1 },
    deno: Deno.execPath(),
  });
  await assert.rejects(
    () => small.run("//" + "x".repeat(200)),
    /code is 202 bytes; the limit is 100/,
  );
  const first = small.run("await new Promise((r) => setTimeout(r, 500))");
  await new Promise((r) => setTimeout(r, 50));
  await assert.rejects(() => small.run("1"), CodeSandboxBusyError);
  assert.equal((await first).exitCode, 0);
});

Deno.test("openCodeSandbox() says why code cannot run: disabled, Deno Deploy, too little memory", async () => {
  const settings = {
    enabled: true,
    timeout_ms: 3000,
    heap_mb: 64,
    memory_mb: 1024,
    max_output_bytes: 4096,
    max_code_bytes: 4096,
    max_concurrent: 2,
  };
  const off = openCodeSandbox({ settings: { ...settings, enabled: false } });
  assert.equal(off.available, false);
  assert.match(!off.available ? off.reason : "", /execution\.code\.enabled is false/);
  const deploy = openCodeSandbox({ settings, onDeploy: true });
  assert.match(!deploy.available ? deploy.reason : "", /cannot run on Deno Deploy/);
  const starved = openCodeSandbox({ settings: { ...settings, memory_mb: 64 } });
  assert.ok(starved.available);
  const check = await starved.sandbox.check();
  assert.equal(check.ok, false);
  assert.match(!check.ok ? check.reason : "", /raise policy execution\.code\.memory_mb/);
  await assert.rejects(() => starved.sandbox.run("1"), /cannot start its runtime/);
});

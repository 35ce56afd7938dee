/**
 * What a sandboxed stdio upstream may write is bounded: /tmp and /dev/shm are tmpfs of
 * `sandbox.tmp_mb` MiB (default 64) — before, both were tmpfs of half the host's memory, so an
 * upstream could fill RAM — /dev is read-only (its device nodes stay usable), and the work dir
 * (HOME, cwd) is a tmpfs of `sandbox.work_mb` MiB (default 128) — before, a host directory,
 * unbounded on disk and never removed. Real bubblewrap,
 * the argv Warden runs an upstream under, a shell as the upstream command.
 */
import assert from "node:assert/strict";
import { parseUpstreams } from "../../src/gateway/mod.ts";
import { sandboxedCommand } from "../../src/gateway/sandbox.ts";

/** Runs `script` with /bin/sh as a sandboxed stdio upstream configured by `sandbox`. */
async function inSandbox(
  script: string,
  sandbox?: Record<string, unknown>,
): Promise<{ code: number; stderr: string }> {
  const [config] = parseUpstreams(JSON.stringify([{
    name: "shell",
    transport: "stdio",
    command: "sh",
    args: ["-c", script],
    ...(sandbox ? { sandbox } : {}),
  }]));
  const { command, args, env } = sandboxedCommand(config);
  const out = await new Deno.Command(command, {
    args,
    env: { PATH: "/usr/bin:/bin", ...env },
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

/** The per-upstream work dirs a sandbox once left in the host's temp directory. */
function hostWorkDirs(): string[] {
  const tmp = Deno.env.get("TMPDIR") ?? "/tmp";
  return [...Deno.readDirSync(tmp)].map((e) => e.name).filter((n) =>
    n.startsWith("warden-upstream-shell-")
  );
}

const write = (path: string, mb: number) => `head -c ${mb * 1024 * 1024} /dev/zero > ${path}`;

Deno.test("sandbox: /tmp and /dev/shm are bounded by sandbox.tmp_mb; /dev is read-only", async () => {
  for (const dir of ["/tmp", "/dev/shm"]) {
    const within = await inSandbox(write(`${dir}/f`, 1), { tmp_mb: 2 });
    assert.equal(within.code, 0, `${dir} within the bound: ${within.stderr}`);
    const beyond = await inSandbox(write(`${dir}/f`, 3), { tmp_mb: 2 });
    assert.notEqual(beyond.code, 0, `${dir}: 3 MiB written into a 2 MiB tmpfs`);
    assert.match(beyond.stderr, /No space left on device/, dir);
  }
  // Several files together count against the one bound.
  const many = await inSandbox(`${write("/tmp/a", 1)} && ${write("/tmp/b", 1)}`, { tmp_mb: 1 });
  assert.notEqual(many.code, 0, "2 MiB in two files into a 1 MiB tmpfs");
  // /dev itself takes no files; its device nodes still work.
  const dev = await inSandbox("echo x > /dev/null && ! touch /dev/f 2>/dev/null");
  assert.equal(dev.code, 0, dev.stderr);
});

Deno.test("sandbox: the default /tmp bound is 64 MiB", async () => {
  const within = await inSandbox(write("/tmp/f", 60));
  assert.equal(within.code, 0, within.stderr);
  const beyond = await inSandbox(write("/tmp/f", 70));
  assert.notEqual(beyond.code, 0, "70 MiB written into the default /tmp");
  assert.match(beyond.stderr, /No space left on device/);
});

Deno.test("sandbox: the work dir (HOME, cwd) is bounded by sandbox.work_mb and leaves nothing on the host", async () => {
  const before = hostWorkDirs();
  const home = await inSandbox('test "$(pwd)" = "$HOME" && echo x > "$HOME/f"');
  assert.equal(home.code, 0, home.stderr);
  const within = await inSandbox(write("f", 1), { work_mb: 2 });
  assert.equal(within.code, 0, within.stderr);
  const beyond = await inSandbox(write("f", 3), { work_mb: 2 });
  assert.notEqual(beyond.code, 0, "3 MiB written into a 2 MiB work dir");
  assert.match(beyond.stderr, /No space left on device/);
  // Default 128 MiB. Before, the work dir was a host directory: unbounded, and left behind.
  const big = await inSandbox(write("f", 136));
  assert.notEqual(big.code, 0, "136 MiB written into the default work dir");
  assert.deepEqual(hostWorkDirs(), before, "a work dir was left on the host");
});

Deno.test("sandbox: tmp_mb and work_mb must be whole numbers of MiB from 1 to 4096", () => {
  for (const key of ["tmp_mb", "work_mb"]) {
    for (const bad of [0, -1, 1.5, 4097, "64"]) {
      assert.throws(
        () =>
          parseUpstreams(JSON.stringify([{
            name: "shell",
            transport: "stdio",
            command: "sh",
            sandbox: { [key]: bad },
          }])),
        new RegExp(`${key}.*whole number of MiB`),
        `${key}: ${bad}`,
      );
    }
  }
});

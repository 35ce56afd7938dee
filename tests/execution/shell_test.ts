import assert from "node:assert/strict";
import { join } from "node:path";
import {
  createShellSandbox,
  SandboxUnavailableError,
  type ShellLimits,
  type ShellSandbox,
} from "../../src/execution/mod.ts";
import { pollUntil } from "../_helpers/wait.ts";

const LIMITS: ShellLimits = {
  timeoutMs: 5000,
  cpuSeconds: 5,
  maxOutputBytes: 4096,
  memoryBytes: 512 * 1024 * 1024,
  workDirBytes: 4 * 1024 * 1024,
  maxProcesses: 64,
};

interface Outside {
  dir: string;
  canary: string;
  canaryText: string;
  kv: string;
  kvText: string;
  mounted: string;
  keep: string;
}

/** Files outside the sandbox that every attack below tries to reach. */
async function outside(): Promise<Outside> {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "warden_canary_" }));
  const marker = crypto.randomUUID();
  const canary = join(dir, "canary.txt");
  const canaryText = `CANARY-${marker}`;
  await Deno.writeTextFile(canary, canaryText);
  const kv = join(dir, "warden.db");
  const kvText = `KV-SIGNING-KEY-${marker}`;
  await Deno.writeTextFile(kv, kvText);
  const mounted = join(dir, "shared");
  await Deno.mkdir(mounted);
  const keep = join(mounted, "keep.txt");
  await Deno.writeTextFile(keep, "keep me");
  return { dir, canary, canaryText, kv, kvText, mounted, keep };
}

async function withSandbox(
  fn: (sandbox: ShellSandbox, out: Outside) => Promise<void>,
  limits: Partial<ShellLimits> = {},
): Promise<void> {
  const out = await outside();
  try {
    const sandbox = await createShellSandbox({
      limits: { ...LIMITS, ...limits },
      mounts: [out.mounted],
      protectedPaths: [out.kv],
    });
    await fn(sandbox, out);
  } finally {
    await Deno.remove(out.dir, { recursive: true });
  }
}

async function assertIntact(out: Outside, attack: string): Promise<void> {
  assert.equal(await Deno.readTextFile(out.canary), out.canaryText, `canary changed by: ${attack}`);
  assert.equal(await Deno.readTextFile(out.kv), out.kvText, `KV changed by: ${attack}`);
  assert.equal(await Deno.readTextFile(out.keep), "keep me", `mount changed by: ${attack}`);
}

Deno.test("ShellSandbox.run() works inside a private writable /work", async () => {
  await withSandbox(async (sandbox) => {
    const r = await sandbox.run("echo hi > f && cat f && pwd && id -u");
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout, "hi\n/work\n65534\n");
    // Each command gets a fresh /work: nothing survives from the last one.
    const again = await sandbox.run("cat f");
    assert.notEqual(again.exitCode, 0);
  });
});

Deno.test("ShellSandbox.run() leaves files outside /work untouched, however the command tries", async () => {
  await withSandbox(async (sandbox, out) => {
    const { canary, dir, mounted, keep } = out;
    const attacks = [
      `/bin/rm -f ${canary}`,
      `rm -rf ${dir}`,
      `echo $(rm -f ${canary})`,
      `echo \`rm -f ${canary}\``,
      `find ${dir} -delete`,
      `find /tmp /work ${dir} -name canary.txt -delete`,
      `python3 -c "import os; os.remove('${canary}')"`,
      `python3 -c "import shutil; shutil.rmtree('${dir}')"`,
      `echo pwned | tee ${canary}`,
      `echo pwned > ${canary}`,
      `rm -f ${keep}`,
      `echo pwned | tee ${keep}`,
      `mv ${keep} /work/stolen`,
      `touch ${mounted}/new`,
      `touch /usr/bin/warden-evil /evil`,
      `sh -c 'cd / && rm -rf --no-preserve-root /tmp /work ${dir} 2>/dev/null'; true`,
    ];
    for (const attack of attacks) {
      await sandbox.run(attack);
      await assertIntact(out, attack);
    }
    assert.equal((await Deno.stat(keep)).isFile, true);
    await assert.rejects(Deno.stat(join(mounted, "new")), Deno.errors.NotFound);
    await assert.rejects(Deno.stat("/usr/bin/warden-evil"), Deno.errors.NotFound);
    // The policy mount is readable, read-only.
    const read = await sandbox.run(`cat ${keep}`);
    assert.equal(read.stdout, "keep me");
  });
});

Deno.test("ShellSandbox.run() cannot read the KV file, /etc or the caller's environment", async () => {
  Deno.env.set("WARDEN_TEST_SECRET", "env-secret-value-123");
  try {
    await withSandbox(async (sandbox, out) => {
      for (
        const attack of [
          `cat ${out.kv}`,
          `python3 -c "print(open('${out.kv}').read())"`,
          `cat ${out.canary}`,
          "cat /etc/shadow /etc/passwd /etc/hostname",
          "ls -la /etc /root /home",
          "cat /proc/1/environ; env",
        ]
      ) {
        const r = await sandbox.run(attack);
        const seen = r.stdout + r.stderr;
        assert.ok(!seen.includes(out.kvText), `KV read by: ${attack}`);
        assert.ok(!seen.includes(out.canaryText), `canary read by: ${attack}`);
        assert.ok(!seen.includes("root:"), `/etc read by: ${attack}`);
        assert.ok(!seen.includes("env-secret-value-123"), `environment leaked by: ${attack}`);
      }
      const env = await sandbox.run("env | sort");
      assert.equal(
        env.stdout,
        "HOME=/work\nLANG=C.UTF-8\nPATH=/usr/local/bin:/usr/bin:/bin\nPWD=/work\nTMPDIR=/tmp\n",
      );
    });
  } finally {
    Deno.env.delete("WARDEN_TEST_SECRET");
  }
});

Deno.test("ShellSandbox.run() has no network: a server on the host's loopback gets nothing", async () => {
  let requests = 0;
  const ac = new AbortController();
  const { promise: listening, resolve } = Promise.withResolvers<number>();
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", signal: ac.signal, onListen: ({ port }) => resolve(port) },
    () => {
      requests++;
      return new Response("reached");
    },
  );
  const port = await listening;
  try {
    await withSandbox(async (sandbox) => {
      for (
        const attack of [
          `python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:${port}/', timeout=2).read())"`,
          `python3 -c "import socket; socket.create_connection(('1.1.1.1', 80), 2)"`,
          `python3 -c "import socket; print(socket.gethostbyname('example.com'))"`,
        ]
      ) {
        const r = await sandbox.run(attack);
        assert.notEqual(r.exitCode, 0, `${attack} succeeded: ${r.stdout}`);
        assert.ok(!r.stdout.includes("reached"));
      }
    });
    assert.equal(requests, 0);
  } finally {
    ac.abort();
    await server.finished;
  }
});

function processesMatching(marker: string): number[] {
  const found: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const cmdline = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).replaceAll("\0", " ");
      if (cmdline.includes(marker)) found.push(Number(entry.name));
    } catch {
      // Exited meanwhile.
    }
  }
  return found;
}

Deno.test("ShellSandbox.run() kills the whole sandbox at the deadline, background processes included", async () => {
  await withSandbox(async (sandbox) => {
    const marker = `${Math.floor(Math.random() * 1e6) + 1000}.25`;
    const r = await sandbox.run(`(setsid sleep ${marker} &) ; nohup sleep ${marker} & sleep 60`);
    assert.equal(r.timedOut, true);
    assert.equal(r.exitCode, null);
    // The PID namespace died with its first process: nothing it started lives on.
    const left = await pollUntil(
      () => processesMatching(`sleep ${marker}`),
      (l) => l.length === 0,
      {
        timeoutMs: 1_000,
        intervalMs: 50,
      },
    );
    assert.deepEqual(left, []);
  }, { timeoutMs: 700 });
});

Deno.test("ShellSandbox.run() caps output, CPU time and file size", async () => {
  await withSandbox(async (sandbox) => {
    const noisy = await sandbox.run("yes");
    assert.equal(noisy.outputTruncated, true);
    assert.equal(noisy.stdout.length, 1024);
    assert.equal(noisy.timedOut, false);
    const spin = await sandbox.run("while :; do :; done");
    assert.equal(spin.timedOut, false, "the CPU limit, not the deadline, stopped it");
    assert.notEqual(spin.exitCode, 0);
    const big = await sandbox.run("head -c 3000000 /dev/zero > big; echo $?");
    assert.notEqual(big.stdout.trim(), "0");
    // The size limit holds outside /work too: /dev is read-only, /dev/shm and /tmp are bounded
    // (before, /dev and /dev/shm took files of any number, in host memory).
    const elsewhere = await sandbox.run(
      "for d in /dev /dev/shm /tmp; do n=0; for i in 1 2 3 4; do " +
        "head -c 900000 /dev/zero > $d/f$i 2>/dev/null && n=$((n+1)); done; echo $d $n; done; " +
        "echo x > /dev/null && echo null-ok",
    );
    assert.equal(elsewhere.stdout, "/dev 0\n/dev/shm 1\n/tmp 1\nnull-ok\n", elsewhere.stderr);
    // Nor through a user namespace of its own, where it would be root and mount a tmpfs of any
    // size: none can be made.
    const nested = await sandbox.run(
      "unshare -r -m sh -c 'mount -t tmpfs -o size=64m none /tmp && for i in 1 2 3 4; do " +
        "head -c 900000 /dev/zero > /tmp/x$i || exit 1; done && echo escaped'; echo done",
    );
    assert.doesNotMatch(nested.stdout, /escaped/, nested.stderr);
    assert.match(nested.stdout, /done/);
    assert.match(nested.stderr, /unshare/);
  }, { maxOutputBytes: 1024, cpuSeconds: 1, timeoutMs: 8000, workDirBytes: 1024 * 1024 });
});

Deno.test("createShellSandbox() without bwrap is an error that says what to install", async () => {
  const error = await assert.rejects(
    createShellSandbox({ limits: LIMITS, bwrap: "/nonexistent/bwrap" }),
    SandboxUnavailableError,
  );
  void error;
  await assert.rejects(
    createShellSandbox({ limits: LIMITS, bwrap: "/nonexistent/bwrap" }),
    /apt-get install -y bubblewrap/,
  );
});

Deno.test("createShellSandbox() refuses a mount that would expose a protected path", async () => {
  const out = await outside();
  try {
    await assert.rejects(
      createShellSandbox({ limits: LIMITS, mounts: [out.dir], protectedPaths: [out.kv] }),
      (e: Error) => e instanceof SandboxUnavailableError && e.message.includes(out.kv),
    );
    await assert.rejects(
      createShellSandbox({ limits: LIMITS, mounts: ["relative/dir"] }),
      /not absolute/,
    );
  } finally {
    await Deno.remove(out.dir, { recursive: true });
  }
});

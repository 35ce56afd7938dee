// deno-lint-ignore-file no-explicit-any -- health check bodies are probed field by field
// The latest signed checkpoint is mirrored outside the KV (<kv>.checkpoint by
// default, or --checkpoint-mirror DIR). A server started on an older copy of
// its KV (a rollback), or on a copy that grew apart (a fork), refuses to sign
// a checkpoint and reports not ready, saying why; the entries it seals stay
// unsigned rather than signed into a history that contradicts the published one.
import assert from "node:assert/strict";
import { spawnServer } from "../_helpers/server.ts";
import { openCheckpoint, verifierFromVkey } from "../../src/merkle/mod.ts";
import { pollUntil, waitFor } from "../_helpers/wait.ts";

async function invoke(base: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${base}/invoke`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ tool: "calculate", arguments: { expression: `${i}+1` } }),
    });
    const body = await res.json();
    assert.equal(body.policy_verdict, "SEAL", JSON.stringify(body));
  }
}

async function headSize(base: string): Promise<number> {
  return (await (await fetch(`${base}/vault/head`)).json()).size;
}

async function checkpointSize(base: string): Promise<number> {
  const res = await fetch(`${base}/vault/checkpoint`);
  if (res.status === 404) {
    await res.body?.cancel();
    return 0;
  }
  return Number((await res.text()).split("\n")[1]);
}

/** Waits until the latest checkpoint covers the whole head. */
async function signedUpToHead(base: string): Promise<number> {
  const size = await headSize(base);
  await waitFor(async () => await checkpointSize(base) === size, `a checkpoint of size ${size}`, {
    timeoutMs: 10_000,
    intervalMs: 25,
  });
  return size;
}

async function copyKv(from: string, to: string): Promise<void> {
  for (const suffix of ["", "-wal", "-shm"]) {
    try {
      await Deno.copyFile(from + suffix, to + suffix);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      await Deno.remove(to + suffix).catch(() => {});
    }
  }
}

async function ready(base: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}/health?ready`);
  return { status: res.status, body: await res.json() };
}

const FAST = ["--checkpoint-interval", "50"];

Deno.test("checkpoint mirror: every signed checkpoint is mirrored to <kv>.checkpoint, signed by the log's key", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const kvPath = `${dir}/w.db`;
    await using server = await spawnServer(["--kv", kvPath, ...FAST]);
    await invoke(server.url, 3);
    const size = await signedUpToHead(server.url);
    const vkey = (await (await fetch(`${server.url}/vault/key`)).text()).trim();
    const verifier = await verifierFromVkey(vkey);
    // The mirror is written just after the checkpoint's KV commit (never before: a mirror
    // ahead of the log would read as a rollback), so it may lag the KV by a moment.
    const mirrored = await pollUntil(
      async () =>
        (await openCheckpoint(await Deno.readTextFile(`${kvPath}.checkpoint`), [verifier]))
          .checkpoint.size,
      (n) => n === size,
      { timeoutMs: 10_000, intervalMs: 25 },
    );
    assert.equal(mirrored, size);
    const r = await ready(server.url);
    assert.equal(r.status, 200);
    assert.deepEqual(
      { ok: r.body.checks.checkpoint_mirror.ok, file: r.body.checks.checkpoint_mirror.file },
      { ok: true, file: `${kvPath}.checkpoint` },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkpoint mirror: a server restarted on an older copy of its KV refuses to sign and is not ready", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const kvPath = `${dir}/w.db`;
    const mirrorDir = `${dir}/mirror`;
    const args = ["--kv", kvPath, "--checkpoint-mirror", mirrorDir, ...FAST];
    let server = await spawnServer(args);
    await invoke(server.url, 2);
    const oldSize = await signedUpToHead(server.url);
    await server.stop();
    await copyKv(kvPath, `${dir}/backup.db`);

    server = await spawnServer(args);
    await invoke(server.url, 3);
    const published = await signedUpToHead(server.url);
    await server.stop();
    assert.ok(published > oldSize);
    const mirrored = await Deno.readTextFile(`${mirrorDir}/latest.checkpoint`);

    // Roll back: the KV is replaced by the older copy; the mirror outside it stays.
    await copyKv(`${dir}/backup.db`, kvPath);
    server = await spawnServer(args);
    try {
      const r = await ready(server.url);
      assert.equal(r.status, 503);
      assert.equal(r.body.ready, false);
      assert.equal(r.body.checks.checkpoint_mirror.ok, false);
      assert.match(r.body.checks.checkpoint_mirror.error, /rolled back or replaced/);
      assert.equal(r.body.checks.checkpoint_mirror.size, published);

      // Calls still seal (nothing runs unsealed), but nothing is signed over them …
      await invoke(server.url, 1);
      const before = await checkpointSize(server.url);
      // Wall time on purpose: a real process checkpoints on its interval (FAST); that several
      // intervals pass with nothing signed is the point.
      await new Promise((r) => setTimeout(r, 400));
      assert.equal(await checkpointSize(server.url), before);
      assert.ok(before < await headSize(server.url));

      // … not even once the rolled-back log has grown past the published size (a fork).
      await invoke(server.url, published);
      // Wall time on purpose, as above.
      await new Promise((r) => setTimeout(r, 400));
      assert.equal(await checkpointSize(server.url), before);
      const forked = await ready(server.url);
      assert.equal(forked.status, 503);
      assert.match(forked.body.checks.checkpoint_mirror.error, /forks from the published log/);
      // The published checkpoint is never overwritten by the fork's.
      assert.equal(await Deno.readTextFile(`${mirrorDir}/latest.checkpoint`), mirrored);
    } finally {
      await server.stop();
    }
    assert.ok(
      server.logs.some((l) => l.includes("does not match its checkpoint mirror")),
      server.logs.join("\n"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkpoint mirror: a mirror not signed by the server's key is not trusted", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const kvPath = `${dir}/w.db`;
    await Deno.writeTextFile(
      `${kvPath}.checkpoint`,
      "warden/x\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— warden/x AAAAAAAAAAAAAAAA\n",
    );
    await using server = await spawnServer(["--kv", kvPath, ...FAST]);
    const r = await ready(server.url);
    assert.equal(r.status, 503);
    assert.match(
      r.body.checks.checkpoint_mirror.error,
      /not a checkpoint signed by this server's key/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkpoint mirror: none for --checkpoint-mirror none and for :memory:", async () => {
  for (const args of [["--kv", ":memory:"], ["--kv", "MEM", "--checkpoint-mirror", "none"]]) {
    const dir = await Deno.makeTempDir();
    try {
      const a = args.map((x) => x === "MEM" ? `${dir}/w.db` : x);
      const server = await spawnServer([...a, ...FAST]);
      try {
        await invoke(server.url, 1);
        await signedUpToHead(server.url);
        const r = await ready(server.url);
        assert.equal(r.status, 200);
        assert.equal(r.body.checks.checkpoint_mirror, undefined);
      } finally {
        await server.stop();
      }
      const files = [...Deno.readDirSync(dir)].map((e) => e.name);
      assert.ok(!files.some((f) => f.endsWith(".checkpoint")), files.join(","));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
});

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  ConfinementError,
  FileRootError,
  openConfined,
  resolveFileRoots,
} from "../../src/fs/mod.ts";
import { FileAccessError, inspectPath } from "../../src/evidence/mod.ts";

async function tempDirs() {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "warden_root_" }));
  const outside = await Deno.realPath(await Deno.makeTempDir({ prefix: "warden_outside_" }));
  const secret = join(outside, "secret.txt");
  await Deno.writeTextFile(secret, `OUTSIDE-SECRET-${crypto.randomUUID()}`);
  return {
    root,
    outside,
    secret,
    async cleanup() {
      await Deno.remove(root, { recursive: true });
      await Deno.remove(outside, { recursive: true });
    },
  };
}

const opts = (root: string) => ({ roots: [root], depth: 2, includeHidden: true, maxFiles: 100 });

Deno.test("openConfined() refuses a symbolic link at the final component", async () => {
  const t = await tempDirs();
  try {
    await Deno.symlink(t.secret, join(t.root, "link"));
    await assert.rejects(openConfined(join(t.root, "link"), { root: t.root }), ConfinementError);
  } finally {
    await t.cleanup();
  }
});

Deno.test("openConfined() refuses what a swapped parent directory leads to", async () => {
  const t = await tempDirs();
  try {
    // The path is checked as root/dir/secret.txt, but root/dir is a link to outside:
    // the opened descriptor's real location decides.
    await Deno.symlink(t.outside, join(t.root, "dir"));
    await assert.rejects(
      openConfined(join(t.root, "dir", "secret.txt"), { root: t.root }),
      /outside the configured roots/,
    );
  } finally {
    await t.cleanup();
  }
});

Deno.test("inspectPath() never reads outside the root while a file and a directory are swapped for links", async () => {
  const t = await tempDirs();
  const secretText = await Deno.readTextFile(t.secret);
  await Deno.writeTextFile(join(t.root, "plain.txt"), "inside");
  await Deno.mkdir(join(t.root, "real_dir"));
  await Deno.writeTextFile(join(t.root, "real_dir", "secret.txt"), "inside too");
  let swapping = true;
  // The attacker: flips root/x between a regular file and a link to the secret,
  // and root/d between a directory and a link to the outside directory.
  const attacker = (async () => {
    const x = join(t.root, "x");
    const d = join(t.root, "d");
    const tmpX = join(t.root, "x.tmp");
    const tmpD = join(t.root, "d.tmp");
    let flip = false;
    while (swapping) {
      flip = !flip;
      try {
        if (flip) {
          await Deno.symlink(t.secret, tmpX);
          await Deno.symlink(t.outside, tmpD);
        } else {
          await Deno.writeTextFile(tmpX, "inside");
          await Deno.mkdir(tmpD);
          await Deno.writeTextFile(join(tmpD, "secret.txt"), "inside too");
        }
        await Deno.rename(tmpX, x);
        await Deno.remove(d, { recursive: true }).catch(() => {});
        await Deno.rename(tmpD, d);
      } catch {
        await Deno.remove(tmpX, { recursive: true }).catch(() => {});
        await Deno.remove(tmpD, { recursive: true }).catch(() => {});
      }
      await new Promise((ok) => setTimeout(ok, 0));
    }
  })();
  try {
    let reads = 0;
    for (let i = 0; i < 400; i++) {
      for (const path of ["x", "d/secret.txt", "d"]) {
        try {
          const got = await inspectPath(path, opts(t.root));
          reads++;
          const seen = JSON.stringify(got);
          assert.ok(!seen.includes(secretText.slice(0, 20)), `read outside through ${path}`);
          if (got.kind === "file") assert.match(got.head ?? "", /^inside/);
        } catch (e) {
          if (!(e instanceof FileAccessError)) throw e;
        }
      }
    }
    assert.ok(reads > 0, "the race never let a legitimate read through");
  } finally {
    swapping = false;
    await attacker;
    await t.cleanup();
  }
});

Deno.test("inspectPath() refuses a hard link to an outside file unless policy allows it", async () => {
  const t = await tempDirs();
  try {
    await Deno.link(t.secret, join(t.root, "hard.txt"));
    await assert.rejects(inspectPath("hard.txt", opts(t.root)), /2 hard links/);
    const allowed = await inspectPath("hard.txt", { ...opts(t.root), allowHardlinks: true });
    assert.equal(allowed.kind, "file");
  } finally {
    await t.cleanup();
  }
});

Deno.test("inspectPath() refuses operator key directories and protected paths inside a root", async () => {
  const t = await tempDirs();
  try {
    await Deno.mkdir(join(t.root, "keys"));
    await Deno.writeTextFile(join(t.root, "keys", "operator.key"), '{"name":"a","seed":"x"}');
    await Deno.writeTextFile(join(t.root, "keys", "operator.pub"), "pub");
    await Deno.writeTextFile(join(t.root, "warden.db"), "kv");
    await assert.rejects(inspectPath("keys/operator.key", opts(t.root)), /operator key/);
    await assert.rejects(inspectPath("keys/operator.pub", opts(t.root)), /operator key directory/);
    await assert.rejects(
      inspectPath("warden.db", { ...opts(t.root), protectedPaths: [join(t.root, "warden.db")] }),
      /Warden's own secrets/,
    );
  } finally {
    await t.cleanup();
  }
});

Deno.test("resolveFileRoots() defaults to warden-files/ beside the KV file, never the working directory", async () => {
  const t = await tempDirs();
  try {
    const kv = join(t.outside, "warden.db");
    const files = await resolveFileRoots({ kvPath: kv, protectedPaths: [kv] });
    assert.deepEqual(files.roots, [join(t.outside, "warden-files")]);
    assert.equal((await Deno.stat(join(t.outside, "warden-files"))).isDirectory, true);
    assert.ok(!files.roots.includes(Deno.cwd()));
    const memory = await resolveFileRoots({ kvPath: ":memory:" });
    assert.deepEqual(memory.roots, []);
    assert.match(memory.unavailable!, /files\.roots/);
    const deploy = await resolveFileRoots({ onDeploy: true, configured: ["/"] });
    assert.deepEqual(deploy.roots, []);
    assert.match(deploy.unavailable!, /Deno Deploy/);
  } finally {
    await t.cleanup();
  }
});

Deno.test("resolveFileRoots() refuses a root holding the KV file or an operator key directory", async () => {
  const t = await tempDirs();
  try {
    const kv = join(t.root, "warden.db");
    await Deno.writeTextFile(kv, "kv");
    await assert.rejects(
      resolveFileRoots({ configured: [t.root], kvPath: kv, protectedPaths: [kv] }),
      (e: Error) => e instanceof FileRootError && e.message.includes(kv),
    );
    await Deno.mkdir(join(t.outside, "home/.warden/alice"), { recursive: true });
    await Deno.writeTextFile(join(t.outside, "home/.warden/alice/operator.key"), "{}");
    await assert.rejects(
      resolveFileRoots({ configured: [join(t.outside, "home")] }),
      /operator key directory/,
    );
    // "/" holds the KV file: refused, whatever else it holds.
    await assert.rejects(
      resolveFileRoots({ configured: ["/"], protectedPaths: [kv] }),
      FileRootError,
    );
  } finally {
    await t.cleanup();
  }
});

// deno-lint-ignore-file no-explicit-any -- envelopes are probed field by field
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCliWithin } from "../_helpers/cli.ts";
import { connectStreamable, envelopeOf } from "../_helpers/client.ts";
import { startServer } from "../_helpers/server.ts";

Deno.test("inspect_file reads only warden-files/ beside the KV file by default", async () => {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "warden_default_root_" }));
  const kvPath = join(dir, "warden.db");
  const kv = await Deno.openKv(kvPath);
  const server = await startServer({ kv, args: ["--kv", kvPath] });
  try {
    await Deno.writeTextFile(join(dir, "warden-files", "note.txt"), "hello");
    const { client } = await connectStreamable(server.url);
    const inspect = async (path: string) =>
      envelopeOf(await client.callTool({ name: "inspect_file", arguments: { path } })) as any;
    const ok = await inspect("note.txt");
    assert.equal(ok.status, "OK", ok.message);
    assert.equal(ok.data.inspection.head, "hello");
    for (const path of ["/etc/passwd", kvPath, "deno.json", join(Deno.cwd(), "deno.json")]) {
      const refused = await inspect(path);
      assert.equal(refused.status, "ERROR", `${path} was read`);
    }
    await client.close();
  } finally {
    await server.close();
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("inspect_file without a KV file or files.roots says how to configure roots", async () => {
  await using server = await startServer();
  const { client } = await connectStreamable(server.url);
  const env: any = envelopeOf(
    await client.callTool({ name: "inspect_file", arguments: { path: "deno.json" } }),
  );
  assert.equal(env.status, "ERROR");
  assert.match(env.message, /files\.roots/);
  await client.close();
});

Deno.test("inspect_file stays inside configured roots and reads dotfiles only under policy files.include_hidden", async () => {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "warden_roots_" }));
  await Deno.writeTextFile(join(root, "a.txt"), "a");
  await Deno.writeTextFile(join(root, ".env"), "SECRET=1");
  const server = await startServer({ policy: { files: { roots: [root] } } });
  try {
    const { client } = await connectStreamable(server.url);
    const inspect = async (args: Record<string, unknown>) =>
      envelopeOf(await client.callTool({ name: "inspect_file", arguments: args })) as any;
    const ok = await inspect({ path: "a.txt" });
    assert.equal(ok.status, "OK", ok.message);
    assert.match(ok.data.inspection.sha256, /^[0-9a-f]{64}$/);
    assert.equal((await inspect({ path: "../" })).status, "ERROR");
    assert.equal((await inspect({ path: "/etc/passwd" })).status, "ERROR");
    assert.match((await inspect({ path: ".env" })).message, /policy files\.include_hidden/);
    // A client cannot lift the rule itself: passing include_hidden is refused (VOID), never read.
    const asked = await inspect({ path: ".env", include_hidden: true });
    assert.equal(asked.policy_verdict, "VOID");
    assert.match(asked.message, /include_hidden is not a client argument/);
    assert.ok(!JSON.stringify(asked).includes("SECRET=1"));
    const listing = await inspect({ path: "." });
    assert.equal(listing.status, "OK", listing.message);
    assert.deepEqual(listing.data.inspection.entries.map((e: { path: string }) => e.path), [
      "a.txt",
    ]);
    await client.close();
  } finally {
    await server.close();
  }
  // The operator can: policy files.include_hidden lists and reads dotfiles.
  const open = await startServer({ policy: { files: { roots: [root], include_hidden: true } } });
  try {
    const { client } = await connectStreamable(open.url);
    const env = envelopeOf(
      await client.callTool({ name: "inspect_file", arguments: { path: ".env" } }),
    ) as any;
    assert.equal(env.status, "OK", env.message);
    assert.equal(env.data.inspection.size, 8);
    await client.close();
  } finally {
    await open.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("warden serve refuses a file root that holds the KV file", async () => {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "warden_bad_root_" }));
  try {
    const policy = join(dir, "policy.json");
    await Deno.writeTextFile(policy, JSON.stringify({ files: { roots: [dir] } }));
    const r = await runCliWithin(
      ["serve", "--port", "0", "--kv", join(dir, "warden.db"), "--policy", policy],
      {},
      30_000,
    );
    assert.equal(r.killed, false, "the server started instead of refusing");
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /files\.roots/);
    assert.match(r.stderr, /warden\.db/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

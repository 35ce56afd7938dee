// deno-lint-ignore-file no-explicit-any -- envelopes and vault entries are probed field by field
/**
 * Minted tokens and users: real HTTP, the SDK's v1 client, real KV.
 * Roles from a token reach F11; expired and revoked tokens are 401; every
 * vault entry names the principal and how it authenticated.
 */
import assert from "node:assert/strict";

const assertEquals = (a: unknown, b: unknown, m?: string) => assert.deepEqual(a, b, m);
const assertMatch = (s: string, re: RegExp) => assert.match(s, re);
const assertRejects = (fn: () => Promise<unknown>) => assert.rejects(fn);
import { Client, envelopeOf, StreamableHTTPClientTransport } from "../_helpers/client.ts";
import { startServer, type TestServer } from "../_helpers/server.ts";
import { runCli } from "../_helpers/cli.ts";
import {
  addUser,
  createToken,
  listTokens,
  removeUser,
  revokeToken,
  verifyPassword,
} from "../../src/identity/mod.ts";

const POLICY = { tools: { calculate: { roles: ["ops"] } } };

async function connect(server: TestServer, secret?: string) {
  const client = new Client({ name: "identity-test", version: "1" });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), {
      requestInit: secret ? { headers: { authorization: `Bearer ${secret}` } } : undefined,
    }),
  );
  return client;
}

async function entryAt(server: TestServer, index: number): Promise<any> {
  const e = await server.app.ledger.entry(index);
  return JSON.parse(new TextDecoder().decode(e!.bytes));
}

Deno.test("identity: a token's roles reach F11 and the vault names each principal", async () => {
  await using server = await startServer({ policy: POLICY });
  const alice = await createToken(server.kv, { name: "alice", roles: ["ops"] });
  const bob = await createToken(server.kv, { name: "bob", roles: ["dev"] });
  const a = await connect(server, alice.secret);
  const b = await connect(server, bob.secret);
  try {
    const ra = envelopeOf(
      await a.callTool({ name: "calculate", arguments: { expression: "2+3" } }),
    );
    assertEquals(ra.status, "OK", ra.message);
    const rb = envelopeOf(
      await b.callTool({ name: "calculate", arguments: { expression: "2+3" } }),
    );
    assertEquals(rb.policy_verdict, "VOID");
    assertMatch(JSON.stringify(rb), /principal bob \(roles: dev\) lacks a role/);
    const ea = await entryAt(server, ra._constitutional.vault.index);
    assertEquals([ea.principal, ea.principal_kind], ["alice", "token"]);
    const eb = await entryAt(server, rb._constitutional.vault.index);
    assertEquals([eb.principal, eb.principal_kind, eb.verdict], ["bob", "token", "VOID"]);
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("identity: with --token, anonymous is 401; minted, expired and revoked tokens", async () => {
  await using server = await startServer({
    args: ["--token", "a-static-token-of-24-chars"],
    policy: POLICY,
  });
  const get = (secret?: string) =>
    fetch(`${server.url}/tools`, {
      headers: secret ? { authorization: `Bearer ${secret}` } : {},
    }).then(async (r) => ({
      status: r.status,
      www: r.headers.get("www-authenticate"),
      body: await r.text(),
    }));
  assertEquals((await get()).status, 401);
  assertEquals((await get("a-static-token-of-24-chars")).status, 200);
  const live = await createToken(server.kv, { name: "carol", roles: ["ops"] });
  assertEquals((await get(live.secret)).status, 200);
  const expired = await createToken(server.kv, {
    name: "dave",
    expiresInMs: 1000,
    nowMs: Date.now() - 5000,
  });
  const e = await get(expired.secret);
  assertEquals(e.status, 401);
  assertMatch(e.www ?? "", /invalid_token/);
  assertEquals(await revokeToken(server.kv, "carol"), 1);
  assertEquals((await get(live.secret)).status, 401);
  assertEquals((await get("wdn_not-a-real-token")).status, 401);
  // The static token is the bootstrap admin principal "bearer".
  const admin = await connect(server, "a-static-token-of-24-chars");
  try {
    const r = envelopeOf(await admin.callTool({ name: "get_time", arguments: {} }));
    const entry = await entryAt(server, r._constitutional.vault.index);
    assertEquals([entry.principal, entry.principal_kind], ["bearer", "static"]);
  } finally {
    await admin.close();
  }
});

Deno.test("identity: without --token a bad token is 401 but no token is anonymous", async () => {
  await using server = await startServer({ policy: POLICY });
  const r = await fetch(`${server.url}/tools`, {
    headers: { authorization: "Bearer wdn_bogus" },
  });
  await r.body?.cancel();
  assertEquals(r.status, 401);
  const anon = await connect(server);
  try {
    const res = envelopeOf(await anon.callTool({ name: "get_time", arguments: {} }));
    const entry = await entryAt(server, res._constitutional.vault.index);
    assertEquals([entry.principal, entry.principal_kind], ["anonymous", "anonymous"]);
    const calc = envelopeOf(
      await anon.callTool({ name: "calculate", arguments: { expression: "1+1" } }),
    );
    assertEquals(calc.policy_verdict, "VOID");
  } finally {
    await anon.close();
  }
});

Deno.test("identity: tokens are stored hashed; passwords with scrypt", async () => {
  using kv = await Deno.openKv(":memory:");
  const { secret, record } = await createToken(kv, { name: "erin", scopes: ["mcp:read"] });
  const raw = JSON.stringify(
    await Array.fromAsync(kv.list({ prefix: [] }), (e) => [e.key, e.value]),
  );
  assert(!raw.includes(secret), "the secret is not stored");
  assert(!raw.includes(secret.slice(4, 20)), "no part of the secret is stored");
  assertEquals((await listTokens(kv)).map((t) => t.id), [record.id]);

  await addUser(kv, { name: "alice", password: "correct horse battery", roles: ["operator"] });
  const stored = JSON.stringify(await Array.fromAsync(kv.list({ prefix: [] }), (e) => e.value));
  assert(!stored.includes("correct horse"), "the password is not stored");
  assertMatch(stored, /"kdf":"scrypt"/);
  const ok = await verifyPassword(kv, "alice", "correct horse battery");
  assertEquals([ok?.id, ok?.kind, ok?.roles], ["alice", "user", ["operator"]]);
  assertEquals(await verifyPassword(kv, "alice", "wrong password!"), undefined);
  assertEquals(await verifyPassword(kv, "nobody", "correct horse battery"), undefined);
  await assertRejects(() => addUser(kv, { name: "x", password: "short" }));
  assertEquals(await removeUser(kv, "alice"), true);
  assertEquals(await verifyPassword(kv, "alice", "correct horse battery"), undefined);
});

Deno.test("identity CLI: token create/list/revoke and user add/list/remove round-trip", async () => {
  const dir = await Deno.makeTempDir();
  const kvFile = `${dir}/w.db`;
  try {
    const created = await runCli([
      "token",
      "create",
      "--name",
      "alice",
      "--roles",
      "ops",
      "--scopes",
      "mcp:read",
      "--expires",
      "30d",
      "--kv",
      kvFile,
    ]);
    assertEquals(created.code, 0, created.stderr);
    const lines = created.stdout.trimEnd().split("\n");
    const secret = lines.at(-1)!;
    assertMatch(secret, /^wdn_[A-Za-z0-9_-]{43}$/);
    assert(!lines.slice(0, -1).join("\n").includes(secret), "the secret appears once");

    const listed = await runCli(["token", "list", "--kv", kvFile]);
    assertEquals(listed.code, 0, listed.stderr);
    assertMatch(listed.stdout, /\talice\tactive\troles=ops\tscopes=mcp:read\texpires=20/);
    assert(!listed.stdout.includes(secret));

    const kv = await Deno.openKv(kvFile);
    try {
      await using server = await startServer({
        kv,
        args: ["--token", "a-static-token-of-24-chars"],
      });
      const ok = await fetch(`${server.url}/tools`, {
        headers: { authorization: `Bearer ${secret}` },
      });
      await ok.body?.cancel();
      assertEquals(ok.status, 200);
      const revoked = await runCli(["token", "revoke", "alice", "--kv", kvFile]);
      assertEquals(revoked.code, 0, revoked.stderr);
      const after = await fetch(`${server.url}/tools`, {
        headers: { authorization: `Bearer ${secret}` },
      });
      await after.body?.cancel();
      assertEquals(after.status, 401);
    } finally {
      kv.close();
    }
    assertMatch((await runCli(["token", "list", "--kv", kvFile])).stdout, /\talice\trevoked\t/);
    assertEquals((await runCli(["token", "revoke", "alice", "--kv", kvFile])).code, 1);

    const added = await runCli(["user", "add", "bob", "--roles", "operator", "--kv", kvFile], {
      WARDEN_PASSWORD: "a long enough password",
    });
    assertEquals(added.code, 0, added.stderr);
    // The password may come on stdin instead.
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../../main.ts", import.meta.url).pathname,
        "user",
        "add",
        "carol",
        "--kv",
        kvFile,
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode("carol's password\n"));
    await w.close();
    const out = await child.output();
    assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
    const users = await runCli(["user", "list", "--kv", kvFile]);
    assertEquals(users.stdout, "bob\troles=operator\ncarol\troles=\n");
    const check = await Deno.openKv(kvFile);
    try {
      assertEquals((await verifyPassword(check, "carol", "carol's password"))?.id, "carol");
      assertEquals((await verifyPassword(check, "bob", "a long enough password"))?.roles, [
        "operator",
      ]);
    } finally {
      check.close();
    }
    assertEquals((await runCli(["user", "remove", "bob", "--kv", kvFile])).code, 0);
    assertEquals((await runCli(["user", "list", "--kv", kvFile])).stdout, "carol\troles=\n");
    assertEquals((await runCli(["user", "remove", "bob", "--kv", kvFile])).code, 1);
    assertEquals((await runCli(["token", "create", "--kv", kvFile])).code, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("identity: the static --token admin keeps the default roles, so a rule for `user` still admits it", async () => {
  await using server = await startServer({
    args: ["--token", "a-static-token-of-24-chars"],
    policy: { tools: { get_time: { roles: ["user"] } } },
  });
  const admin = await connect(server, "a-static-token-of-24-chars");
  try {
    const r = envelopeOf(await admin.callTool({ name: "get_time", arguments: {} }));
    assertEquals(r.policy_verdict, "SEAL", JSON.stringify(r._constitutional.reasons));
  } finally {
    await admin.close();
  }
});

// deno-lint-ignore-file no-explicit-any -- vault entries and results are probed field by field
/**
 * Upstream credentials: kept in KV encrypted (AES-256-GCM, key outside the
 * KV, upstream name bound as additional data), set with the CLI from stdin,
 * presented to the upstream by Warden, and never the caller's own token. A
 * real upstream on loopback (its own process) demands the credential and
 * records every Authorization header it was sent.
 */
import assert from "node:assert/strict";
import {
  createCredentialStore,
  CredentialError,
  credentialHeaders,
  generateCredentialKeyString,
  importCredentialKey,
} from "../../src/gateway/credentials.ts";
import { parseUpstreams } from "../../src/gateway/mod.ts";
import { connectStreamable } from "../_helpers/client.ts";
import { startServer, type TestServer } from "../_helpers/server.ts";
import { startAuthUpstream } from "../_helpers/auth_upstream_process.ts";

const UPSTREAM_SECRET = "up-secret-7f3c9a1b2d";
const CALLER_SECRET = "caller-secret-51e0";

async function kvText(kv: Deno.Kv): Promise<string> {
  let all = "";
  for await (const e of kv.list({ prefix: [] })) {
    all += JSON.stringify(e.key) +
      JSON.stringify(
        e.value,
        (_k, v) =>
          v instanceof Uint8Array
            ? new TextDecoder().decode(v)
            : typeof v === "bigint"
            ? String(v)
            : v,
      );
  }
  return all;
}

Deno.test("credentials: with maxAgeMs a read answers until it ages; its own set and remove apply at once", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const key = await importCredentialKey(generateCredentialKeyString());
    let t = 1_000_000;
    const store = createCredentialStore(kv, key, undefined, { now: () => t });
    // Another process: a second store on the same KV.
    const other = createCredentialStore(kv, key);
    const bearer = (token: string) => ({
      kind: "bearer",
      headers: { authorization: `Bearer ${token}` },
    });
    const maxAgeMs = 5_000;
    assert.equal(await store.get("ev", { maxAgeMs }), undefined);
    await other.set("ev", { kind: "bearer", token: "first" });
    assert.equal(await store.get("ev", { maxAgeMs }), undefined, "absent is remembered too");
    assert.deepEqual(await store.get("ev"), bearer("first"), "without maxAgeMs KV is read");
    await other.set("ev", { kind: "bearer", token: "second" });
    t += maxAgeMs - 1;
    assert.deepEqual(await store.get("ev", { maxAgeMs }), bearer("first"), "still fresh");
    t += 1;
    assert.deepEqual(await store.get("ev", { maxAgeMs }), bearer("second"), "aged: read again");
    await store.set("ev", { kind: "bearer", token: "third" });
    assert.deepEqual(await store.get("ev", { maxAgeMs }), bearer("third"), "own set at once");
    const copy = await store.get("ev", { maxAgeMs });
    copy!.headers.authorization = "tampered";
    assert.deepEqual(await store.get("ev", { maxAgeMs }), bearer("third"), "answers are copies");
    assert.equal(await store.remove("ev"), true);
    assert.equal(await store.get("ev", { maxAgeMs }), undefined, "own remove at once");
  } finally {
    kv.close();
  }
});

Deno.test("credentials: stored encrypted, bound to their upstream, listed without values", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const key = await importCredentialKey(generateCredentialKeyString());
    const store = createCredentialStore(kv, key);
    const summary = await store.set("ev", { kind: "bearer", token: UPSTREAM_SECRET });
    assert.deepEqual([summary.kind, summary.header_names], ["bearer", ["authorization"]]);
    assert.deepEqual(await store.get("ev"), {
      kind: "bearer",
      headers: { authorization: `Bearer ${UPSTREAM_SECRET}` },
    });
    assert.equal(await store.get("other"), undefined);
    assert.ok(!(await kvText(kv)).includes(UPSTREAM_SECRET), "no plaintext in KV");
    assert.ok(!JSON.stringify(await store.list()).includes(UPSTREAM_SECRET));

    // A record copied to another upstream's key does not decrypt (the name is bound in).
    const rec = await kv.get(["upstream_credential", "ev"]);
    await kv.set(["upstream_credential", "evil"], { ...(rec.value as object), upstream: "evil" });
    await assert.rejects(() => store.get("evil"), CredentialError);
    // Another key cannot open it either.
    const other = createCredentialStore(
      kv,
      await importCredentialKey(generateCredentialKeyString()),
    );
    await assert.rejects(() => other.get("ev"), /does not decrypt/);
    // Without a key, set and get say how to configure one.
    const none = createCredentialStore(kv, undefined);
    assert.equal(none.available, false);
    await assert.rejects(() => none.get("ev"), /WARDEN_CREDENTIAL_KEY/);
    await assert.rejects(
      () => none.set("x", { kind: "bearer", token: "t" }),
      /WARDEN_CREDENTIAL_KEY/,
    );
    assert.equal(await store.remove("ev"), true);
    assert.equal(await store.remove("ev"), false);
  } finally {
    kv.close();
  }
});

Deno.test("credentials: header injection, reserved headers and oversized values are refused", async () => {
  const bad: [unknown, RegExp][] = [
    [{ kind: "bearer", token: "" }, /non-empty/],
    [{ kind: "bearer", token: "a b" }, /without spaces/],
    [{ kind: "bearer", token: "a\r\nX-Evil: 1" }, /visible characters/],
    [{ kind: "bearer", token: "x".repeat(8193) }, /8192 bytes/],
    [{ kind: "headers", headers: {} }, /needs a header/],
    [{ kind: "headers", headers: { "x-key": "v\r\nhost: evil" } }, /control characters/],
    [{ kind: "headers", headers: { "bad name": "v" } }, /not a header name/],
    [{ kind: "headers", headers: { Host: "evil" } }, /set by the transport/],
    [{ kind: "headers", headers: { "Mcp-Session-Id": "s" } }, /set by the transport/],
    [
      {
        kind: "headers",
        headers: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`x-${i}`, "v"])),
      },
      /at most 32/,
    ],
  ];
  for (const [credential, message] of bad) {
    assert.throws(
      () => credentialHeaders(credential as never),
      (e: unknown) => e instanceof CredentialError && message.test(e.message),
      JSON.stringify(credential).slice(0, 80),
    );
  }
  await assert.rejects(() => importCredentialKey("nope"), CredentialError);
  await assert.rejects(() => importCredentialKey("warden-credential-key:v1:AAAA"), /32 bytes/);
});

async function cli(args: string[], stdin: string, env: Record<string, string> = {}) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../../main.ts", import.meta.url).pathname, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env,
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(stdin));
  await w.close();
  const out = await child.output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { code: out.code, text };
}

Deno.test({
  name:
    "credentials: Warden presents the stored bearer to the upstream, never the caller's token; the vault records the kind only",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "warden-cred-" });
    const kvPath = `${dir}/warden.db`;
    const upstream = await startAuthUpstream({ EXPECT_BEARER: UPSTREAM_SECRET });
    let server: TestServer | undefined;
    let kv: Deno.Kv | undefined;
    try {
      // Set by the CLI, secret on stdin; the output never repeats it.
      const set = await cli(
        ["upstream", "credential", "set", "auth", "--bearer", "--kv", kvPath],
        UPSTREAM_SECRET + "\n",
      );
      assert.equal(set.code, 0, set.text);
      assert.ok(!set.text.includes(UPSTREAM_SECRET), set.text);
      const key = await Deno.stat(`${kvPath}.credential-key`);
      assert.equal(key.mode! & 0o077, 0, "the key file is private");
      const listed = await cli(["upstream", "credential", "list", "--kv", kvPath], "");
      assert.match(listed.text, /^auth\tbearer\theaders=authorization\t/m);
      assert.ok(!listed.text.includes(UPSTREAM_SECRET));

      kv = await Deno.openKv(kvPath);
      server = await startServer({
        kv,
        args: ["--kv", kvPath, "--token", CALLER_SECRET],
        upstreams: parseUpstreams(
          JSON.stringify([{ name: "auth", transport: "streamable-http", url: upstream.url }]),
        ),
      });
      const { client } = await connectStreamable(server.url, {
        headers: { authorization: `Bearer ${CALLER_SECRET}` },
      });
      const names = (await client.listTools()).tools.map((t) => t.name);
      assert.ok(names.includes("auth__whoami"), names.join(", "));
      const r: any = await client.callTool({ name: "auth__whoami", arguments: { note: "hi" } });
      assert.equal(r.content[0].text, "let in: hi");
      const entry = JSON.parse(
        new TextDecoder().decode(
          (await server.app.ledger.entry(r._meta["warden/vault"].index))!.bytes,
        ),
      );
      assert.equal(entry.upstream_credential, "bearer");
      assert.equal(server.app.gateway.server("auth")!.credential, "bearer");
      await client.close();

      // The upstream saw Warden's credential on every request and never the caller's token.
      const seen = await upstream.seen();
      assert.ok(seen.length >= 2);
      for (const s of seen) assert.equal(s.authorization, `Bearer ${UPSTREAM_SECRET}`);
      assert.ok(!JSON.stringify(seen).includes(CALLER_SECRET));
      // Nothing Warden keeps or serves holds the secret: KV, the registry API, the vault.
      assert.ok(!(await kvText(kv)).includes(UPSTREAM_SECRET), "KV holds no plaintext");
      const api = await fetch(`${server.url}/api/servers/auth`, {
        headers: { authorization: `Bearer ${CALLER_SECRET}` },
      });
      assert.ok(!(await api.text()).includes(UPSTREAM_SECRET));
    } finally {
      await server?.close();
      kv?.close();
      await upstream.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "credentials: without a credential the upstream refuses Warden, and the caller's token is still not forwarded",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const upstream = await startAuthUpstream({ EXPECT_BEARER: UPSTREAM_SECRET });
    const dir = await Deno.makeTempDir({ prefix: "warden-nocred-" });
    const kv = await Deno.openKv(`${dir}/warden.db`);
    let server: TestServer | undefined;
    try {
      server = await startServer({
        kv,
        args: ["--kv", `${dir}/warden.db`, "--token", CALLER_SECRET],
        upstreams: parseUpstreams(
          JSON.stringify([{ name: "auth", transport: "streamable-http", url: upstream.url }]),
        ),
      });
      const { client } = await connectStreamable(server.url, {
        headers: { authorization: `Bearer ${CALLER_SECRET}` },
      });
      const names = (await client.listTools()).tools.map((t) => t.name);
      assert.ok(!names.includes("auth__whoami"));
      assert.equal(server.app.gateway.server("auth")!.credential, "none");
      await client.close();
      const seen = await upstream.seen();
      assert.ok(seen.length >= 1, "Warden tried");
      for (const s of seen) assert.equal(s.authorization, null);
      // No credential was ever stored, so no key file was made beside the KV.
      await assert.rejects(
        () => Deno.stat(`${dir}/warden.db.credential-key`),
        Deno.errors.NotFound,
      );
    } finally {
      await server?.close();
      kv.close();
      await upstream.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "credentials: a runtime registration's headers go to the encrypted store, not the registry record",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const upstream = await startAuthUpstream({
      EXPECT_HEADER: "X-Api-Key",
      EXPECT_VALUE: UPSTREAM_SECRET,
    });
    let server: TestServer | undefined;
    try {
      server = await startServer({
        args: [
          "--registration-token",
          "registration-token-0123456789",
          "--registry-allow-hosts",
          "127.0.0.1",
        ],
      });
      const res = await fetch(`${server.url}/api/servers/register`, {
        method: "POST",
        headers: {
          authorization: "Bearer registration-token-0123456789",
          "content-type": "application/json",
        },
        body: JSON.stringify({
          server_name: "auth",
          endpoint: upstream.url,
          version: "1.0.0",
          headers: { "X-Api-Key": UPSTREAM_SECRET },
        }),
      });
      const body = await res.text();
      assert.equal(res.status, 201, body);
      assert.ok(!body.includes(UPSTREAM_SECRET));
      assert.ok(!(await kvText(server.kv)).includes(UPSTREAM_SECRET), "KV holds no plaintext");
      const { client } = await connectStreamable(server.url);
      const r: any = await client.callTool({ name: "auth__whoami", arguments: {} });
      assert.equal(r.content[0].text, "let in");
      await client.close();
      for (const s of await upstream.seen()) assert.equal(s.header, UPSTREAM_SECRET);
    } finally {
      await server?.close();
      await upstream.stop();
    }
  },
});

Deno.test({
  name:
    "credentials: a credential rotated while Warden is connected applies from the next call, in the same session",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const ROTATED = "up-secret-rotated-4e8d21";
    const dir = await Deno.makeTempDir({ prefix: "warden-rotate-" });
    const kvPath = `${dir}/warden.db`;
    const upstream = await startAuthUpstream({ EXPECT_BEARER: UPSTREAM_SECRET });
    let server: TestServer | undefined;
    let kv: Deno.Kv | undefined;
    try {
      const set = (secret: string) =>
        cli(["upstream", "credential", "set", "auth", "--bearer", "--kv", kvPath], secret + "\n");
      assert.equal((await set(UPSTREAM_SECRET)).code, 0);
      kv = await Deno.openKv(kvPath);
      server = await startServer({
        kv,
        args: ["--kv", kvPath, "--token", CALLER_SECRET],
        upstreams: parseUpstreams(
          JSON.stringify([{ name: "auth", transport: "streamable-http", url: upstream.url }]),
        ),
      });
      const { client } = await connectStreamable(server.url, {
        headers: { authorization: `Bearer ${CALLER_SECRET}` },
      });
      const call = async () =>
        ((await client.callTool({ name: "auth__whoami", arguments: {} })) as any).content[0].text;
      assert.equal(await call(), "let in");
      // The upstream's secret is rotated at its side and, by another process (the CLI on the
      // same KV file), in Warden's store; nothing is restarted or re-registered.
      await upstream.expect(ROTATED);
      assert.equal((await set(ROTATED)).code, 0);
      assert.equal(await call(), "let in", "the next call presents the new credential");
      const seen = await upstream.seen();
      assert.equal(seen.at(-1)!.authorization, `Bearer ${ROTATED}`);
      assert.ok(
        seen.some((s) => s.authorization === `Bearer ${UPSTREAM_SECRET}`),
        "the old one was in use before",
      );
      await client.close();
    } finally {
      await server?.close();
      kv?.close();
      await upstream.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

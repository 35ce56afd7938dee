// deno-lint-ignore-file no-explicit-any -- vault entries and JSON answers are probed field by field
/**
 * `--oidc-issuer` (issue 12): Warden accepts access tokens of an external
 * OpenID provider — here a real `oidc-provider` on loopback — discovering it,
 * reading its keys through the SSRF guard, following its key rotation, mapping
 * a claim to roles; and refuses every bad token with a 401 whose
 * WWW-Authenticate says why. A hostile provider (a loopback Deno.serve) shows
 * the size and time limits of the key-set read.
 */
import assert from "node:assert/strict";
import { exportJWK, generateKeyPair, SignJWT, UnsecuredJWT } from "jose";
import { connectV1As, envelopeOf } from "../_helpers/client.ts";
import { startOidcProvider } from "../_helpers/oidc_provider.ts";
import { sealedEntries, startServer } from "../_helpers/server.ts";

const POLICY = {
  roles: { ops: { tools: ["calculate"] } },
  rate_limits: { per_principal_per_minute: 0, per_ip_per_minute: 0 },
};

function oidcArgs(issuer: string, extra: string[] = []): string[] {
  const host = new URL(issuer).host;
  return [
    "--oidc-issuer",
    issuer,
    "--oidc-allow-hosts",
    host,
    "--oidc-roles-claim",
    "groups",
    "--oidc-role-map",
    "idp-ops=ops",
    ...extra,
  ];
}

async function refusal(base: string, token: string) {
  const res = await fetch(`${base}/tools`, { headers: { authorization: `Bearer ${token}` } });
  await res.body?.cancel();
  return { status: res.status, challenge: res.headers.get("www-authenticate") ?? "" };
}

Deno.test("oidc: a real provider's tokens work end to end; every bad token is a 401 saying why", async (t) => {
  await using idp = await startOidcProvider();
  await using s = await startServer({ args: oidcArgs(idp.issuer), policy: POLICY });
  const resource = `${s.url}/mcp`;

  await t.step(
    "metadata names the external provider; no token is a 401 pointing at it",
    async () => {
      const meta = await (await fetch(`${s.url}/.well-known/oauth-protected-resource/mcp`)).json();
      assert.deepEqual(meta.authorization_servers, [idp.issuer]);
      assert.equal(meta.resource, resource);
      const res = await fetch(`${s.url}/mcp`, { method: "POST" });
      await res.body?.cancel();
      assert.equal(res.status, 401);
      assert.match(
        res.headers.get("www-authenticate")!,
        new RegExp(`resource_metadata="${s.url}/\\.well-known/oauth-protected-resource/mcp"`),
      );
    },
  );

  await t.step(
    "a good token: the SDK client lists and calls what the mapped role grants",
    async () => {
      const token = await idp.token(resource, { groups: ["idp-ops", "unmapped"] });
      const client = await connectV1As(s.url, token);
      try {
        const names = (await client.listTools()).tools.map((x) => x.name);
        assert.deepEqual(names, ["calculate"], "role ops (from idp-ops) grants calculate only");
        const r = await client.callTool({ name: "calculate", arguments: { expression: "6*7" } });
        assert.equal(envelopeOf(r as any).policy_verdict, "SEAL", JSON.stringify(r));
      } finally {
        await client.close();
      }
      const calls = (await sealedEntries(s)).filter((e) => e.tool === "calculate");
      assert.equal(calls.length, 1);
      assert.deepEqual(
        [calls[0].principal, calls[0].principal_kind, calls[0].client_id],
        [`${idp.issuer}#svc-client`, "oauth", "svc-client"],
        "principal is issuer + sub",
      );
      // Without the mapped group the caller has no role: nothing listed.
      const plain = await connectV1As(s.url, await idp.token(resource, { groups: ["unmapped"] }));
      try {
        assert.deepEqual((await plain.listTools()).tools, []);
      } finally {
        await plain.close();
      }
    },
  );

  await t.step("the provider rotates its key: the new kid is fetched at once", async () => {
    await idp.rotate();
    const token = await idp.token(resource, { groups: ["idp-ops"] });
    assert.equal(JSON.parse(atob(token.split(".")[0])).kid, "k2");
    const client = await connectV1As(s.url, token);
    await client.close();
  });

  const refused = async (token: string, why: RegExp) => {
    const r = await refusal(s.url, token);
    assert.equal(r.status, 401);
    assert.match(
      r.challenge,
      /^Bearer resource_metadata="[^"]+", scope="mcp", error="invalid_token"/,
    );
    assert.match(r.challenge, why);
  };

  await t.step("a token for another audience", async () => {
    await refused(await idp.token("https://other.example/mcp"), /audience is not this server/);
  });

  await t.step("a token of another issuer (signed with a key the JWKS lists)", async () => {
    await using other = await startOidcProvider({ keys: idp.keys });
    await refused(await other.token(resource), /issuer is not the accepted provider/);
  });

  await t.step("an expired token, and one not yet valid", async () => {
    const claims = { iss: idp.issuer, sub: "svc-client", aud: resource, scope: "mcp" };
    await refused(await idp.sign(claims, -120), /token has expired/);
    const early = await idp.sign({ ...claims, nbf: Math.floor(Date.now() / 1000) + 600 }, 900);
    await refused(early, /not yet valid/);
  });

  await t.step("alg none, and a shared-secret HS256 token", async () => {
    const none = new UnsecuredJWT({ sub: "svc-client", scope: "mcp" }).setIssuer(idp.issuer)
      .setAudience(resource).setExpirationTime("5m").encode();
    await refused(none, /algorithm none is not allowed/);
    const hs = await new SignJWT({ scope: "mcp" }).setProtectedHeader({ alg: "HS256" })
      .setIssuer(idp.issuer).setSubject("x").setAudience(resource).setExpirationTime("5m")
      .sign(new TextEncoder().encode("a".repeat(32)));
    await refused(hs, /algorithm HS256 is not allowed/);
  });

  await t.step("a valid token without the mcp scope is 403 insufficient_scope", async () => {
    const claims = { iss: idp.issuer, sub: "svc-client", aud: resource, scope: "profile" };
    const r = await refusal(s.url, await idp.sign(claims, 120));
    assert.equal(r.status, 403);
    assert.match(r.challenge, /error="insufficient_scope"/);
  });

  await t.step("an unknown kid, and a forged signature under a known kid", async () => {
    const { privateKey } = await generateKeyPair("ES256");
    const rogue = (kid: string) =>
      new SignJWT({ scope: "mcp" }).setProtectedHeader({ alg: "ES256", kid })
        .setIssuer(idp.issuer).setSubject("svc-client").setAudience(resource)
        .setExpirationTime("5m").sign(privateKey);
    await refused(await rogue("rogue"), /key id is not in the provider's key set/);
    await refused(await rogue(idp.kid), /signature is invalid/);
  });
});

Deno.test("oidc: an oversized or slow key set is refused within its limits; cached keys survive a fault", async () => {
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  const jwk = { ...(await exportJWK(publicKey)), kid: "h1", alg: "ES256", use: "sig" };
  let mode: "big" | "slow" | "good" = "big";
  const pending = new Set<() => void>();
  const ac = new AbortController();
  let issuer = "";
  const hostile: Deno.HttpServer<Deno.NetAddr> = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    async (req): Promise<Response> => {
      const path = new URL(req.url).pathname;
      if (path === "/.well-known/openid-configuration") {
        return Response.json({ issuer, jwks_uri: `${issuer}/jwks` });
      }
      if (mode === "big") {
        const filler = Array.from({ length: 2000 }, (_, i) => ({ ...jwk, kid: `f${i}` }));
        return Response.json({ keys: [jwk, ...filler] });
      }
      if (mode === "slow") {
        await new Promise<void>((r) => {
          // Far past the 500 ms limit, so a read that gave up is told from one that waited
          // even on a loaded machine.
          const id = setTimeout(r, 30_000);
          pending.add(() => {
            clearTimeout(id);
            r();
          });
        });
        return Response.json({ keys: [jwk] });
      }
      return Response.json({ keys: [jwk] });
    },
  );
  issuer = `http://127.0.0.1:${hostile.addr.port}`;
  try {
    await using s = await startServer({
      args: oidcArgs(issuer, ["--oidc-fetch-timeout", "500"]),
      policy: POLICY,
    });
    const token = await new SignJWT({ scope: "mcp", groups: ["idp-ops"] })
      .setProtectedHeader({ alg: "ES256", kid: "h1" }).setIssuer(issuer).setSubject("alice")
      .setAudience(`${s.url}/mcp`).setExpirationTime("5m").sign(privateKey);

    let r = await refusal(s.url, token);
    assert.equal(r.status, 401);
    assert.match(r.challenge, /key set is larger than 65536 bytes/);

    mode = "slow";
    const started = Date.now();
    r = await refusal(s.url, token);
    assert.equal(r.status, 401);
    assert.match(r.challenge, /key set was not read/);
    assert.ok(Date.now() - started < 10_000, "the read gave up at its time limit");

    mode = "good";
    r = await refusal(s.url, token);
    assert.equal(r.status, 200, "the same token passes once the key set is sane");

    // Keys cached: the provider turning hostile does not lock out a known kid.
    mode = "big";
    r = await refusal(s.url, token);
    assert.equal(r.status, 200);
  } finally {
    for (const release of pending) release();
    ac.abort();
    await hostile.finished;
  }
});

Deno.test("oidc: configuration refuses plain http, none/HS algorithms and a bad role map", async () => {
  const { loadConfig, ConfigError } = await import("../../src/config.ts");
  const load = (args: string[]) => () => loadConfig(["serve", ...args], () => undefined);
  assert.throws(load(["--oidc-issuer", "http://idp.example"]), ConfigError);
  assert.throws(
    load(["--oidc-issuer", "https://idp.example", "--oidc-algorithms", "none"]),
    /never none/,
  );
  assert.throws(
    load(["--oidc-issuer", "https://idp.example", "--oidc-algorithms", "HS256"]),
    /HS\*/,
  );
  assert.throws(
    load(["--oidc-issuer", "https://idp.example", "--oidc-role-map", "x"]),
    /value=role/,
  );
  assert.throws(load(["--oidc-role-map", "a=b"]), /needs --oidc-issuer/);
  const ok = loadConfig(["serve", "--oidc-issuer", "https://idp.example/tenant"], () => undefined);
  assert.deepEqual(ok.oidc?.algorithms, ["RS256", "PS256", "ES256", "EdDSA"]);
  // An external provider satisfies the non-loopback-bind check, as --auth oauth does.
  const { checkExposure } = await import("../../src/config.ts");
  const exposed = loadConfig(
    ["serve", "--host", "0.0.0.0", "--oidc-issuer", "https://idp.example"],
    () => undefined,
  );
  assert.equal(checkExposure(exposed), undefined);
});

Deno.test("oidc: beside --auth oauth both issuers are named, and Warden's own tokens keep their own verdict", async () => {
  await using idp = await startOidcProvider();
  await using s = await startServer({
    args: ["--auth", "oauth", ...oidcArgs(idp.issuer)],
    policy: POLICY,
  });
  const meta = await (await fetch(`${s.url}/.well-known/oauth-protected-resource/mcp`)).json();
  assert.deepEqual(meta.authorization_servers, [s.url, idp.issuer]);
  const ok = await refusal(s.url, await idp.token(`${s.url}/mcp`, { groups: ["idp-ops"] }));
  assert.equal(ok.status, 200, "the external provider's token is accepted");
  // A forged token naming Warden itself as issuer is refused as Warden's own, not as foreign.
  const { privateKey } = await generateKeyPair("ES256");
  const forged = await new SignJWT({ scope: "mcp" }).setProtectedHeader({ alg: "ES256", kid: "x" })
    .setIssuer(s.url).setSubject("carol").setAudience(`${s.url}/mcp`).setExpirationTime("5m")
    .sign(privateKey);
  const r = await refusal(s.url, forged);
  assert.equal(r.status, 401);
  assert.match(r.challenge, /the access token is invalid or expired/);
});

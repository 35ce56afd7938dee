// deno-lint-ignore-file no-explicit-any -- JSON answers and vault entries are probed field by field
/**
 * RFC 8693 token exchange and client credentials on Warden's own
 * authorization server (issue 12): a confidential client exchanges a caller's
 * access token for one bound to another resource (downscoped, short-lived,
 * same subject, `act` naming the client), which this server itself refuses;
 * every bad request is the right OAuth error with nothing issued.
 */
import assert from "node:assert/strict";
import { decodeJwt } from "jose";
import { addUser } from "../../src/identity/mod.ts";
import { startServer } from "../_helpers/server.ts";
import {
  ACCESS_TOKEN_TYPE,
  serviceClient,
  TOKEN_EXCHANGE,
  userToken,
} from "../_helpers/oauth_flow.ts";

Deno.test("token exchange: a caller's token becomes a short-lived, downscoped token for another resource only", async () => {
  const kv = await Deno.openKv(":memory:");
  await addUser(kv, { name: "carol", password: "carol's long password", roles: ["ops"] });
  const OTHER = "http://127.0.0.1:1/mcp";
  await using s = await startServer({
    kv,
    args: ["--auth", "oauth", "--oauth-exchange-audiences", OTHER],
  });
  try {
    const { access, refresh, client: userClient } = await userToken(
      s,
      "carol",
      "carol's long password",
    );
    const svc = await serviceClient(s);
    const basic = `Basic ${btoa(`${svc.id}:${svc.secret}`)}`;
    const token = (params: Record<string, string>, auth = basic) =>
      fetch(`${s.url}/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", authorization: auth },
        body: new URLSearchParams(params),
      }).then(async (r) => ({ status: r.status, body: await r.json() as any }));
    const exchange = (extra: Record<string, string> = {}) =>
      token({
        grant_type: TOKEN_EXCHANGE,
        subject_token: access,
        subject_token_type: ACCESS_TOKEN_TYPE,
        resource: OTHER,
        scope: "mcp",
        ...extra,
      });

    const ok = await exchange();
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.issued_token_type, ACCESS_TOKEN_TYPE);
    assert.equal(ok.body.refresh_token, undefined, "no refresh token for an exchanged token");
    const claims = decodeJwt(ok.body.access_token);
    assert.equal(claims.aud, OTHER);
    assert.equal(claims.sub, "carol");
    assert.equal(claims.iss, s.url);
    assert.equal(claims.scope, "mcp", "downscoped from 'mcp profile'");
    assert.deepEqual(claims.act, { sub: svc.id });
    assert.ok(claims.exp! - claims.iat! <= 60, "short-lived");
    // Bound to the other resource: this server refuses it.
    const here = await fetch(`${s.url}/tools`, {
      headers: { authorization: `Bearer ${ok.body.access_token}` },
    });
    await here.body?.cancel();
    assert.equal(here.status, 401);

    // Client credentials: the service client is the subject.
    const cc = await token({ grant_type: "client_credentials", resource: OTHER, scope: "mcp" });
    assert.equal(cc.status, 200, JSON.stringify(cc.body));
    assert.equal(decodeJwt(cc.body.access_token).sub, svc.id);

    const errors: [Record<string, string>, string, string?][] = [
      [{ scope: "mcp admin" }, "invalid_scope"],
      [{ resource: "http://127.0.0.1:2/mcp" }, "invalid_target"],
      [{ resource: `${s.url}/mcp` }, "invalid_target"],
      [{ subject_token: "not-a-token" }, "invalid_grant"],
      [{ subject_token: ok.body.access_token }, "invalid_grant"],
      [{ subject_token_type: "urn:ietf:params:oauth:token-type:id_token" }, "invalid_request"],
      [
        { requested_token_type: "urn:ietf:params:oauth:token-type:refresh_token" },
        "invalid_request",
      ],
      [{ actor_token: access }, "invalid_request"],
    ];
    for (const [extra, error] of errors) {
      const r = await exchange(extra);
      assert.equal(r.status, 400, JSON.stringify(extra));
      assert.equal(r.body.error, error, JSON.stringify([extra, r.body]));
      assert.equal(r.body.access_token, undefined);
    }
    // Two resources, or a resource and a different audience: refused.
    const two = await token({
      grant_type: TOKEN_EXCHANGE,
      subject_token: access,
      subject_token_type: ACCESS_TOKEN_TYPE,
      resource: OTHER,
      audience: OTHER,
    });
    assert.equal(two.body.error, "invalid_target");
    // A wrong secret is invalid_client; a public client may not exchange at all.
    const wrong = await exchange({}).then(() =>
      token({
        grant_type: TOKEN_EXCHANGE,
        subject_token: access,
        subject_token_type: ACCESS_TOKEN_TYPE,
        resource: OTHER,
      }, `Basic ${btoa(`${svc.id}:wrong`)}`)
    );
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.error, "invalid_client");
    const pub = await token({
      grant_type: TOKEN_EXCHANGE,
      client_id: userClient.client_id,
      subject_token: access,
      subject_token_type: ACCESS_TOKEN_TYPE,
      resource: OTHER,
    }, "");
    assert.equal(pub.body.error, "unauthorized_client");
    const badReg = await fetch(`${s.url}/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ grant_types: [TOKEN_EXCHANGE], token_endpoint_auth_method: "none" }),
    });
    assert.equal((await badReg.json()).error, "invalid_client_metadata");

    // Revoking the caller's grant ends the exchange of its tokens.
    const rv = await fetch(`${s.url}/revoke`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: refresh, client_id: userClient.client_id }),
    });
    await rv.body?.cancel();
    assert.equal((await exchange()).body.error, "invalid_grant");
  } finally {
    kv.close();
  }
});

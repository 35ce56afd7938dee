/**
 * OAuth flows against a test Warden (`--auth oauth`) over real HTTP: a
 * person's token by the code flow (login and consent as a browser would), and
 * a confidential service client registered by DCR.
 */
import assert from "node:assert/strict";
import type { TestServer } from "./server.ts";
import { browse, pkce } from "../oauth/_browser.ts";

export const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
export const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";
const REDIRECT = "http://127.0.0.1:9/callback";

/** A person's access (and refresh) token from `s` by the code flow, as a browser would. */
export async function userToken(s: TestServer, username: string, password: string) {
  const reg = await (await fetch(`${s.url}/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ redirect_uris: [REDIRECT], token_endpoint_auth_method: "none" }),
  })).json();
  const { verifier, challenge } = await pkce();
  const u = new URL(`${s.url}/authorize`);
  for (
    const [k, v] of Object.entries({
      response_type: "code",
      client_id: reg.client_id,
      redirect_uri: REDIRECT,
      code_challenge: challenge,
      code_challenge_method: "S256",
      resource: `${s.url}/mcp`,
      scope: "mcp profile",
    })
  ) u.searchParams.set(k, v);
  const { location } = await browse(u.toString(), { username, password });
  const res = await fetch(`${s.url}/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code: location.searchParams.get("code")!,
      code_verifier: verifier,
      redirect_uri: REDIRECT,
      client_id: reg.client_id,
    }),
  });
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  return { access: body.access_token as string, refresh: body.refresh_token, client: reg };
}

/** Registers a confidential service client allowed client credentials and token exchange. */
export async function serviceClient(s: TestServer, name = "front") {
  const res = await fetch(`${s.url}/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      client_name: name,
      grant_types: [TOKEN_EXCHANGE, "client_credentials"],
      token_endpoint_auth_method: "client_secret_basic",
    }),
  });
  const body = await res.json();
  assert.equal(res.status, 201, JSON.stringify(body));
  return { id: body.client_id as string, secret: body.client_secret as string };
}

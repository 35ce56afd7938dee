/**
 * OAuth flows against a test Warden (`--auth oauth`) over real HTTP: a
 * person's token by the code flow (login and consent as a browser would), and
 * a confidential service client registered by DCR.
 */
import assert from "node:assert/strict";
import type { OAuthClientProvider } from "@modelcontextprotocol/client";
import type { TestServer } from "./server.ts";
import { browse, pkce } from "../oauth/_browser.ts";

export const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
export const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";
/** The redirect URI the test clients register (nothing listens there: the test reads the code). */
export const REDIRECT = "http://127.0.0.1:9/callback";

/**
 * The SDK's OAuth client state held in memory: the SDK decides everything; the test only stores
 * it and drives the browser with `state.authUrl`. With `clientMetadataUrl` the client registers
 * by its metadata document (CIMD) instead of DCR.
 */
export function memoryOAuthProvider(clientName: string, clientMetadataUrl?: string) {
  const state: {
    client?: { client_id: string };
    tokens?: { access_token: string; refresh_token?: string };
    verifier?: string;
    authUrl?: URL;
    discovery?: unknown;
  } = {};
  const provider: OAuthClientProvider = {
    get redirectUrl() {
      return REDIRECT;
    },
    ...(clientMetadataUrl ? { clientMetadataUrl } : {}),
    get clientMetadata() {
      return {
        client_name: clientName,
        redirect_uris: [REDIRECT],
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
        token_endpoint_auth_method: "none",
      };
    },
    clientInformation: () => state.client as never,
    saveClientInformation: (c) => {
      state.client = c as typeof state.client;
    },
    tokens: () => state.tokens as never,
    saveTokens: (t) => {
      state.tokens = t as typeof state.tokens;
    },
    redirectToAuthorization: (url) => {
      state.authUrl = url;
    },
    saveCodeVerifier: (v) => {
      state.verifier = v;
    },
    codeVerifier: () => state.verifier!,
    saveDiscoveryState: (d) => {
      state.discovery = d;
    },
    discoveryState: () => state.discovery as never,
  };
  return { provider, state };
}

/** Registers a public client (PKCE, no secret) by DCR with `redirect_uris: [redirect]`. */
export async function registerPublicClient(
  s: { url: string },
  options: { name?: string; redirect?: string } = {},
): Promise<{ client_id: string; [k: string]: unknown }> {
  return await (await fetch(`${s.url}/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      ...(options.name !== undefined ? { client_name: options.name } : {}),
      redirect_uris: [options.redirect ?? REDIRECT],
      token_endpoint_auth_method: "none",
    }),
  })).json();
}

/**
 * A code-flow authorize URL of `s` for `clientId` with a fresh PKCE pair (S256) for the resource
 * `${s.url}/mcp`: `scope` (default "mcp"), `state` if given; the verifier to redeem the code with.
 */
export async function authorizeUrl(
  s: { url: string },
  clientId: string,
  options: { redirect?: string; scope?: string; state?: string } = {},
): Promise<{ url: URL; verifier: string }> {
  const { verifier, challenge } = await pkce();
  const u = new URL(`${s.url}/authorize`);
  for (
    const [k, v] of Object.entries({
      response_type: "code",
      client_id: clientId,
      redirect_uri: options.redirect ?? REDIRECT,
      code_challenge: challenge,
      code_challenge_method: "S256",
      ...(options.state !== undefined ? { state: options.state } : {}),
      resource: `${s.url}/mcp`,
      scope: options.scope ?? "mcp",
    })
  ) u.searchParams.set(k, v);
  return { url: u, verifier };
}

/** Redeems an authorization code at `${s.url}/token` (PKCE, public client); the raw response. */
export function redeemCode(
  s: { url: string },
  grant: { code: string; verifier: string; clientId: string; redirect?: string; resource?: string },
): Promise<Response> {
  return fetch(`${s.url}/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code: grant.code,
      code_verifier: grant.verifier,
      redirect_uri: grant.redirect ?? REDIRECT,
      client_id: grant.clientId,
      ...(grant.resource !== undefined ? { resource: grant.resource } : {}),
    }),
  });
}

/** A person's access (and refresh) token from `s` by the code flow, as a browser would. */
export async function userToken(s: TestServer, username: string, password: string) {
  const reg = await registerPublicClient(s);
  const { url: u, verifier } = await authorizeUrl(s, reg.client_id, { scope: "mcp profile" });
  const { location } = await browse(u.toString(), { username, password });
  const res = await redeemCode(s, {
    code: location.searchParams.get("code")!,
    verifier,
    clientId: reg.client_id,
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

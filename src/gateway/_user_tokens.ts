/**
 * Storage behind per-principal upstream authorization: each principal's
 * tokens and Warden's registration at each upstream's authorization server,
 * sealed in KV with the credential key (AES-256-GCM; the additional data
 * names upstream and principal, so a record copied elsewhere does not open),
 * and the `OAuthClientProvider` the SDK's `auth()` drives over them.
 *
 * @module
 */
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthClientProvider,
  OAuthDiscoveryState,
  StoredOAuthClientInformation,
  StoredOAuthTokens,
} from "@modelcontextprotocol/client";
import { upstreamOAuthClientKey, upstreamUserTokenKey } from "../store/mod.ts";
import { type CredentialStore, type SealedBox, UndecryptableError } from "./credentials.ts";

const MAX_CACHED = 1000;

/** A principal's tokens as KV holds them: the kind and times in clear, the tokens sealed. */
export interface TokenRecord {
  readonly v: 1;
  readonly kind: "oauth_authorization_code";
  readonly upstream: string;
  readonly principal: string;
  readonly obtained_at: number;
  /** When Warden renews it (a little before it lapses); null when the server gave no lifetime. */
  readonly expires_at: number | null;
  readonly box: SealedBox;
}

/** Warden's URLs as an OAuth client. */
export interface ClientUrls {
  readonly redirect: () => string;
  /** The metadata document's URL when it can be the client_id (https), else undefined. */
  readonly metadata: () => string | undefined;
  readonly clientMetadata: () => OAuthClientMetadata & { client_id: string };
}

/** What one run of `auth()` produces or is given. */
export interface Flow {
  tokens?: StoredOAuthTokens;
  state?: string;
  verifier?: string;
  discovery?: OAuthDiscoveryState;
  authorizationUrl?: URL;
  saved?: StoredOAuthTokens;
}

/** When tokens are renewed: a little early, a quarter of their life, at most 30 s before they lapse. */
function renewAt(obtained: number, expiresInS: unknown): number | null {
  if (typeof expiresInS !== "number" || !(expiresInS > 0)) return null;
  const life = expiresInS * 1000;
  return obtained + life - Math.min(30_000, life / 4);
}

/** The sealed token and registration store. */
export type TokenVault = ReturnType<typeof createTokenVault>;

/**
 * The store over `kv`. Token reads within `maxAgeMs` of the last are answered
 * from memory (a KV read per upstream request is what a routed call spends
 * most on); this process's own writes apply at once.
 */
export function createTokenVault(deps: {
  readonly kv: Deno.Kv;
  readonly credentials: CredentialStore;
  readonly now: () => number;
  readonly urls: ClientUrls;
}) {
  const { kv, credentials, now } = deps;
  const clients = new Map<string, StoredOAuthClientInformation>();
  const opened = new Map<
    string,
    { versionstamp: string; tokens: StoredOAuthTokens; record: TokenRecord; at: number }
  >();
  /** RFC 9728 / RFC 8414 discovery per upstream, kept in memory (refreshes skip it). */
  const discovery = new Map<string, OAuthDiscoveryState>();
  const tokenContext = (u: string, p: string) => `upstream-user-token\n${u}\n${p}`;
  const clientContext = (u: string) => `upstream-oauth-client\n${u}`;

  async function loadClient(upstream: string): Promise<StoredOAuthClientInformation | undefined> {
    let info = clients.get(upstream);
    if (!info) {
      const rec = (await kv.get<{ box: SealedBox }>(upstreamOAuthClientKey(upstream))).value;
      if (!rec) return undefined;
      info = await credentials.open<StoredOAuthClientInformation>(clientContext(upstream), rec.box);
      if (clients.size >= MAX_CACHED) clients.clear();
      clients.set(upstream, info);
    }
    // A document client registered under another public URL: register again.
    const id = (info as OAuthClientInformationMixed).client_id;
    if (/^https?:\/\//.test(id) && id !== deps.urls.metadata()) return undefined;
    return info;
  }

  async function saveClient(upstream: string, info: StoredOAuthClientInformation): Promise<void> {
    // A dynamic registration may carry a client secret: sealed like every other secret.
    await kv.set(upstreamOAuthClientKey(upstream), {
      v: 1,
      client_id_kind: /^https:\/\//.test(info.client_id) ? "metadata_document" : "registered",
      box: await credentials.seal(clientContext(upstream), info),
    });
    clients.set(upstream, info);
  }

  async function saveTokens(upstream: string, principal: string, tokens: StoredOAuthTokens) {
    const obtained = now();
    const record: TokenRecord = {
      v: 1,
      kind: "oauth_authorization_code",
      upstream,
      principal,
      obtained_at: obtained,
      expires_at: renewAt(obtained, tokens.expires_in),
      box: await credentials.seal(tokenContext(upstream, principal), tokens),
    };
    const res = await kv.set(upstreamUserTokenKey(upstream, principal), record);
    if (opened.size >= MAX_CACHED) opened.clear();
    opened.set(`${upstream}\n${principal}`, {
      versionstamp: res.versionstamp,
      tokens,
      record,
      at: obtained,
    });
  }

  async function dropTokens(upstream: string, principal: string): Promise<void> {
    opened.delete(`${upstream}\n${principal}`);
    await kv.delete(upstreamUserTokenKey(upstream, principal));
  }

  async function loadTokens(
    upstream: string,
    principal: string,
    maxAgeMs = 0,
  ): Promise<{ tokens: StoredOAuthTokens; record: TokenRecord } | undefined> {
    const key = `${upstream}\n${principal}`;
    const asked = now();
    const cached = opened.get(key);
    if (cached && asked - cached.at < maxAgeMs) return cached;
    const entry = await kv.get<TokenRecord>(upstreamUserTokenKey(upstream, principal));
    if (entry.value === null) {
      opened.delete(key);
      return undefined;
    }
    if (cached && cached.versionstamp === entry.versionstamp) {
      cached.at = asked;
      return cached;
    }
    let tokens: StoredOAuthTokens;
    try {
      tokens = await credentials.open<StoredOAuthTokens>(
        tokenContext(upstream, principal),
        entry.value.box,
      );
    } catch (e) {
      // Another key, or a record moved from another principal: unusable, so authorize again.
      if (!(e instanceof UndecryptableError)) throw e;
      await dropTokens(upstream, principal);
      return undefined;
    }
    const hit = { versionstamp: entry.versionstamp!, tokens, record: entry.value, at: asked };
    if (opened.size >= MAX_CACHED) opened.clear();
    opened.set(key, hit);
    return hit;
  }

  async function dropClient(upstream: string): Promise<void> {
    clients.delete(upstream);
    await kv.delete(upstreamOAuthClientKey(upstream));
  }

  const ops = { loadClient, saveClient, saveTokens, dropTokens, dropClient, discovery };
  return {
    loadTokens,
    dropTokens,
    discovery,
    /** The provider the SDK's `auth()` drives for one principal at one upstream. */
    provider: (upstream: string, principal: string, flow: Flow) =>
      clientProvider(ops, deps.urls, { upstream, principal, flow }),
  };
}

/** What `clientProvider` stores through. */
interface VaultOps {
  loadClient(upstream: string): Promise<StoredOAuthClientInformation | undefined>;
  saveClient(upstream: string, info: StoredOAuthClientInformation): Promise<void>;
  saveTokens(upstream: string, principal: string, tokens: StoredOAuthTokens): Promise<void>;
  dropTokens(upstream: string, principal: string): Promise<void>;
  dropClient(upstream: string): Promise<void>;
  readonly discovery: Map<string, OAuthDiscoveryState>;
}

/** An `OAuthClientProvider` for one principal at one upstream, over the vault; `flow` collects what a run produces. */
function clientProvider(
  ops: VaultOps,
  urls: ClientUrls,
  of: { upstream: string; principal: string; flow: Flow },
): OAuthClientProvider {
  const { upstream, principal, flow } = of;
  const cimd = urls.metadata();
  return {
    get redirectUrl() {
      return urls.redirect();
    },
    ...(cimd ? { clientMetadataUrl: cimd } : {}),
    get clientMetadata() {
      const { client_id: _id, ...meta } = urls.clientMetadata();
      return meta;
    },
    clientInformation: () => ops.loadClient(upstream),
    saveClientInformation: (info) => ops.saveClient(upstream, info),
    tokens: () => flow.tokens,
    saveTokens: async (tokens) => {
      flow.saved = tokens;
      await ops.saveTokens(upstream, principal, tokens);
    },
    ...(flow.state !== undefined ? { state: () => flow.state! } : {}),
    redirectToAuthorization: (url) => {
      flow.authorizationUrl = url;
    },
    saveCodeVerifier: (v) => {
      flow.verifier = v;
    },
    codeVerifier: () => {
      if (flow.verifier === undefined) throw new Error("no PKCE verifier for this flow");
      return flow.verifier;
    },
    saveDiscoveryState: (d) => {
      flow.discovery = d;
      ops.discovery.set(upstream, d);
    },
    discoveryState: () => flow.discovery,
    invalidateCredentials: async (scope) => {
      if (scope === "all" || scope === "tokens") {
        flow.tokens = undefined;
        await ops.dropTokens(upstream, principal);
      }
      if (scope === "all" || scope === "client") {
        await ops.dropClient(upstream);
      }
      if (scope === "all" || scope === "discovery") ops.discovery.delete(upstream);
    },
  };
}

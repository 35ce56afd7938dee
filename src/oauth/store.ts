/**
 * OAuth state in KV, every record with `expireIn`: registered clients, pending
 * authorization requests, codes, refresh tokens and token families. Secrets
 * (client secrets, codes, refresh tokens) are stored only as SHA-256 digests.
 *
 * @module
 */
import { sha256HexOfText } from "../lib/mod.ts";

const P = "oauth";

/** A registered (RFC 7591) or metadata-document (CIMD) client. */
export interface ClientRecord {
  readonly client_id: string;
  readonly client_name?: string;
  readonly redirect_uris: readonly string[];
  readonly application_type: "web" | "native";
  readonly token_endpoint_auth_method: "none" | "client_secret_post" | "client_secret_basic";
  readonly grant_types: readonly string[];
  readonly scope?: string;
  /** SHA-256 hex of the client secret, for confidential clients. */
  readonly secretHash?: string;
  readonly client_id_issued_at: number;
  /** True when client_id is a metadata-document URL. */
  readonly cimd?: boolean;
}

/** An /authorize request waiting for login and consent. */
export interface PendingRequest {
  readonly id: string;
  readonly csrf: string;
  readonly client_id: string;
  readonly redirect_uri: string;
  readonly state?: string;
  readonly scope: string;
  readonly resource: string;
  readonly code_challenge: string;
  /** Set once the person has logged in. */
  readonly user?: string;
  /** Set when they logged in at the external provider: its issuer. */
  readonly idp?: string;
  /** The roles the provider's ID token mapped to (with `idp` only). */
  readonly roles?: readonly string[];
}

/**
 * A sign-in at the external provider in flight, keyed by its `state`: which
 * pending request it continues, the browser it started in (digest of its
 * cookie), and what the callback must match. Never holds the client secret.
 */
export interface OidcAttemptRecord {
  readonly pending_id: string;
  /** SHA-256 hex of the browser cookie set when the attempt began. */
  readonly browser: string;
  readonly nonce: string;
  readonly code_verifier: string;
}

/** What a code or refresh token grants. */
export interface Grant {
  readonly client_id: string;
  readonly sub: string;
  readonly scope: string;
  readonly resource: string;
  readonly family: string;
  /** A federated login: the provider's issuer (roles then come from the grant, not a user record). */
  readonly idp?: string;
  readonly roles?: readonly string[];
}

export interface CodeRecord extends Grant {
  readonly redirect_uri: string;
  readonly code_challenge: string;
}

export interface RefreshRecord extends Grant {
  readonly used: boolean;
}

/** Random URL-safe secret of `bytes` bytes. */
export function randomToken(bytes = 32): string {
  const b = crypto.getRandomValues(new Uint8Array(bytes));
  return btoa(String.fromCharCode(...b)).replaceAll("+", "-").replaceAll("/", "_").replace(
    /=+$/,
    "",
  );
}

/** Hex SHA-256 of a secret: the only form secrets are stored in. */
export function digest(secret: string): string {
  return sha256HexOfText(secret);
}

/** KV access for the OAuth server. */
export class OAuthStore {
  constructor(private readonly kv: Deno.Kv) {}

  /** Publishes one process's token-verification key (public, never a private key). */
  async putVerificationKey(
    kid: string,
    jwk: Record<string, unknown>,
    ttlMs: number,
  ): Promise<void> {
    await this.kv.set([P, "jwk", kid], jwk, { expireIn: ttlMs });
  }
  async getVerificationKey(kid: string): Promise<Record<string, unknown> | null> {
    return (await this.kv.get<Record<string, unknown>>([P, "jwk", kid])).value;
  }
  /** Every live process's verification key (at most `limit`). */
  async listVerificationKeys(limit = 64): Promise<Record<string, unknown>[]> {
    const out: Record<string, unknown>[] = [];
    for await (
      const e of this.kv.list<Record<string, unknown>>({ prefix: [P, "jwk"] }, { limit })
    ) {
      out.push(e.value);
    }
    return out;
  }

  async putClient(c: ClientRecord, ttlMs: number): Promise<void> {
    await this.kv.set([P, "client", c.client_id], c, { expireIn: ttlMs });
  }
  async getClient(id: string): Promise<ClientRecord | null> {
    return (await this.kv.get<ClientRecord>([P, "client", id])).value;
  }

  async putPending(p: PendingRequest, ttlMs: number): Promise<void> {
    await this.kv.set([P, "pending", p.id], p, { expireIn: ttlMs });
  }
  async getPending(id: string): Promise<PendingRequest | null> {
    return (await this.kv.get<PendingRequest>([P, "pending", id])).value;
  }
  async deletePending(id: string): Promise<void> {
    await this.kv.delete([P, "pending", id]);
  }

  async putOidcAttempt(state: string, rec: OidcAttemptRecord, ttlMs: number): Promise<void> {
    await this.kv.set([P, "oidc_attempt", digest(state)], rec, { expireIn: ttlMs });
  }
  /**
   * Reads an attempt by its state: the record, `used` when a callback already
   * took it (a replay), or `unknown` (never began here, or expired).
   */
  async peekOidcAttempt(
    state: string,
  ): Promise<{ rec: OidcAttemptRecord; versionstamp: string } | "used" | "unknown"> {
    const entry = await this.kv.get<OidcAttemptRecord>([P, "oidc_attempt", digest(state)]);
    if (entry.value !== null) return { rec: entry.value, versionstamp: entry.versionstamp! };
    const used = await this.kv.get([P, "oidc_attempt_used", digest(state)]);
    return used.value !== null ? "used" : "unknown";
  }
  /** Takes the attempt exactly once (false: another callback took it first). */
  async takeOidcAttempt(state: string, versionstamp: string, ttlMs: number): Promise<boolean> {
    const key = [P, "oidc_attempt", digest(state)];
    const res = await this.kv.atomic().check({ key, versionstamp }).delete(key)
      .set([P, "oidc_attempt_used", digest(state)], true, { expireIn: ttlMs }).commit();
    return res.ok;
  }

  async putCode(code: string, rec: CodeRecord, ttlMs: number): Promise<void> {
    await this.kv.set([P, "code", digest(code)], rec, { expireIn: ttlMs });
  }
  /**
   * Takes a code exactly once. A second use finds the `used` marker and returns
   * the family it belonged to, so the caller can revoke what the first use issued.
   */
  async takeCode(
    code: string,
    ttlMs: number,
  ): Promise<{ ok: true; rec: CodeRecord } | { ok: false; replayedFamily?: string }> {
    const key = [P, "code", digest(code)];
    const usedKey = [P, "code_used", digest(code)];
    const entry = await this.kv.get<CodeRecord>(key);
    if (entry.value === null) {
      const used = await this.kv.get<string>(usedKey);
      return used.value !== null ? { ok: false, replayedFamily: used.value } : { ok: false };
    }
    const res = await this.kv.atomic().check(entry).delete(key).set(usedKey, entry.value.family, {
      expireIn: ttlMs,
    }).commit();
    if (!res.ok) return { ok: false, replayedFamily: entry.value.family };
    return { ok: true, rec: entry.value };
  }

  async openFamily(family: string, ttlMs: number): Promise<void> {
    await this.kv.set([P, "family", family], { revoked: false }, { expireIn: ttlMs });
  }
  async familyLive(family: string): Promise<boolean> {
    const v = (await this.kv.get<{ revoked: boolean }>([P, "family", family])).value;
    return v !== null && !v.revoked;
  }
  async revokeFamily(family: string, ttlMs: number): Promise<void> {
    await this.kv.set([P, "family", family], { revoked: true }, { expireIn: ttlMs });
  }

  async putRefresh(token: string, rec: RefreshRecord, ttlMs: number): Promise<void> {
    await this.kv.set([P, "refresh", digest(token)], rec, { expireIn: ttlMs });
  }
  /** Marks a refresh token used (rotation); returns it as it was, or null when unknown. */
  async useRefresh(token: string, ttlMs: number): Promise<RefreshRecord | null> {
    const key = [P, "refresh", digest(token)];
    const entry = await this.kv.get<RefreshRecord>(key);
    if (entry.value === null) return null;
    if (entry.value.used) return entry.value;
    const res = await this.kv.atomic().check(entry).set(key, { ...entry.value, used: true }, {
      expireIn: ttlMs,
    }).commit();
    // Lost a race with another use of the same token: that is reuse too.
    return res.ok ? entry.value : { ...entry.value, used: true };
  }
  async peekRefresh(token: string): Promise<RefreshRecord | null> {
    return (await this.kv.get<RefreshRecord>([P, "refresh", digest(token)])).value;
  }
}

/**
 * Minted bearer tokens, stored in KV by the SHA-256 of the secret (the secret
 * is 32 random bytes, so a fast hash is enough; it is never stored). Each
 * record carries its principal's name, roles, scopes, expiry and revocation.
 *
 * @module
 */
import { identityTokenKey, identityTokenPrefix } from "../store/mod.ts";
import { type Principal, PRINCIPAL_NAME } from "./principal.ts";

/** Prefix on every minted secret, so a leaked one is recognisable. */
export const TOKEN_PREFIX = "wdn_";

/** A stored token, as `token list` shows it (never the secret). */
export interface TokenRecord {
  /** Short public id (first 12 hex chars of the hash) used by `token revoke`. */
  readonly id: string;
  readonly name: string;
  readonly roles: readonly string[];
  readonly scopes: readonly string[];
  readonly created_ms: number;
  readonly expires_ms?: number;
  readonly revoked_ms?: number;
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Parses `30d`, `12h`, `45m`, `90s` into milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d{1,6})([smhd])$/.exec(text.trim());
  if (!m) throw new Error(`invalid duration "${text}" (expected e.g. 30d, 12h, 45m, 90s)`);
  const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as "s" | "m" | "h" | "d"];
  const ms = Number(m[1]) * unit;
  if (ms <= 0) throw new Error(`invalid duration "${text}": must be positive`);
  return ms;
}

function checkNames(kind: string, values: readonly string[]): void {
  for (const v of values) {
    if (!PRINCIPAL_NAME.test(v)) throw new Error(`invalid ${kind} "${v}"`);
  }
}

/** Mints a token; resolves with the secret (shown once) and its record. */
export async function createToken(
  kv: Deno.Kv,
  input: {
    name: string;
    roles?: readonly string[];
    scopes?: readonly string[];
    expiresInMs?: number;
    nowMs?: number;
  },
): Promise<{ secret: string; record: TokenRecord }> {
  if (!PRINCIPAL_NAME.test(input.name)) {
    throw new Error(`invalid name "${input.name}" (1 to 64 of A-Z a-z 0-9 _ . @ -)`);
  }
  const roles = input.roles ?? [];
  const scopes = input.scopes ?? [];
  checkNames("role", roles);
  if (scopes.some((s) => !/^[\x21-\x7e]{1,128}$/.test(s))) throw new Error("invalid scope");
  const secret = TOKEN_PREFIX + crypto.getRandomValues(new Uint8Array(32)).toBase64({
    alphabet: "base64url",
    omitPadding: true,
  });
  const hash = await sha256Hex(secret);
  const now = input.nowMs ?? Date.now();
  const record: TokenRecord = {
    id: hash.slice(0, 12),
    name: input.name,
    roles: [...roles],
    scopes: [...scopes],
    created_ms: now,
    ...(input.expiresInMs !== undefined ? { expires_ms: now + input.expiresInMs } : {}),
  };
  const res = await kv.atomic().check({ key: identityTokenKey(hash), versionstamp: null })
    .set(identityTokenKey(hash), record).commit();
  if (!res.ok) throw new Error("token collision; try again");
  return { secret, record };
}

/** Every stored token (revoked and expired included), oldest first. */
export async function listTokens(kv: Deno.Kv): Promise<TokenRecord[]> {
  const out: TokenRecord[] = [];
  for await (const e of kv.list<TokenRecord>({ prefix: identityTokenPrefix() })) out.push(e.value);
  return out.sort((a, b) => a.created_ms - b.created_ms);
}

/**
 * Revokes every token whose public id or name is `idOrName`; resolves with
 * how many were revoked (0 when none matched or all already were).
 */
export async function revokeToken(
  kv: Deno.Kv,
  idOrName: string,
  nowMs = Date.now(),
): Promise<number> {
  let n = 0;
  for await (const e of kv.list<TokenRecord>({ prefix: identityTokenPrefix() })) {
    const r = e.value;
    if ((r.id === idOrName || r.name === idOrName) && r.revoked_ms === undefined) {
      await kv.set(e.key, { ...r, revoked_ms: nowMs });
      n++;
    }
  }
  return n;
}

/** The principal a minted secret stands for, or undefined when unknown, expired or revoked. */
export async function verifyToken(
  kv: Deno.Kv,
  secret: string,
  nowMs = Date.now(),
): Promise<Principal | undefined> {
  if (!secret.startsWith(TOKEN_PREFIX) || secret.length > 256) return undefined;
  const entry = await kv.get<TokenRecord>(identityTokenKey(await sha256Hex(secret)));
  const r = entry.value;
  if (!r || r.revoked_ms !== undefined) return undefined;
  if (r.expires_ms !== undefined && nowMs >= r.expires_ms) return undefined;
  return { id: r.name, kind: "token", roles: r.roles, scopes: r.scopes };
}

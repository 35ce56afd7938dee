/**
 * Dashboard sessions. A login with a `warden user add` user's password makes
 * a random 32-byte secret, sent once as an `HttpOnly; SameSite=Strict`
 * cookie; KV keeps only its SHA-256 and the user name, with an expiry. The
 * CSRF token of a session's forms is derived from the secret (never stored):
 * a page without the cookie cannot compute it.
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { dashboardSessionKey } from "../store/mod.ts";

export const SESSION_COOKIE = "warden_dashboard";
/** The pre-login cookie the login form's CSRF token is derived from. */
export const LOGIN_COOKIE = "warden_login";
/** A session lasts this long from login. */
export const SESSION_TTL_MS = 8 * 3_600_000;

interface SessionRecord {
  readonly user: string;
  readonly created_ms: number;
  readonly expires_ms: number;
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

function b64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replace(/=+$/, "");
}

/** A fresh random secret (32 bytes, base64url). */
export function randomSecret(): string {
  return b64url(crypto.getRandomValues(new Uint8Array(32)));
}

const SECRET = /^[A-Za-z0-9_-]{43}$/;

/** The CSRF token bound to `secret` (a session's or a login form's). */
export function csrfOf(secret: string, purpose: "session" | "login"): string {
  return b64url(sha256(`warden-dashboard-csrf/v1\n${purpose}\n${secret}`));
}

/** Whether `given` is the CSRF token of `secret`, in constant time. */
export function csrfMatches(
  secret: string | undefined,
  given: string | null | undefined,
  purpose: "session" | "login",
): boolean {
  if (secret === undefined || typeof given !== "string" || !SECRET.test(secret)) return false;
  const a = new TextEncoder().encode(csrfOf(secret, purpose));
  const b = new TextEncoder().encode(given);
  return a.byteLength === b.byteLength && timingSafeEqual(a, b);
}

/** The value of cookie `name` in a request, if well formed. */
export function cookieOf(req: Request, name: string): string | undefined {
  const header = req.headers.get("cookie") ?? "";
  if (header.length > 8192) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) {
      const value = part.slice(eq + 1).trim();
      return SECRET.test(value) ? value : undefined;
    }
  }
  return undefined;
}

/** A `Set-Cookie` value: HttpOnly and SameSite=Strict always, Secure over https. */
export function cookieHeader(
  name: string,
  value: string,
  opts: { maxAgeS: number; path?: string; secure: boolean },
): string {
  return `${name}=${value}; Path=${
    opts.path ?? "/"
  }; HttpOnly; SameSite=Strict; Max-Age=${opts.maxAgeS}` +
    (opts.secure ? "; Secure" : "");
}

/** The KV-backed session store. */
export interface SessionStore {
  /** Opens a session for `user`; returns the cookie secret. */
  create(user: string): Promise<string>;
  /** The user of a live session, or undefined. */
  user(secret: string | undefined): Promise<string | undefined>;
  destroy(secret: string | undefined): Promise<void>;
}

export function createSessionStore(kv: Deno.Kv, now: () => number = Date.now): SessionStore {
  const keyOf = (secret: string) => dashboardSessionKey(sha256(secret).toString("hex"));
  return {
    async create(user) {
      const secret = randomSecret();
      const t = now();
      const record: SessionRecord = { user, created_ms: t, expires_ms: t + SESSION_TTL_MS };
      await kv.set(keyOf(secret), record, { expireIn: SESSION_TTL_MS });
      return secret;
    },
    async user(secret) {
      if (secret === undefined || !SECRET.test(secret)) return undefined;
      const record = (await kv.get<SessionRecord>(keyOf(secret))).value;
      if (!record || record.expires_ms <= now()) return undefined;
      return record.user;
    },
    async destroy(secret) {
      if (secret === undefined || !SECRET.test(secret)) return;
      await kv.delete(keyOf(secret));
    },
  };
}

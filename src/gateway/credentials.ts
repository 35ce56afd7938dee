/**
 * Credentials Warden presents to an upstream: a bearer token or static
 * headers per upstream, kept in KV encrypted with AES-256-GCM under a key
 * that lives outside the KV (a file beside it, or `WARDEN_CREDENTIAL_KEY`),
 * so a copy of the KV alone reveals nothing. The upstream's name is the
 * additional authenticated data: a ciphertext moved to another upstream's
 * record does not decrypt. Records meant for listing carry the kind and the
 * header names only, never a value; nothing here is logged or sealed.
 *
 * The caller's own token is never forwarded (the MCP spec forbids token
 * passthrough): an upstream gets only what this store holds for it.
 *
 * @module
 */
import { fromBase64, toBase64 } from "../lib/mod.ts";

/** How Warden authenticates to an upstream; the sealed call entry records this, not the value. */
export type CredentialKind = "bearer" | "headers";

/** A credential as the operator gives it. */
export type UpstreamCredential =
  | { readonly kind: "bearer"; readonly token: string }
  | { readonly kind: "headers"; readonly headers: Readonly<Record<string, string>> };

/** What a listing shows: never a value. */
export interface CredentialSummary {
  readonly upstream: string;
  readonly kind: CredentialKind;
  readonly header_names: readonly string[];
  readonly set_at: string;
}

/** A credential the store cannot keep or open (no key, bad input, tampered record). */
export class CredentialError extends Error {
  override name = "CredentialError";
}

/** A sealed record that does not open with this key and context (moved, altered, another key). */
export class UndecryptableError extends CredentialError {
  override name = "UndecryptableError";
}

interface StoredCredential extends CredentialSummary {
  readonly v: 1;
  readonly iv: string;
  readonly ct: string;
}

const PREFIX = ["upstream_credential"] as const;
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$/;
const MAX_VALUE_BYTES = 8192;
const MAX_HEADERS = 32;
// Headers whose meaning belongs to the transport; a credential may not set them.
const RESERVED = new Set([
  "host",
  "content-length",
  "content-type",
  "accept",
  "connection",
  "transfer-encoding",
  "mcp-session-id",
  "mcp-protocol-version",
  "last-event-id",
]);

/** The prefix a credential key string carries (the rest is 32 bytes, base64). */
export const CREDENTIAL_KEY_PREFIX = "warden-credential-key:v1:";

/** A fresh key string for `WARDEN_CREDENTIAL_KEY` or the key file. */
export function generateCredentialKeyString(): string {
  return CREDENTIAL_KEY_PREFIX + toBase64(crypto.getRandomValues(new Uint8Array(32)));
}

/** Parses a key string (`warden-credential-key:v1:<base64 of 32 bytes>`). */
export async function importCredentialKey(text: string): Promise<CryptoKey> {
  const trimmed = text.trim();
  if (!trimmed.startsWith(CREDENTIAL_KEY_PREFIX)) {
    throw new CredentialError(
      `a credential key starts with "${CREDENTIAL_KEY_PREFIX}" (make one with: warden upstream credential keygen)`,
    );
  }
  let raw: Uint8Array;
  try {
    raw = fromBase64(trimmed.slice(CREDENTIAL_KEY_PREFIX.length));
  } catch {
    throw new CredentialError("the credential key is not valid base64");
  }
  if (raw.length !== 32) {
    throw new CredentialError(`the credential key must hold 32 bytes, not ${raw.length}`);
  }
  return await crypto.subtle.importKey("raw", raw as BufferSource, "AES-GCM", false, [
    "encrypt",
    "decrypt",
  ]);
}

/** Checks a credential and returns the headers it amounts to. */
export function credentialHeaders(credential: UpstreamCredential): Record<string, string> {
  const bytes = (s: string) => new TextEncoder().encode(s).length;
  // Header values may hold tabs, never other control characters (CR/LF would split headers).
  const printable = (s: string) =>
    ![...s].some((ch) => {
      const c = ch.charCodeAt(0);
      return (c < 0x20 && c !== 0x09) || c === 0x7f;
    });
  if (credential.kind === "bearer") {
    const token = credential.token;
    if (typeof token !== "string" || token.length === 0) {
      throw new CredentialError("a bearer credential needs a non-empty token");
    }
    if (bytes(token) > MAX_VALUE_BYTES || !printable(token) || /\s/.test(token)) {
      throw new CredentialError(
        `a bearer token is up to ${MAX_VALUE_BYTES} bytes of visible characters without spaces`,
      );
    }
    return { authorization: `Bearer ${token}` };
  }
  const entries = Object.entries(credential.headers ?? {});
  if (entries.length === 0) throw new CredentialError("a headers credential needs a header");
  if (entries.length > MAX_HEADERS) {
    throw new CredentialError(`at most ${MAX_HEADERS} headers per upstream`);
  }
  const out: Record<string, string> = {};
  for (const [name, value] of entries) {
    if (!HEADER_NAME.test(name)) throw new CredentialError(`"${name}" is not a header name`);
    if (RESERVED.has(name.toLowerCase())) {
      throw new CredentialError(`header ${name} is set by the transport, not by a credential`);
    }
    if (typeof value !== "string" || bytes(value) > MAX_VALUE_BYTES || !printable(value)) {
      throw new CredentialError(
        `header ${name}: expected up to ${MAX_VALUE_BYTES} bytes without control characters`,
      );
    }
    out[name.toLowerCase()] = value;
  }
  return out;
}

/** The encrypted per-upstream credential store. */
export interface CredentialStore {
  /** Whether a key is configured (without one, set and get refuse). */
  readonly available: boolean;
  set(upstream: string, credential: UpstreamCredential): Promise<CredentialSummary>;
  /**
   * The headers to present to `upstream` and their kind, or undefined when none is set. With
   * `maxAgeMs`, what this store read (or found absent) less than that long ago is answered
   * without reading KV again; without it, KV is read. A set or remove through this store
   * applies at once either way.
   */
  get(
    upstream: string,
    options?: { readonly maxAgeMs?: number },
  ): Promise<{ kind: CredentialKind; headers: Record<string, string> } | undefined>;
  list(): Promise<CredentialSummary[]>;
  remove(upstream: string): Promise<boolean>;
  /**
   * Encrypts `value` (JSON) under the same key, bound to `context` (the
   * additional authenticated data: a box made for one context does not open
   * in another). For secrets kept elsewhere in KV: per-principal upstream
   * tokens, authorization flows.
   */
  seal(context: string, value: unknown): Promise<SealedBox>;
  /** Opens a box `seal` made for `context`; throws `CredentialError` if it does not decrypt. */
  open<T>(context: string, box: SealedBox): Promise<T>;
}

/** An AES-256-GCM ciphertext and its IV, base64. */
export interface SealedBox {
  readonly iv: string;
  readonly ct: string;
}

function aad(upstream: string): Uint8Array {
  return new TextEncoder().encode(`warden-upstream-credential/v1\n${upstream}`);
}

/** A stored record's headers; a record that does not decrypt is a CredentialError naming it. */
async function decryptHeaders(
  rec: StoredCredential,
  upstream: string,
  need: () => Promise<CryptoKey>,
): Promise<Record<string, string>> {
  const headers = await decryptJson<Record<string, string>>(await need(), aad(upstream), rec);
  if (headers === undefined) {
    throw new CredentialError(
      `the credential for upstream ${upstream} does not decrypt: another key, or an altered record`,
    );
  }
  return headers;
}

/** AES-256-GCM of `value`'s JSON under `key`, `aad` authenticated alongside. */
async function encryptJson(key: CryptoKey, aad: Uint8Array, value: unknown): Promise<SealedBox> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv: iv as BufferSource, additionalData: aad as BufferSource },
    key,
    new TextEncoder().encode(JSON.stringify(value)) as BufferSource,
  );
  return { iv: toBase64(iv), ct: toBase64(new Uint8Array(ct)) };
}

/** The value `encryptJson` sealed, or undefined when it does not decrypt (key, aad or bytes differ). */
async function decryptJson<T>(
  key: CryptoKey,
  aad: Uint8Array,
  box: SealedBox,
): Promise<T | undefined> {
  let plain: ArrayBuffer;
  try {
    plain = await crypto.subtle.decrypt(
      {
        name: "AES-GCM",
        iv: fromBase64(box.iv) as BufferSource,
        additionalData: aad as BufferSource,
      },
      key,
      fromBase64(box.ct) as BufferSource,
    );
  } catch {
    return undefined;
  }
  return JSON.parse(new TextDecoder().decode(plain)) as T;
}

function contextAad(context: string): Uint8Array {
  return new TextEncoder().encode(`warden-sealed/v1\n${context}`);
}

/**
 * The store over `kv`; `key` undefined means none was configured, and then
 * every set or get says how to configure one (`unavailable` explains where).
 * A function is called (once) when a key is first needed — the server passes
 * one so that a key file is only created when a credential is first stored.
 */
export function createCredentialStore(
  kv: Deno.Kv,
  key: CryptoKey | (() => Promise<CryptoKey>) | undefined,
  unavailable = "no credential key: set WARDEN_CREDENTIAL_KEY or --credential-key FILE",
  options: { readonly now?: () => number } = {},
): CredentialStore {
  const now = options.now ?? Date.now;
  let resolved: Promise<CryptoKey> | undefined;
  const opened = new Map<
    string,
    { versionstamp: string; kind: CredentialKind; headers: Record<string, string>; at: number }
  >();
  /** Upstreams read as having no credential, and when. */
  const absent = new Map<string, number>();
  const forget = (upstream: string) => {
    opened.delete(upstream);
    absent.delete(upstream);
  };
  const need = (): Promise<CryptoKey> => {
    if (key === undefined) return Promise.reject(new CredentialError(unavailable));
    if (typeof key !== "function") return Promise.resolve(key);
    resolved ??= key().catch((e) => {
      resolved = undefined;
      throw e;
    });
    return resolved;
  };
  return {
    available: key !== undefined,
    async set(upstream, credential) {
      const headers = credentialHeaders(credential);
      const record: StoredCredential = {
        v: 1,
        upstream,
        kind: credential.kind,
        header_names: Object.keys(headers).sort(),
        set_at: new Date().toISOString(),
        ...await encryptJson(await need(), aad(upstream), headers),
      };
      await kv.set([...PREFIX, upstream], record);
      forget(upstream);
      const { iv: _iv, ct: _ct, v: _v, ...summary } = record;
      return summary;
    },
    async get(upstream, options) {
      // Within maxAgeMs the last read answers (an upstream request asks each time: a KV read
      // per request was the largest CPU cost of a routed call); decrypted once per version.
      const maxAgeMs = options?.maxAgeMs ?? 0;
      const asked = now();
      const cached = opened.get(upstream);
      if (cached && asked - cached.at < maxAgeMs) {
        return { kind: cached.kind, headers: { ...cached.headers } };
      }
      const gone = absent.get(upstream);
      if (gone !== undefined && asked - gone < maxAgeMs) return undefined;
      const entry = await kv.get<StoredCredential>([...PREFIX, upstream]);
      const rec = entry.value;
      if (rec === null) {
        opened.delete(upstream);
        if (absent.size >= 1000) absent.clear();
        absent.set(upstream, asked);
        return undefined;
      }
      absent.delete(upstream);
      const hit = opened.get(upstream);
      if (hit && hit.versionstamp === entry.versionstamp) {
        hit.at = asked;
        return { kind: hit.kind, headers: { ...hit.headers } };
      }
      const headers = await decryptHeaders(rec, upstream, need);
      if (opened.size >= 1000) opened.clear();
      opened.set(upstream, {
        versionstamp: entry.versionstamp!,
        kind: rec.kind,
        headers,
        at: asked,
      });
      return { kind: rec.kind, headers: { ...headers } };
    },
    async list() {
      const out: CredentialSummary[] = [];
      for await (const e of kv.list<StoredCredential>({ prefix: [...PREFIX] })) {
        const { upstream, kind, header_names, set_at } = e.value;
        out.push({ upstream, kind, header_names, set_at });
      }
      return out;
    },
    seal: async (context, value) => encryptJson(await need(), contextAad(context), value),
    async open<T>(context: string, box: SealedBox): Promise<T> {
      const value = await decryptJson<T>(await need(), contextAad(context), box);
      if (value === undefined) {
        throw new UndecryptableError(
          "a sealed record does not decrypt: another key, another context, or an altered record",
        );
      }
      return value;
    },
    async remove(upstream) {
      const key = [...PREFIX, upstream];
      const existing = await kv.get(key);
      forget(upstream);
      if (existing.value === null) return false;
      await kv.delete(key);
      forget(upstream);
      return true;
    },
  };
}

/** Where the credential key came from, and what to tell the operator. */
export interface LoadedCredentialKey {
  readonly key?: CryptoKey;
  /** The key file read or created, if any (kept away from file tools like the KV). */
  readonly file?: string;
  /** Set when a new key file was written. */
  readonly created?: boolean;
  /** Why there is no key (set/get refuse with this). */
  readonly unavailable?: string;
}

/**
 * The credential key: `WARDEN_CREDENTIAL_KEY` (the key string itself), else
 * `--credential-key FILE`, else `<kv>.credential-key` beside a KV file,
 * created (mode 0600) on first use. With `:memory:` KV a key is made per
 * process (credentials live as long as the KV does). On Deno Deploy only the
 * env var can supply one; without it credentials are refused, saying so.
 */
export async function loadCredentialKey(options: {
  keyString?: string;
  file?: string;
  kvPath?: string;
  onDeploy: boolean;
}): Promise<LoadedCredentialKey> {
  if (options.keyString !== undefined && options.keyString !== "") {
    return { key: await importCredentialKey(options.keyString) };
  }
  if (options.file !== undefined) {
    let text: string;
    try {
      text = await Deno.readTextFile(options.file);
    } catch (e) {
      throw new CredentialError(
        `cannot read --credential-key ${options.file}: ${(e as Error).message}`,
      );
    }
    return { key: await importCredentialKey(text), file: options.file };
  }
  if (options.onDeploy) {
    return {
      unavailable:
        "no credential key on Deno Deploy: set WARDEN_CREDENTIAL_KEY (`warden upstream credential keygen` prints one)",
    };
  }
  if (options.kvPath === undefined || options.kvPath === ":memory:" || options.kvPath === "") {
    return { key: await importCredentialKey(generateCredentialKeyString()) };
  }
  const file = `${options.kvPath}.credential-key`;
  try {
    return { key: await importCredentialKey(await Deno.readTextFile(file)), file };
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      if (e instanceof CredentialError) throw new CredentialError(`${file}: ${e.message}`);
      throw new CredentialError(`cannot read ${file}: ${(e as Error).message}`);
    }
  }
  const text = generateCredentialKeyString();
  try {
    await Deno.writeTextFile(file, text + "\n", { createNew: true, mode: 0o600 });
  } catch (e) {
    // Another process created it first: use theirs.
    if (!(e instanceof Deno.errors.AlreadyExists)) {
      throw new CredentialError(`cannot create ${file}: ${(e as Error).message}`);
    }
    return { key: await importCredentialKey(await Deno.readTextFile(file)), file };
  }
  return { key: await importCredentialKey(text), file, created: true };
}

/**
 * People who log in (the OAuth login page calls `verifyPassword`). Passwords
 * are hashed with scrypt (memory-hard; N=2^15, r=8, p=1, 32-byte key, random
 * 16-byte salt) and compared in constant time.
 *
 * @module
 */
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import { identityUserKey, identityUserPrefix } from "../store/mod.ts";
import { type Principal, PRINCIPAL_NAME } from "./principal.ts";

const PARAMS = { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;
const KEY_LEN = 32;
/** Longest password accepted (bounds the KDF's input). */
export const MAX_PASSWORD_BYTES = 1024;

/** A stored user, without its password hash, as `user list` shows it. */
export interface UserInfo {
  readonly name: string;
  readonly roles: readonly string[];
  readonly created_ms: number;
}

interface UserRecord extends UserInfo {
  readonly kdf: "scrypt";
  readonly n: number;
  readonly r: number;
  readonly p: number;
  readonly salt: string;
  readonly hash: string;
}

function derive(password: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(
      password,
      salt,
      KEY_LEN,
      { N: n, r, p, maxmem: PARAMS.maxmem },
      (err, key) => err ? reject(err) : resolve(key),
    )
  );
}

function checkPassword(password: string): void {
  const bytes = new TextEncoder().encode(password).byteLength;
  if (bytes < 8) throw new Error("password must be at least 8 bytes");
  if (bytes > MAX_PASSWORD_BYTES) throw new Error(`password exceeds ${MAX_PASSWORD_BYTES} bytes`);
}

/** The roles of user `name`, or undefined when there is no such user (an OAuth login's roles). */
export async function userRoles(kv: Deno.Kv, name: string): Promise<string[] | undefined> {
  if (!PRINCIPAL_NAME.test(name)) return undefined;
  const record = (await kv.get<UserRecord>(identityUserKey(name))).value;
  return record ? [...record.roles] : undefined;
}

/** Adds (or replaces) user `name`. */
export async function addUser(
  kv: Deno.Kv,
  input: { name: string; password: string; roles?: readonly string[]; nowMs?: number },
): Promise<UserInfo> {
  if (!PRINCIPAL_NAME.test(input.name)) {
    throw new Error(`invalid user name "${input.name}" (1 to 64 of A-Z a-z 0-9 _ . @ -)`);
  }
  for (const r of input.roles ?? []) {
    if (!PRINCIPAL_NAME.test(r)) throw new Error(`invalid role "${r}"`);
  }
  checkPassword(input.password);
  const salt = randomBytes(16);
  const key = await derive(input.password, salt, PARAMS.N, PARAMS.r, PARAMS.p);
  const record: UserRecord = {
    name: input.name,
    roles: [...(input.roles ?? [])],
    created_ms: input.nowMs ?? Date.now(),
    kdf: "scrypt",
    n: PARAMS.N,
    r: PARAMS.r,
    p: PARAMS.p,
    salt: salt.toString("base64"),
    hash: key.toString("base64"),
  };
  await kv.set(identityUserKey(input.name), record);
  return { name: record.name, roles: record.roles, created_ms: record.created_ms };
}

/** Every user, by name. */
export async function listUsers(kv: Deno.Kv): Promise<UserInfo[]> {
  const out: UserInfo[] = [];
  for await (const e of kv.list<UserRecord>({ prefix: identityUserPrefix() })) {
    out.push({ name: e.value.name, roles: e.value.roles, created_ms: e.value.created_ms });
  }
  return out;
}

/** Removes user `name`; resolves with whether it existed. */
export async function removeUser(kv: Deno.Kv, name: string): Promise<boolean> {
  const key = identityUserKey(name);
  const existing = await kv.get(key);
  if (existing.value === null) return false;
  await kv.delete(key);
  return true;
}

/**
 * The user principal for `name` when `password` is right, else undefined.
 * An unknown name still costs one KDF run, so timing does not reveal which names exist.
 */
export async function verifyPassword(
  kv: Deno.Kv,
  name: string,
  password: string,
): Promise<Principal | undefined> {
  if (new TextEncoder().encode(password).byteLength > MAX_PASSWORD_BYTES) return undefined;
  const record = PRINCIPAL_NAME.test(name)
    ? (await kv.get<UserRecord>(identityUserKey(name))).value
    : null;
  const salt = record ? Buffer.from(record.salt, "base64") : randomBytes(16);
  const key = await derive(
    password,
    salt,
    record?.n ?? PARAMS.N,
    record?.r ?? PARAMS.r,
    record?.p ?? PARAMS.p,
  );
  if (!record) return undefined;
  const expected = Buffer.from(record.hash, "base64");
  if (expected.byteLength !== key.byteLength || !timingSafeEqual(expected, key)) return undefined;
  return { id: record.name, kind: "user", roles: record.roles, scopes: [] };
}

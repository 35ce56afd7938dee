/**
 * The checkpoint signing key and the log's origin. Both are fixed for the
 * life of a log, so they are decided once and kept in KV: every process that
 * shares the KV signs with the same key for the same origin.
 */
import { signingKeyKey, vaultMetaKey } from "../store/mod.ts";
import {
  generateSigner,
  type Signer,
  signerFromKeyString,
  signerToKeyString,
} from "../merkle/mod.ts";

/** Where the signing key came from (for the start-up log line). */
export type SigningKeySource = "configured" | "kv" | "generated";

/** The log's fixed identity. */
export interface VaultIdentity {
  readonly origin: string;
  readonly signer: Signer;
  readonly source: SigningKeySource;
}

/** Raised when configuration contradicts what the log in KV already is. */
export class VaultIdentityError extends Error {
  override name = "VaultIdentityError";
}

interface VaultMeta {
  readonly origin: string;
  readonly createdAt: string;
}

/**
 * Loads (or on first start creates) the log's origin and signing key.
 * A configured key string wins; otherwise the key kept in KV; otherwise one is
 * generated and kept, with an atomic check so two processes starting together
 * agree on a single key.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadVaultIdentity } from "./signing_key.ts";
 * const kv = await Deno.openKv(":memory:");
 * const { origin, signer } = await loadVaultIdentity(kv, { defaultOrigin: "warden/demo" });
 * assert.equal(origin, "warden/demo");
 * // The key is kept in KV: the next start signs with the same one.
 * assert.equal((await loadVaultIdentity(kv, { defaultOrigin: "warden/demo" })).signer.vkey, signer.vkey);
 * kv.close();
 * ```
 */
export async function loadVaultIdentity(
  kv: Deno.Kv,
  options: { origin?: string; defaultOrigin: string; keyString?: string; create?: boolean },
): Promise<VaultIdentity> {
  const create = options.create ?? true;
  let meta = (await kv.get<VaultMeta>(vaultMetaKey())).value;
  if (!meta && !create) {
    throw new VaultIdentityError("There is no vault in this KV (it has never served a call)");
  }
  if (!meta) {
    const wanted: VaultMeta = {
      origin: options.origin ?? options.defaultOrigin,
      createdAt: new Date().toISOString(),
    };
    await kv.atomic().check({ key: vaultMetaKey(), versionstamp: null }).set(vaultMetaKey(), wanted)
      .commit();
    meta = (await kv.get<VaultMeta>(vaultMetaKey())).value!;
  }
  if (options.origin !== undefined && options.origin !== meta.origin) {
    throw new VaultIdentityError(
      `The vault in this KV has origin "${meta.origin}"; --origin "${options.origin}" would change it. ` +
        `A log's origin is fixed: drop --origin or use another KV.`,
    );
  }
  if (options.keyString !== undefined) {
    return {
      origin: meta.origin,
      signer: await signerFromKeyString(options.keyString.trim()),
      source: "configured",
    };
  }
  const stored = await kv.get<string>(signingKeyKey());
  if (stored.value) {
    return { origin: meta.origin, signer: await signerFromKeyString(stored.value), source: "kv" };
  }
  if (!create) throw new VaultIdentityError("The vault in this KV has no stored signing key");
  const generated = await generateSigner(meta.origin);
  const res = await kv.atomic()
    .check({ key: signingKeyKey(), versionstamp: null })
    .set(signingKeyKey(), await signerToKeyString(generated))
    .commit();
  if (res.ok) return { origin: meta.origin, signer: generated, source: "generated" };
  // Another process generated one first: use theirs.
  const winner = await kv.get<string>(signingKeyKey());
  return { origin: meta.origin, signer: await signerFromKeyString(winner.value!), source: "kv" };
}

/**
 * Where the checkpoint signing key lives by default: its own file beside the
 * KV file (`<kv>.signing-key`, mode 0600), never inside the KV it signs.
 * Returns the key string, reading the file, or moving a key an older Warden
 * kept in KV into it (then deleting it from KV), or generating one. `created`
 * says which happened, for the start-up log line.
 */
export async function loadDefaultSigningKey(
  kv: Deno.Kv,
  options: { file: string; origin: string },
): Promise<{ keyString: string; created?: "generated" | "moved from KV" }> {
  try {
    return { keyString: (await Deno.readTextFile(options.file)).trim() };
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const stored = (await kv.get<string>(signingKeyKey())).value;
  const keyString = stored ?? await signerToKeyString(await generateSigner(options.origin));
  try {
    await Deno.writeTextFile(options.file, keyString + "\n", { mode: 0o600, createNew: true });
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    // Another process sharing this KV created it first: use theirs once written.
    for (let i = 0; i < 50; i++) {
      const text = (await Deno.readTextFile(options.file)).trim();
      if (text !== "") return { keyString: text };
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new VaultIdentityError(`Signing key file ${options.file} exists but is empty`);
  }
  await Deno.chmod(options.file, 0o600).catch(() => {});
  if (stored) await kv.delete(signingKeyKey());
  return { keyString, created: stored ? "moved from KV" : "generated" };
}

/**
 * Operator key files. `operator.key` is JSON {name, seed} (the 32-byte
 * Ed25519 seed, base64) written with mode 0600; `operator.pub` is the base64
 * raw public key, the value that goes into the policy's `operators` list.
 */
import { fromBase64, toBase64 } from "../lib/mod.ts";
import { decisionMessage, type HoldDecision } from "./holds.ts";

const PKCS8_PREFIX = Uint8Array.fromHex("302e020100300506032b657004220420");

/** A loaded operator key. */
export interface OperatorKey {
  readonly name: string;
  readonly publicKey: string;
  readonly privateKey: CryptoKey;
}

/** Generates a key pair; returns the two file contents. */
export async function generateOperatorKey(
  name: string,
): Promise<{ keyFile: string; pubFile: string; publicKey: string }> {
  if (!/^[A-Za-z0-9_.@-]{1,64}$/.test(name)) {
    throw new RangeError(
      `Operator name must be 1-64 of A-Z a-z 0-9 _ . @ -, got ${JSON.stringify(name)}`,
    );
  }
  const pair = await crypto.subtle.generateKey("Ed25519", true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
  const seed = pkcs8.slice(PKCS8_PREFIX.length);
  const publicKey = toBase64(new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey)));
  const keyFile = JSON.stringify({ name, seed: toBase64(seed), public_key: publicKey }, null, 2) +
    "\n";
  seed.fill(0);
  pkcs8.fill(0);
  return { keyFile, pubFile: publicKey + "\n", publicKey };
}

/** Reads an operator.key file's content. */
export async function loadOperatorKey(text: string): Promise<OperatorKey> {
  let parsed: { name?: unknown; seed?: unknown; public_key?: unknown };
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new TypeError(
      "operator key file is not JSON (expected the operator.key written by warden keygen)",
    );
  }
  if (
    typeof parsed.name !== "string" || typeof parsed.seed !== "string" ||
    typeof parsed.public_key !== "string"
  ) {
    throw new TypeError("operator key file must hold name, seed and public_key");
  }
  const seed = fromBase64(parsed.seed);
  if (seed.byteLength !== 32) throw new TypeError("operator key seed must be 32 bytes");
  const pkcs8 = new Uint8Array(PKCS8_PREFIX.length + 32);
  pkcs8.set(PKCS8_PREFIX);
  pkcs8.set(seed, PKCS8_PREFIX.length);
  const privateKey = await crypto.subtle.importKey("pkcs8", pkcs8, "Ed25519", false, ["sign"]);
  pkcs8.fill(0);
  return { name: parsed.name, publicKey: parsed.public_key, privateKey };
}

/** Signs a decision on a hold; returns the base64 signature. */
export async function signDecision(
  key: OperatorKey,
  input: { decision: HoldDecision; holdId: string; digest: string },
): Promise<string> {
  const message = decisionMessage(input.decision, input.holdId, input.digest);
  return toBase64(
    new Uint8Array(
      await crypto.subtle.sign("Ed25519", key.privateKey, message as Uint8Array<ArrayBuffer>),
    ),
  );
}

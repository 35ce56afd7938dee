/**
 * C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 keys, the
 * format of golang.org/x/mod/sumdb/note: text ending in a newline, a blank
 * line, then one line per signature, `— <key name> <base64(key id ‖ sig)>`.
 *
 * Keys travel as strings: a verifier key (vkey) is
 * `<name>+<key id hex>+<base64(0x01 ‖ public key)>` and a signer key is
 * `PRIVATE+KEY+<name>+<key id hex>+<base64(0x01 ‖ 32-byte seed)>`, where the
 * key id is the first four bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key).
 *
 * @module
 */

import { fromBase64, sha256, toBase64 } from "../lib/mod.ts";

/** Signature type byte of Ed25519 note keys. */
const ALG_ED25519 = 0x01;
const SIGNATURE_PREFIX = "\u2014 ";
// Go's note.Open stops at 100; C2SP requires accepting at least 16.
const MAX_SIGNATURES = 100;
// RFC 8410 PKCS#8 wrapping of a raw 32-byte Ed25519 seed: WebCrypto imports
// private keys only as PKCS#8 or JWK.
const PKCS8_HEX = "302e020100300506032b657004220420";
const PKCS8_ED25519_PREFIX = Uint8Array.fromHex(PKCS8_HEX);
const ED25519 = { name: "Ed25519" } as const;

/** Key that signs notes. The secret stays inside a CryptoKey, so logging a Signer leaks nothing. */
export interface Signer {
  readonly name: string;
  /** uint32 key id. */
  readonly keyId: number;
  /** 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
  /** The matching verifier key string. */
  readonly vkey: string;
  readonly privateKey: CryptoKey;
}

/** Key that verifies notes. */
export interface Verifier {
  readonly name: string;
  /** uint32 key id. */
  readonly keyId: number;
  /** 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
  /** The verifier key string it was made from. */
  readonly vkey: string;
  readonly cryptoKey: CryptoKey;
}

/** A verified note. */
export interface OpenedNote {
  /** The signed text, ending in a newline. */
  text: string;
  /** The known keys whose signatures verified, in signature order. */
  verifiedBy: Verifier[];
}

/** Base class of the note failures callers are expected to catch. */
export class NoteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NoteError";
  }
}

/** The note does not follow the signed-note format. */
export class MalformedNoteError extends NoteError {
  constructor(message: string) {
    super(message);
    this.name = "MalformedNoteError";
  }
}

/** A known key signed the note but its signature does not verify. */
export class InvalidSignatureError extends NoteError {
  keyName: string;
  keyId: number;

  constructor(message: string, { keyName, keyId }: { keyName: string; keyId: number }) {
    super(message);
    this.name = "InvalidSignatureError";
    this.keyName = keyName;
    this.keyId = keyId;
  }
}

/** No signature on the note is from a known key. */
export class UnverifiedNoteError extends NoteError {
  /** The keys that did sign, as `name+keyid`. */
  signedBy: string[];

  constructor(message: string, signedBy: string[]) {
    super(message);
    this.name = "UnverifiedNoteError";
    this.signedBy = signedBy;
  }
}

// Go's unicode.IsSpace set; JavaScript's \s lacks U+0085 and adds U+FEFF,
// which is refused as well to stay on the strict side.
// deno-lint-ignore no-control-regex -- matching control characters is the point
const NAME_FORBIDDEN = /[\s\u0085+\u0000-\u001f\u007f]/u;

/**
 * Whether `name` may name a note key: non-empty, well-formed Unicode, no
 * whitespace, no '+' and no control characters.
 */
export function isValidKeyName(name: string): boolean {
  return typeof name === "string" && name.length > 0 && name.isWellFormed() &&
    !NAME_FORBIDDEN.test(name);
}

function assertKeyName(name: string, context: string): void {
  if (!isValidKeyName(name)) {
    throw new TypeError(`${context}: invalid key name ${JSON.stringify(name)}`);
  }
}

const encoder = new TextEncoder();

/** Key id of an Ed25519 note key: SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]. */
export function keyIdOf(name: string, publicKey: Uint8Array): number {
  const nameBytes = encoder.encode(name);
  const input = new Uint8Array(nameBytes.length + 2 + publicKey.length);
  input.set(nameBytes);
  input[nameBytes.length] = 0x0a;
  input[nameBytes.length + 1] = ALG_ED25519;
  input.set(publicKey, nameBytes.length + 2);
  const digest = sha256(input);
  return new DataView(digest.buffer, digest.byteOffset, 4).getUint32(0);
}

function hex8(keyId: number): string {
  return keyId.toString(16).padStart(8, "0");
}

function encodeVkey(
  { name, keyId, publicKey }: { name: string; keyId: number; publicKey: Uint8Array },
): string {
  return `${name}+${hex8(keyId)}+${toBase64(Uint8Array.of(ALG_ED25519, ...publicKey))}`;
}

// Splits "<name>+<hex8>+<base64>" where only the base64 part may contain '+'.
function splitKey(
  text: string,
  context: string,
): { name: string; keyId: number; keyBytes: Uint8Array } {
  const first = text.indexOf("+");
  const second = first < 0 ? -1 : text.indexOf("+", first + 1);
  if (second < 0) throw new TypeError(`${context}: expected <name>+<key id>+<key>`);
  const name = text.slice(0, first);
  const hex = text.slice(first + 1, second);
  assertKeyName(name, context);
  if (!/^[0-9a-f]{8}$/i.test(hex)) throw new TypeError(`${context}: key id must be 8 hex digits`);
  let keyBytes: Uint8Array;
  try {
    keyBytes = fromBase64(text.slice(second + 1));
  } catch {
    throw new TypeError(`${context}: key is not valid base64`);
  }
  if (keyBytes.length !== 33 || keyBytes[0] !== ALG_ED25519) {
    throw new TypeError(`${context}: key must be 0x01 followed by 32 Ed25519 bytes`);
  }
  return { name, keyId: parseInt(hex, 16), keyBytes: keyBytes.slice(1) };
}

async function signerFromSeed(
  name: string,
  { seed, expectedKeyId }: { seed: Uint8Array; expectedKeyId?: number },
): Promise<Signer> {
  const pkcs8 = new Uint8Array(PKCS8_ED25519_PREFIX.length + seed.length);
  pkcs8.set(PKCS8_ED25519_PREFIX);
  pkcs8.set(seed, PKCS8_ED25519_PREFIX.length);
  // Extractable so that signerToKeyString can write the key back out.
  const privateKey = await crypto.subtle
    .importKey("pkcs8", pkcs8, ED25519, true, ["sign"])
    .finally(() => pkcs8.fill(0));
  const jwk = await crypto.subtle.exportKey("jwk", privateKey);
  const publicKey = Uint8Array.fromBase64(jwk.x!, { alphabet: "base64url" });
  const keyId = keyIdOf(name, publicKey);
  if (expectedKeyId !== undefined && keyId !== expectedKeyId) {
    throw new TypeError(
      `Cannot parse signer key: key id ${hex8(expectedKeyId)} does not match the key (${
        hex8(keyId)
      })`,
    );
  }
  return { name, keyId, publicKey, vkey: encodeVkey({ name, keyId, publicKey }), privateKey };
}

/**
 * Generates a new Ed25519 note signer named `name`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateSigner } from "./note.ts";
 * const signer = await generateSigner("warden.example/log");
 * assert.match(signer.vkey, /^warden\.example\/log\+[0-9a-f]{8}\+[A-Za-z0-9+/]+=*$/);
 * ```
 */
export async function generateSigner(name: string): Promise<Signer> {
  assertKeyName(name, "Cannot generate signer");
  const seed = crypto.getRandomValues(new Uint8Array(32));
  try {
    return await signerFromSeed(name, { seed });
  } finally {
    seed.fill(0);
  }
}

/**
 * Parses a signer key string `PRIVATE+KEY+<name>+<key id>+<base64(0x01 ‖
 * seed)>` (the golang.org/x/mod/sumdb/note format), checking that the key id
 * matches the key. Throws a TypeError on any defect.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { signerFromKeyString } from "./note.ts";
 * const signer = await signerFromKeyString(
 *   "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
 * );
 * assert.equal(signer.vkey, "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW");
 * ```
 */
export async function signerFromKeyString(keyString: string): Promise<Signer> {
  const context = "Cannot parse signer key";
  if (typeof keyString !== "string" || !keyString.startsWith("PRIVATE+KEY+")) {
    throw new TypeError(`${context}: expected PRIVATE+KEY+<name>+<key id>+<key>`);
  }
  const { name, keyId, keyBytes } = splitKey(keyString.slice("PRIVATE+KEY+".length), context);
  try {
    return await signerFromSeed(name, { seed: keyBytes, expectedKeyId: keyId });
  } finally {
    keyBytes.fill(0);
  }
}

/**
 * Writes a signer back out as its secret key string (the inverse of
 * `signerFromKeyString`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateSigner, signerFromKeyString, signerToKeyString } from "./note.ts";
 * const signer = await generateSigner("warden.example/log");
 * const secret = await signerToKeyString(signer);
 * assert.ok(secret.startsWith("PRIVATE+KEY+warden.example/log+"));
 * assert.equal((await signerFromKeyString(secret)).vkey, signer.vkey);
 * ```
 */
export async function signerToKeyString(signer: Signer): Promise<string> {
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", signer.privateKey));
  const blob = new Uint8Array(33);
  try {
    // Only the plain RFC 8410 form is the prefix plus the seed; anything
    // else (e.g. with an embedded public key) must not be cut blindly.
    const prefix = pkcs8.subarray(0, PKCS8_ED25519_PREFIX.length);
    if (pkcs8.length !== PKCS8_ED25519_PREFIX.length + 32 || prefix.toHex() !== PKCS8_HEX) {
      throw new TypeError("Cannot export signer key: unexpected PKCS#8 encoding");
    }
    blob[0] = ALG_ED25519;
    blob.set(pkcs8.subarray(PKCS8_ED25519_PREFIX.length), 1);
    return `PRIVATE+KEY+${signer.name}+${hex8(signer.keyId)}+${toBase64(blob)}`;
  } finally {
    pkcs8.fill(0);
    blob.fill(0);
  }
}

/**
 * Parses a verifier key string `<name>+<key id>+<base64(0x01 ‖ public key)>`,
 * checking that the key id matches the key. Throws a TypeError on any defect.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { verifierFromVkey } from "./note.ts";
 * const verifier = await verifierFromVkey(
 *   "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
 * );
 * assert.equal(verifier.name, "example.com/foo");
 * assert.equal(verifier.keyId, 0x530d903a);
 * ```
 */
export async function verifierFromVkey(vkey: string): Promise<Verifier> {
  const context = "Cannot parse verifier key";
  if (typeof vkey !== "string") throw new TypeError(`${context}: not a string`);
  const { name, keyId, keyBytes } = splitKey(vkey, context);
  if (keyIdOf(name, keyBytes) !== keyId) {
    throw new TypeError(`${context}: key id ${hex8(keyId)} does not match the key`);
  }
  const cryptoKey = await crypto.subtle.importKey(
    "raw",
    new Uint8Array(keyBytes),
    ED25519,
    true,
    ["verify"],
  );
  return {
    name,
    keyId,
    publicKey: keyBytes,
    vkey: encodeVkey({ name, keyId, publicKey: keyBytes }),
    cryptoKey,
  };
}

// Signed notes must not contain ASCII control characters other than newline.
// deno-lint-ignore no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u0009\u000b-\u001f]/;

function assertNoteText(text: string, context: string): void {
  if (typeof text !== "string") throw new TypeError(`${context}: text is not a string`);
  if (!text.endsWith("\n")) throw new TypeError(`${context}: text must end with a newline`);
  if (!text.isWellFormed()) throw new TypeError(`${context}: text is not valid Unicode`);
  if (CONTROL.test(text)) throw new TypeError(`${context}: text contains a control character`);
}

/**
 * Signs `text` (which must end with a newline and contain no control
 * characters other than newlines) with one or more signers and returns the
 * signed note.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateSigner, signNote } from "./note.ts";
 * const note = await signNote("hello\n", await generateSigner("warden.example/log"));
 * assert.match(note, /^hello\n\n— warden\.example\/log [A-Za-z0-9+/]+=*\n$/);
 * ```
 */
export async function signNote(text: string, signers: Signer | readonly Signer[]): Promise<string> {
  const context = "Cannot sign note";
  assertNoteText(text, context);
  const list = Array.isArray(signers) ? signers : [signers as Signer];
  if (list.length === 0) throw new TypeError(`${context}: no signer`);
  const message = encoder.encode(text);
  const lines: string[] = [];
  for (const signer of list) {
    assertKeyName(signer.name, context);
    const signature = new Uint8Array(
      await crypto.subtle.sign(ED25519, signer.privateKey, message),
    );
    const blob = new Uint8Array(4 + signature.length);
    new DataView(blob.buffer).setUint32(0, signer.keyId);
    blob.set(signature, 4);
    lines.push(`${SIGNATURE_PREFIX}${signer.name} ${toBase64(blob)}\n`);
  }
  return `${text}\n${lines.join("")}`;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Splits a signed note into its text and signature lines without checking
 * any signature. Throws `MalformedNoteError` if it is not a signed note.
 * Use only to locate or display a note whose signatures failed; trust
 * nothing from it.
 */
export function splitNote(
  note: string | Uint8Array,
): { text: string; signatures: { name: string; keyId: number; signature: Uint8Array }[] } {
  let message: string;
  if (note instanceof Uint8Array) {
    try {
      message = strictUtf8.decode(note);
    } catch {
      throw new MalformedNoteError("Cannot open note: not valid UTF-8");
    }
  } else if (typeof note === "string") {
    if (!note.isWellFormed()) throw new MalformedNoteError("Cannot open note: not valid Unicode");
    message = note;
  } else {
    throw new TypeError("Cannot open note: expected a string or bytes");
  }
  if (CONTROL.test(message)) {
    throw new MalformedNoteError("Cannot open note: contains a control character");
  }
  // The text may contain blank lines; the last blank line is the separator.
  const split = message.lastIndexOf("\n\n");
  if (split < 0) throw new MalformedNoteError("Cannot open note: no blank line before signatures");
  const text = message.slice(0, split + 1);
  const block = message.slice(split + 2);
  if (block.length === 0 || !block.endsWith("\n")) {
    throw new MalformedNoteError("Cannot open note: signature block must end with a newline");
  }
  const lines = block.slice(0, -1).split("\n");
  if (lines.length > MAX_SIGNATURES) {
    throw new MalformedNoteError(`Cannot open note: more than ${MAX_SIGNATURES} signatures`);
  }
  const signatures = lines.map((line, i) => {
    const where = `Cannot open note: signature line ${i + 1}`;
    if (!line.startsWith(SIGNATURE_PREFIX)) {
      throw new MalformedNoteError(`${where} does not start with "— "`);
    }
    const rest = line.slice(SIGNATURE_PREFIX.length);
    const space = rest.indexOf(" ");
    if (space < 0) throw new MalformedNoteError(`${where} has no signature`);
    const name = rest.slice(0, space);
    if (!isValidKeyName(name)) throw new MalformedNoteError(`${where} has an invalid key name`);
    let blob: Uint8Array;
    try {
      blob = fromBase64(rest.slice(space + 1));
    } catch {
      throw new MalformedNoteError(`${where} is not valid base64`);
    }
    if (blob.length < 5) throw new MalformedNoteError(`${where} is too short`);
    const keyId = new DataView(blob.buffer, blob.byteOffset).getUint32(0);
    return { name, keyId, signature: blob.slice(4) };
  });
  return { text, signatures };
}

/**
 * Opens a signed note: checks its format, then every signature by a key in
 * `verifiers`. Signatures by unknown keys are ignored, as C2SP requires (they
 * may be witnesses' cosignatures). Throws `MalformedNoteError` if the format
 * is wrong, `InvalidSignatureError` if a known key's signature fails, and
 * `UnverifiedNoteError` if no known key signed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openNote, verifierFromVkey } from "./note.ts";
 * const verifier = await verifierFromVkey(
 *   "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
 * );
 * const { text } = await openNote(
 *   "This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n",
 *   [verifier],
 * );
 * assert.equal(text, "This is an example message.\n");
 * ```
 */
export async function openNote(
  note: string | Uint8Array,
  verifiers: readonly Verifier[],
): Promise<OpenedNote> {
  if (!Array.isArray(verifiers)) {
    throw new TypeError("Cannot open note: verifiers must be an array");
  }
  const { text, signatures } = splitNote(note);
  const message = encoder.encode(text);
  const verifiedBy: Verifier[] = [];
  const signedBy: string[] = [];
  for (const { name, keyId, signature } of signatures) {
    signedBy.push(`${name}+${hex8(keyId)}`);
    const verifier = verifiers.find((v) => v.name === name && v.keyId === keyId);
    if (verifier === undefined) continue;
    // Unlike Go's note.Open, a repeated signature by a known key is checked
    // too: C2SP says a failing known-key signature should reject the note.
    const valid = signature.length === 64 &&
      await crypto.subtle.verify(ED25519, verifier.cryptoKey, new Uint8Array(signature), message);
    if (!valid) {
      throw new InvalidSignatureError(
        `Cannot open note: invalid signature by ${name}+${hex8(keyId)}`,
        { keyName: name, keyId },
      );
    }
    if (!verifiedBy.includes(verifier)) verifiedBy.push(verifier);
  }
  if (verifiedBy.length === 0) {
    throw new UnverifiedNoteError(
      `Cannot open note: no signature by a known key (signed by ${signedBy.join(", ")})`,
      signedBy,
    );
  }
  return { text, verifiedBy };
}

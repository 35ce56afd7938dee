/**
 * SHA-256 digests. They come from `node:crypto` rather than
 * `crypto.subtle.digest`: it is synchronous and, under Deno, about thirty
 * times faster per call (3 µs against 90 µs), which decides whether verifying
 * a million entries takes seconds or minutes.
 *
 * @module
 */

import { createHash } from "node:crypto";

/**
 * A plain Uint8Array view of a `node:crypto` digest (a Buffer): it keeps deep
 * equality in tests and the WebCrypto typings happy.
 */
export function toBytes(digest: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(digest.buffer as ArrayBuffer, digest.byteOffset, digest.byteLength);
}

/**
 * SHA-256 of `bytes`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sha256 } from "./digests.ts";
 * import { toHex } from "./bytes.ts";
 * assert.equal(
 *   toHex(sha256(new Uint8Array())),
 *   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
 * );
 * ```
 */
export function sha256(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return toBytes(createHash("sha256").update(bytes).digest());
}

/**
 * Hex SHA-256 of `text` encoded as UTF-8 (three times faster than encoding
 * first and hashing the bytes). `text` must be well-formed: a lone surrogate
 * would be hashed as U+FFFD.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sha256HexOfText } from "./digests.ts";
 * assert.equal(
 *   sha256HexOfText("abc"),
 *   "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
 * );
 * ```
 */
export function sha256HexOfText(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

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
 * import { sha256, toHex } from "./digests.ts";
 * toHex(sha256(new Uint8Array())); // "e3b0c442…b855"
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
 * import { sha256HexOfText } from "./digests.ts";
 * sha256HexOfText(""); // "e3b0c442…b855"
 * ```
 */
export function sha256HexOfText(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

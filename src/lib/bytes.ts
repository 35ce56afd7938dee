/**
 * The byte encodings Warden writes and reads: lower-case hex and strict
 * standard base64 (one accepted text form per byte string), and byte equality.
 *
 * @module
 */

/**
 * Lower-case hexadecimal encoding of `bytes`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { toHex } from "./bytes.ts";
 * assert.equal(toHex(new Uint8Array([0, 255])), "00ff");
 * ```
 */
export function toHex(bytes: Uint8Array): string {
  return bytes.toHex();
}

/**
 * Decodes hexadecimal (either case, even length, nothing else); throws a
 * SyntaxError on any other input instead of guessing.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fromHex } from "./bytes.ts";
 * assert.deepEqual(fromHex("00FF"), new Uint8Array([0, 255]));
 * assert.throws(() => fromHex("0"), SyntaxError); // odd length
 * ```
 */
export function fromHex(text: string): Uint8Array<ArrayBuffer> {
  if (typeof text !== "string") throw new TypeError("Cannot decode hex: input is not a string");
  try {
    return Uint8Array.fromHex(text);
  } catch {
    throw new SyntaxError(`Cannot decode hex: invalid input of length ${text.length}`);
  }
}

/**
 * Standard padded base64 (RFC 4648 section 4) of `bytes`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { toBase64 } from "./bytes.ts";
 * assert.equal(toBase64(new Uint8Array([97])), "YQ==");
 * ```
 */
export function toBase64(bytes: Uint8Array): string {
  return bytes.toBase64();
}

// Uint8Array.fromBase64 silently skips ASCII whitespace; a strict decoder
// must not, or two different strings would decode to the same bytes.
const BASE64_WHITESPACE = /[\t\n\f\r ]/;

/**
 * Decodes standard padded base64 strictly: the canonical encoding only, so
 * no whitespace, no URL-safe alphabet, no missing padding and no non-zero
 * padding bits. Throws a SyntaxError otherwise, so every byte string has
 * exactly one accepted text form.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fromBase64 } from "./bytes.ts";
 * assert.deepEqual(fromBase64("YQ=="), new Uint8Array([97]));
 * assert.throws(() => fromBase64("YQ"), SyntaxError); // missing padding
 * assert.throws(() => fromBase64("YR=="), SyntaxError); // non-zero padding bits
 * ```
 */
export function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  if (typeof text !== "string") throw new TypeError("Cannot decode base64: input is not a string");
  if (!BASE64_WHITESPACE.test(text)) {
    try {
      return Uint8Array.fromBase64(text, { lastChunkHandling: "strict" });
    } catch {
      // fall through to one error message for every malformed input
    }
  }
  throw new SyntaxError(`Cannot decode base64: invalid input of length ${text.length}`);
}

/** Byte-wise equality of two hashes (not constant time: hashes here are public). */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) return false;
  }
  return true;
}

const utf8 = new TextEncoder();

/**
 * The UTF-8 size of `text` as `TextEncoder` encodes it (a lone surrogate is
 * U+FFFD, three bytes), counted without encoding a copy when the text is
 * short — a call's arguments and results are measured on every call.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { utf8ByteLength } from "./bytes.ts";
 * assert.equal(utf8ByteLength("aé€😀"), 1 + 2 + 3 + 4);
 * assert.equal(utf8ByteLength("\ud800"), 3);
 * ```
 */
export function utf8ByteLength(text: string): number {
  // Long text: the native encoder is faster than a loop, and its copy is short-lived.
  if (text.length > 4096) return utf8.encode(text).byteLength;
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      const next = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
      if (next >= 0xdc00 && next <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

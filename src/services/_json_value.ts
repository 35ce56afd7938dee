/**
 * A caller's JSON value as the bus and the memory store keep it: its JSON text (what is measured
 * and stored), its UTF-8 size under a cap, and its canonical digest.
 */
import { digestJson } from "../lib/mod.ts";

const utf8 = new TextEncoder();

/** The errors {@link encodeJsonValue} throws, in the calling service's own words and class. */
export interface JsonValueErrors {
  /** The value is `undefined` (nothing was given). */
  missing(): Error;
  /** `JSON.stringify` refused the value (a cycle, a BigInt). */
  notJson(): Error;
  /** The JSON text is over the cap. */
  tooLarge(bytes: number): Error;
}

/**
 * Encodes `value` as JSON of at most `maxBytes` UTF-8 bytes; the digest is computed only once
 * the size is within the cap.
 *
 * @example
 * ```ts
 * import { encodeJsonValue } from "./_json_value.ts";
 * const errors = {
 *   missing: () => new Error("no value"),
 *   notJson: () => new Error("not JSON"),
 *   tooLarge: (bytes: number) => new Error(`${bytes} bytes`),
 * };
 * const { json, bytes } = encodeJsonValue({ a: "é" }, 64, errors);
 * console.log(json, bytes); // {"a":"é"} 10
 * ```
 */
export function encodeJsonValue(
  value: unknown,
  maxBytes: number,
  errors: JsonValueErrors,
): { json: string; bytes: number; sha256: string } {
  if (value === undefined) throw errors.missing();
  let json: string;
  try {
    json = JSON.stringify(value);
  } catch {
    throw errors.notJson();
  }
  const bytes = utf8.encode(json).byteLength;
  if (bytes > maxBytes) throw errors.tooLarge(bytes);
  return { json, bytes, sha256: digestJson(JSON.parse(json)) };
}

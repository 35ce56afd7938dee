/**
 * Canonical JSON for vault entries: one byte string per value, so a leaf hash
 * identifies an entry independently of who serialised it.
 *
 * The rules follow RFC 8785 (JCS) where it applies — object keys sorted by
 * UTF-16 code units, no whitespace, strings escaped as `JSON.stringify` does,
 * UTF-8 output, lone surrogates refused — and narrow its number rule: only
 * integers within ±(2^53 − 1) are accepted, written in plain decimal.
 *
 * @module
 */

/** Options of `canonicalize` and `canonicalString`. */
export interface CanonicalOptions {
  /** Name of the value in error messages, e.g. "entry". Defaults to "value". */
  name?: string;
  /**
   * "integers" (default) refuses non-integers — the rule for vault entries.
   * "jcs" accepts every finite number, written as RFC 8785 prescribes
   * (ECMAScript's shortest round-trip form): for digests of arbitrary tool
   * arguments and results, which may contain floats.
   */
  numbers?: "integers" | "jcs";
  /**
   * "refuse" (default, RFC 8785) throws on a lone surrogate; "escape" writes
   * it as a lower-case `\\udxxx` escape, as `JSON.stringify` does, so any
   * JS string encodes: the rule for vault entries, whose arguments come from
   * clients. The escape is ASCII, so the UTF-8 bytes stay well-formed.
   */
  surrogates?: "refuse" | "escape";
}

import { sha256HexOfText } from "./digests.ts";

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

// The path to the value being encoded, kept as a stack of keys and only
// turned into text when something is refused: building path strings for
// every key made encoding about 1.5 times slower, and verifying a bundle
// re-encodes every entry.
interface Walk {
  name: string;
  jcs: boolean;
  escape: boolean;
  keys: (string | number)[];
  ancestors: object[];
}

function fail(walk: Walk, problem: string): never {
  let path = walk.name;
  for (const key of walk.keys) {
    if (typeof key === "number") path += `[${key}]`;
    else path += IDENTIFIER.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
  }
  throw new TypeError(`Cannot encode ${path}: ${problem}`);
}

// Characters JSON.stringify escapes (quote, backslash, C0 controls) or may
// (surrogates, escaped when unpaired). Strings without any are copied as is;
// skipping JSON.stringify for them cut the time to encode an entry by a
// quarter.
// deno-lint-ignore no-control-regex -- matching control characters is the point
const SPECIAL = /["\\\u0000-\u001f\ud800-\udfff]/;

function encodeString(text: string, walk: Walk): string {
  if (!SPECIAL.test(text)) return `"${text}"`;
  if (!walk.escape && !text.isWellFormed()) fail(walk, "string contains a lone surrogate");
  return JSON.stringify(text);
}

function encode(value: unknown, walk: Walk): string {
  switch (typeof value) {
    case "string":
      return encodeString(value, walk);
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (walk.jcs && Number.isFinite(value)) return JSON.stringify(value);
      if (!Number.isSafeInteger(value)) {
        if (Number.isInteger(value)) fail(walk, `integer ${value} is outside ±(2^53 − 1)`);
        fail(walk, `non-integer number ${value}`);
      }
      // String(-0) is "0": JSON has no integer negative zero, and -0 === 0.
      return String(value);
    case "object":
      break;
    default:
      fail(walk, `unsupported ${typeof value}`);
  }
  if (value === null) return "null";
  const { keys: path, ancestors } = walk;
  if (ancestors.includes(value)) fail(walk, "circular reference");
  ancestors.push(value);
  let out: string;
  if (Array.isArray(value)) {
    out = "[";
    for (let i = 0; i < value.length; i++) {
      path.push(i);
      if (!(i in value)) fail(walk, "array hole");
      out += (i === 0 ? "" : ",") + encode(value[i], walk);
      path.pop();
    }
    out += "]";
  } else {
    const prototype = Object.getPrototypeOf(value);
    if (prototype !== Object.prototype && prototype !== null) {
      fail(walk, `unsupported object ${prototype?.constructor?.name ?? "with custom prototype"}`);
    }
    if (Object.getOwnPropertySymbols(value).length > 0) fail(walk, "symbol key");
    const record = value as Record<string, unknown>;
    // Array.prototype.sort compares strings by UTF-16 code units, which is
    // exactly the RFC 8785 key order.
    const keys = Object.keys(record).sort();
    out = "{";
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i];
      path.push(key);
      out += (i === 0 ? "" : ",") + encodeString(key, walk) + ":" + encode(record[key], walk);
      path.pop();
    }
    out += "}";
  }
  ancestors.pop();
  return out;
}

/**
 * Encodes `value` as canonical JSON text.
 *
 * Accepted: null, booleans, strings without lone surrogates, arrays without
 * holes, plain objects (own string keys only) and numbers that are integers
 * within ±(2^53 − 1). Numbers are written in plain decimal, and -0 as `0`
 * (JSON cannot tell them apart once parsed). Non-integers, NaN and ±Infinity
 * are refused rather than encoded, because their text form is where JSON
 * encoders disagree; the vault records durations in integer milliseconds or
 * microseconds instead. Undefined, functions, bigints, symbols, cycles and
 * non-plain objects (Date, Map, typed arrays, class instances) are refused
 * too. Every refusal is a TypeError naming the path, e.g.
 * `Cannot encode entry.latency_ms: non-integer number 1.5`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { canonicalString } from "./canonical_json.ts";
 * assert.equal(canonicalString({ b: 1, a: [true, null, "é"] }), '{"a":[true,null,"é"],"b":1}');
 * ```
 */
export function canonicalString(value: unknown, options: CanonicalOptions = {}): string {
  return encode(value, {
    name: options.name ?? "value",
    jcs: options.numbers === "jcs",
    escape: options.surrogates === "escape",
    keys: [],
    ancestors: [],
  });
}

/**
 * Encodes each own member of the plain object `record` as canonical `"key":value` text, in
 * canonical key order, handing each to `member`: one walk serves every member, for a caller that
 * splices members into a larger text (the vault's prepared entries). Same rules as
 * `canonicalString`; a refusal names the path as `<name>.<key>…`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { canonicalMembers } from "./canonical_json.ts";
 * const out: string[] = [];
 * canonicalMembers({ b: [1], a: "x" }, {}, (key, text) => out.push(`${key}=${text}`));
 * assert.deepEqual(out, ['a="a":"x"', 'b="b":[1]']);
 * ```
 */
export function canonicalMembers(
  record: Record<string, unknown>,
  options: CanonicalOptions,
  member: (key: string, text: string) => void,
): void {
  const walk: Walk = {
    name: options.name ?? "value",
    jcs: options.numbers === "jcs",
    escape: options.surrogates === "escape",
    keys: [],
    ancestors: [],
  };
  for (const key of Object.keys(record).sort()) {
    walk.keys.push(key);
    member(key, encodeString(key, walk) + ":" + encode(record[key], walk));
    walk.keys.pop();
  }
}

const encoder = new TextEncoder();

/**
 * Encodes `value` as canonical JSON in UTF-8 bytes: the bytes a leaf hash is
 * computed over. Same rules and errors as `canonicalString`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { canonicalize } from "./canonical_json.ts";
 * assert.deepEqual(canonicalize({ index: 0 }), new TextEncoder().encode('{"index":0}'));
 * ```
 */
export function canonicalize(value: unknown, options: CanonicalOptions = {}): Uint8Array {
  return encoder.encode(canonicalString(value, options));
}

/**
 * Hex SHA-256 of the RFC 8785 canonical form of any JSON value (floats
 * allowed): the digest the vault records for tool arguments and results, and
 * the basis of hold digests. `undefined` digests as `null`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { digestJson } from "./canonical_json.ts";
 * assert.equal(digestJson({ b: 1.5, a: 1 }), digestJson({ a: 1, b: 1.5 }));
 * assert.match(digestJson({ a: 1 }), /^[0-9a-f]{64}$/);
 * ```
 */
export function digestJson(value: unknown): string {
  // Canonical text never holds a lone surrogate, so hashing it as UTF-8 is exact.
  return sha256HexOfText(canonicalString(value ?? null, { numbers: "jcs" }));
}

/**
 * `digestJson` that never throws: a value canonical JSON refuses (a lone
 * surrogate, a cycle-free but exotic value) is digested as its plain
 * `JSON.stringify` text instead, so recording a call never fails on content.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lenientDigestJson } from "./canonical_json.ts";
 * import { sha256HexOfText } from "./digests.ts";
 * // A lone surrogate is kept as an escape instead of being refused.
 * assert.equal(lenientDigestJson("\ud800"), sha256HexOfText('"\\ud800"'));
 * ```
 */
export function lenientDigestJson(value: unknown): string {
  try {
    return digestJson(value);
  } catch {
    // JSON.stringify escapes lone surrogates, so its text is well-formed.
    return sha256HexOfText(JSON.stringify(value) ?? "null");
  }
}

/**
 * C2SP tlog-checkpoint bodies (https://c2sp.org/tlog-checkpoint):
 * `<origin>\n<size>\n<base64 root>\n`, optionally followed by extension
 * lines, signed as a C2SP signed note.
 *
 * @module
 */

import { assertCount } from "./_bits.ts";
import { assertHash, HASH_SIZE } from "./hasher.ts";
import { fromBase64, toBase64 } from "../lib/mod.ts";
import { openNote, type Signer, signNote, type Verifier } from "./note.ts";

/** A log's signed statement of its size and root. */
export interface Checkpoint {
  /** Unique name of the log, e.g. "warden.example/vault". */
  origin: string;
  /** Number of leaves. */
  size: number;
  /** RFC 6962 root of the first `size` leaves (32 bytes). */
  root: Uint8Array;
  /** Opaque extension lines; empty for Warden's own checkpoints. */
  extensions?: string[];
}

/** The text is not a well-formed checkpoint body. */
export class MalformedCheckpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MalformedCheckpointError";
  }
}

// A checkpoint is the text of a signed note, so its lines obey the note's
// rules as well: no control characters, valid Unicode.
// deno-lint-ignore no-control-regex -- matching control characters is the point
const BAD_LINE = /[\u0000-\u001f]/;
const DECIMAL = /^(?:0|[1-9][0-9]*)$/;

function malformed(problem: string): never {
  throw new MalformedCheckpointError(`Cannot parse checkpoint: ${problem}`);
}

function isLine(line: unknown): line is string {
  return typeof line === "string" && line.length > 0 && line.isWellFormed() &&
    !BAD_LINE.test(line);
}

/**
 * Formats a checkpoint body. Throws a TypeError or RangeError if the origin
 * is empty or holds a newline or control character, the size is not a safe
 * non-negative integer, the root is not 32 bytes, or an extension line is
 * empty or multi-line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatCheckpoint } from "./checkpoint.ts";
 * import { EMPTY_ROOT } from "./hasher.ts";
 * assert.equal(
 *   formatCheckpoint({ origin: "warden.example/vault", size: 0, root: EMPTY_ROOT }),
 *   "warden.example/vault\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
 * );
 * ```
 */
export function formatCheckpoint(checkpoint: Checkpoint): string {
  const { origin, size, root, extensions = [] } = checkpoint;
  if (!isLine(origin)) throw new TypeError("Cannot format checkpoint: invalid origin");
  assertCount(size, "size");
  assertHash(root, "root");
  if (!Array.isArray(extensions) || !extensions.every(isLine)) {
    throw new TypeError("Cannot format checkpoint: extension lines must be non-empty single lines");
  }
  return [origin, String(size), toBase64(root), ...extensions].join("\n") + "\n";
}

/**
 * Parses a checkpoint body strictly: a non-empty origin line, the size in
 * decimal without leading zeros (and at most 2^53 − 1), the root as
 * canonical base64 of exactly 32 bytes, then non-empty extension lines, each
 * line ending in a newline. Throws `MalformedCheckpointError` otherwise.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseCheckpoint } from "./checkpoint.ts";
 * import { EMPTY_ROOT } from "./hasher.ts";
 * const checkpoint = parseCheckpoint(
 *   "warden.example/vault\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
 * );
 * assert.deepEqual(checkpoint, {
 *   origin: "warden.example/vault",
 *   size: 0,
 *   root: EMPTY_ROOT,
 *   extensions: [],
 * });
 * ```
 */
export function parseCheckpoint(text: string): Checkpoint {
  if (typeof text !== "string") throw new TypeError("Cannot parse checkpoint: not a string");
  if (!text.endsWith("\n")) malformed("text must end with a newline");
  const [origin, sizeText, rootText, ...extensions] = text.slice(0, -1).split("\n");
  if (rootText === undefined) malformed("expected origin, size and root lines");
  if (!isLine(origin)) malformed("origin line is empty or invalid");
  if (!DECIMAL.test(sizeText)) {
    malformed(`size ${JSON.stringify(sizeText)} is not a decimal number`);
  }
  const size = Number(sizeText);
  if (!Number.isSafeInteger(size)) malformed(`size ${sizeText} is too large`);
  let root = new Uint8Array();
  try {
    root = fromBase64(rootText);
  } catch {
    malformed("root is not valid base64");
  }
  if (root.length !== HASH_SIZE) malformed(`root is ${root.length} bytes, want ${HASH_SIZE}`);
  extensions.forEach((line, i) => {
    if (!isLine(line)) malformed(`extension line ${i + 1} is empty or invalid`);
  });
  return { origin, size, root, extensions };
}

/**
 * Formats and signs a checkpoint, returning the signed note.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { signCheckpoint } from "./checkpoint.ts";
 * import { EMPTY_ROOT } from "./hasher.ts";
 * import { generateSigner } from "./note.ts";
 * const signer = await generateSigner("warden.example/vault");
 * const note = await signCheckpoint({ origin: "warden.example/vault", size: 0, root: EMPTY_ROOT }, signer);
 * assert.match(note, /^warden\.example\/vault\n0\n.+\n\n— warden\.example\/vault \S+\n$/);
 * ```
 */
export function signCheckpoint(
  checkpoint: Checkpoint,
  signers: Signer | readonly Signer[],
): Promise<string> {
  return signNote(formatCheckpoint(checkpoint), signers);
}

/** A checkpoint whose note signature verified. */
export interface OpenedCheckpoint {
  checkpoint: Checkpoint;
  /** The checkpoint body exactly as signed. */
  text: string;
  verifiedBy: Verifier[];
}

/**
 * Opens a signed checkpoint note: verifies the signature (see `openNote` for
 * the errors), parses the body and, if `options.origin` is given, requires
 * that origin (`MalformedCheckpointError` otherwise), so a checkpoint of one
 * log cannot be passed off as another's.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openCheckpoint, signCheckpoint } from "./checkpoint.ts";
 * import { EMPTY_ROOT } from "./hasher.ts";
 * import { generateSigner, verifierFromVkey } from "./note.ts";
 * const signer = await generateSigner("warden.example/vault");
 * const note = await signCheckpoint({ origin: "warden.example/vault", size: 0, root: EMPTY_ROOT }, signer);
 * const verifier = await verifierFromVkey(signer.vkey);
 * const { checkpoint } = await openCheckpoint(note, [verifier], { origin: "warden.example/vault" });
 * assert.equal(checkpoint.size, 0);
 * assert.deepEqual(checkpoint.root, EMPTY_ROOT);
 * ```
 */
export async function openCheckpoint(
  note: string | Uint8Array,
  verifiers: readonly Verifier[],
  options: { origin?: string } = {},
): Promise<OpenedCheckpoint> {
  const { text, verifiedBy } = await openNote(note, verifiers);
  const checkpoint = parseCheckpoint(text);
  if (options.origin !== undefined && checkpoint.origin !== options.origin) {
    throw new MalformedCheckpointError(
      `Cannot open checkpoint: origin ${JSON.stringify(checkpoint.origin)}, want ${
        JSON.stringify(options.origin)
      }`,
    );
  }
  return { checkpoint, text, verifiedBy };
}

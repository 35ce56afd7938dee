/**
 * The export bundle on disk. It is one JSON document, laid out one item per
 * line so a million-entry bundle can be written and verified as a stream:
 *
 * ```text
 * {"format":"warden-vault-bundle/1","origin":"…","vkey":"…","size":N,"checkpoints":[
 * "<signed note>",
 * …
 * ],"entries":[
 * "<base64 canonical entry>",
 * …
 * ],"blobs":{
 * "<sha256 hex>":"<base64 body>",
 * …
 * }}
 * ```
 *
 * The reader streams that layout; a bundle re-serialised some other way
 * (pretty-printed, say) is still accepted by parsing it whole.
 */
import { type BundleResult, createBundleVerifier } from "./bundle_verify.ts";
import { fromBase64, sha256, toHex } from "../lib/mod.ts";
import { hashLeaf } from "../merkle/mod.ts";

/** The format tag written in every bundle. */
export const BUNDLE_FORMAT = "warden-vault-bundle/1";

/** What a bundle file holds besides entries. */
export interface BundleHeader {
  readonly format: string;
  readonly origin: string;
  readonly vkey: string;
  readonly size: number;
}

/** Everything `writeBundle` needs, read lazily so entries stream. */
export interface BundleSource {
  readonly header: Omit<BundleHeader, "format">;
  readonly checkpoints: AsyncIterable<string> | Iterable<string>;
  /** Entry bytes, or bytes with the leaf hash the log recorded for them. */
  readonly entries: AsyncIterable<Uint8Array | { bytes: Uint8Array; leaf: Uint8Array }>;
  /** Bodies referenced by entries (`body_sha256`), fetched by hash. */
  blob(sha256hex: string): Promise<Uint8Array | null>;
}

const BODY_REF = /"body_sha256":"([0-9a-f]{64})"/;
const decoder = new TextDecoder();

/**
 * Writes a bundle through `write` (called with text chunks, in order).
 * Returns the number of entries written.
 */
export async function writeBundle(
  source: BundleSource,
  write: (chunk: string) => Promise<void>,
): Promise<{ entries: number; checkpoints: number; blobs: number }> {
  const header = { format: BUNDLE_FORMAT, ...source.header };
  await write(JSON.stringify(header).slice(0, -1) + ',"checkpoints":[\n');
  let checkpoints = 0;
  for await (const note of source.checkpoints) {
    await write((checkpoints++ === 0 ? "" : ",\n") + JSON.stringify(note));
  }
  await write((checkpoints ? "\n" : "") + '],"entries":[\n');
  let entries = 0;
  const referenced = new Set<string>();
  // Recorded leaf hashes, 32 bytes each, written after the entries.
  let leaves = new Uint8Array(32 * 1024);
  let buffer = "";
  for await (const item of source.entries) {
    const bytes = item instanceof Uint8Array ? item : item.bytes;
    const leaf = item instanceof Uint8Array ? hashLeaf(bytes) : item.leaf;
    if ((entries + 1) * 32 > leaves.byteLength) {
      const grown = new Uint8Array(leaves.byteLength * 2);
      grown.set(leaves);
      leaves = grown;
    }
    leaves.set(leaf, entries * 32);
    buffer += (entries++ === 0 ? "" : ",\n") + '"' + encodeBase64(bytes) + '"';
    const ref = BODY_REF.exec(decoder.decode(bytes));
    if (ref) referenced.add(ref[1]);
    if (buffer.length > 1 << 20) {
      await write(buffer);
      buffer = "";
    }
  }
  await write(buffer + (entries ? "\n" : "") + '],"leaves":[\n');
  buffer = "";
  for (let i = 0; i < entries; i++) {
    buffer += (i === 0 ? "" : ",\n") + '"' + toHex(leaves.subarray(i * 32, i * 32 + 32)) + '"';
    if (buffer.length > 1 << 20) {
      await write(buffer);
      buffer = "";
    }
  }
  await write(buffer + (entries ? "\n" : "") + '],"blobs":{\n');
  let blobs = 0;
  for (const hash of referenced) {
    const body = await source.blob(hash);
    if (!body) continue; // the verifier reports the missing body against its entry
    await write(
      (blobs++ === 0 ? "" : ",\n") + JSON.stringify(hash) + ':"' + encodeBase64(body) + '"',
    );
  }
  await write((blobs ? "\n" : "") + "}}\n");
  return { entries, checkpoints, blobs };
}

function encodeBase64(bytes: Uint8Array): string {
  return (bytes as Uint8Array<ArrayBuffer>).toBase64();
}

async function* lines(stream: ReadableStream<Uint8Array>): AsyncIterable<string> {
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    rest += chunk;
    let start = 0;
    for (let nl = rest.indexOf("\n"); nl >= 0; nl = rest.indexOf("\n", start)) {
      yield rest.slice(start, nl);
      start = nl + 1;
    }
    rest = rest.slice(start);
    // One item per line: a line this long is not a bundle this tool wrote.
    if (rest.length > MAX_LINE) throw new BundleFormatError("a line is longer than 64 MiB");
  }
  if (rest.length > 0) yield rest;
}

const MAX_LINE = 64 * 1024 * 1024;

/** A bundle whose layout is broken (truncated, malformed); reported as a FAIL. */
class BundleFormatError extends Error {
  override name = "BundleFormatError";
}

/** Result of verifying a bundle file: the core verdict plus body checks. */
export type BundleFileResult = BundleResult & { blobs?: number; header?: BundleHeader };

function itemOf(line: string, what: string): unknown {
  try {
    return JSON.parse(line.endsWith(",") ? line.slice(0, -1) : line);
  } catch {
    throw new BundleFormatError(`${what} is not valid JSON (is the bundle truncated?)`);
  }
}

const HEADER_FIELDS = new Set(["format", "origin", "vkey", "size"]);
const TOP_LEVEL_FIELDS = new Set([...HEADER_FIELDS, "checkpoints", "entries", "leaves", "blobs"]);

/** Checks the header's fields: unknown ones are refused, not ignored. */
function checkHeader(doc: Record<string, unknown>, allowed: Set<string>): string | undefined {
  const unknown = Object.keys(doc).filter((k) => !allowed.has(k));
  if (unknown.length > 0) {
    return `bundle has unknown top-level field${unknown.length > 1 ? "s" : ""} ${
      unknown.slice(0, 5).map((k) => JSON.stringify(k.slice(0, 40))).join(", ")
    }: refused rather than ignored`;
  }
  if (doc.format !== BUNDLE_FORMAT) {
    return `not a warden vault bundle (format ${
      JSON.stringify(String(doc.format ?? "missing").slice(0, 40))
    }, expected ${BUNDLE_FORMAT})`;
  }
  if (typeof doc.origin !== "string" || doc.origin === "") return "bundle origin is missing";
  if (typeof doc.vkey !== "string") return "bundle vkey is missing";
  if (typeof doc.size !== "number" || !Number.isSafeInteger(doc.size) || doc.size < 0) {
    return "bundle size is missing or not a non-negative integer";
  }
  return undefined;
}

/** Options of `verifyBundleStream`. */
export interface BundleStreamOptions {
  /** Trusted verifier key; see `BundleOptions.key`. */
  key?: string;
  /** Signed checkpoints the verifier held before; the log must contain them. */
  checkpoints?: readonly string[];
  /** See `BundleOptions.allowUnsignedTail`. */
  allowUnsignedTail?: boolean;
}

/**
 * Verifies a bundle read from `stream` (see the module doc for the layout),
 * entry by entry. Bodies kept outside entries must be present and hash to
 * the `body_sha256` their entry records. A truncated or malformed file is a
 * failure result, never an exception.
 */
export async function verifyBundleStream(
  stream: ReadableStream<Uint8Array>,
  options: BundleStreamOptions = {},
): Promise<BundleFileResult> {
  try {
    return await verifyLines(lines(stream)[Symbol.asyncIterator](), options);
  } catch (error) {
    const message = error instanceof BundleFormatError
      ? error.message
      : `cannot read the bundle: ${(error as Error)?.message ?? String(error)}`;
    return { ok: false, reason: `malformed bundle: ${message}` };
  }
}

async function verifyLines(
  it: AsyncIterator<string>,
  options: BundleStreamOptions,
): Promise<BundleFileResult> {
  const first = await it.next();
  const headMatch = first.done ? null : /^(\{.*),"checkpoints":\[$/.exec(first.value);
  if (!headMatch) {
    // Not our streaming layout: parse the whole document.
    let text = first.done ? "" : first.value + "\n";
    for (let r = await it.next(); !r.done; r = await it.next()) {
      text += r.value + "\n";
      if (text.length > MAX_LINE) {
        throw new BundleFormatError("not in the streaming layout and over 64 MiB");
      }
    }
    return await verifyParsed(text, options);
  }
  let header: BundleHeader;
  try {
    header = JSON.parse(headMatch[1] + "}");
  } catch {
    return { ok: false, reason: "bundle header is not valid JSON" };
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    return { ok: false, reason: "bundle header is not a JSON object" };
  }
  const problem = checkHeader(header as unknown as Record<string, unknown>, HEADER_FIELDS);
  if (problem) return { ok: false, reason: problem };
  const checkpoints: string[] = [];
  let line = await it.next();
  for (; !line.done && line.value !== '],"entries":['; line = await it.next()) {
    checkpoints.push(itemOf(line.value, `checkpoint ${checkpoints.length}`) as string);
  }
  if (line.done) {
    return { ok: false, reason: "bundle is truncated: it ends inside its checkpoints" };
  }
  // Checkpoints the verifier already held are checked like the bundle's own:
  // a log that dropped or rewrote what they cover cannot match them.
  const verifier = await createBundleVerifier(
    {
      origin: header.origin,
      vkey: header.vkey,
      checkpoints: [...checkpoints, ...(options.checkpoints ?? [])],
    },
    { key: options.key, allowUnsignedTail: options.allowUnsignedTail },
  );
  const referenced = new Map<string, number>();
  let index = 0;
  let failed = false;
  const END_ENTRIES = new Set(['],"leaves":[', '],"blobs":{']);
  for (line = await it.next(); !line.done && !END_ENTRIES.has(line.value); line = await it.next()) {
    if (failed) continue; // read on only to reach the recorded leaf hashes
    const b64 = itemOf(line.value, `entry ${index}`);
    if (!verifier.push(b64 as string)) {
      failed = true;
      if (!verifier.wantsLeaves) return { ...verifier.finish(), header };
      continue;
    }
    const ref = typeof b64 === "string" ? BODY_REF.exec(safeDecode(b64)) : null;
    if (ref) referenced.set(ref[1], index);
    index++;
  }
  if (line.done) {
    const verdict = verifier.finish();
    if (!verdict.ok) return { ...verdict, header };
    return {
      ok: false,
      index: Math.min(index, header.size),
      reason: `bundle is truncated: it ends after entry ${index - 1} of ${header.size}`,
      header,
    };
  }
  if (line.value === '],"leaves":[') {
    let leaf = 0;
    for (
      line = await it.next();
      !line.done && line.value !== '],"blobs":{';
      line = await it.next()
    ) {
      if (verifier.wantsLeaves) verifier.pushLeaf(itemOf(line.value, `leaf ${leaf}`));
      leaf++;
    }
    if (line.done) {
      const verdict = verifier.finish();
      if (!verdict.ok) return { ...verdict, header };
      return { ok: false, reason: "bundle is truncated: it ends inside its leaf hashes", header };
    }
  }
  const verdict = verifier.finish();
  if (!verdict.ok) return { ...verdict, header };
  if (index !== header.size) {
    return {
      ok: false,
      index: Math.min(index, header.size),
      reason: `bundle header says ${header.size} entries, found ${index}`,
      header,
    };
  }
  const blobs = new Map<string, string>();
  let closed = false;
  for (line = await it.next(); !line.done; line = await it.next()) {
    if (line.value === "}}") {
      closed = true;
      break;
    }
    const m = /^"([0-9a-f]{64})":"([^"]*)",?$/.exec(line.value);
    if (!m) return { ok: false, reason: "malformed blob line", header };
    blobs.set(m[1], m[2]);
  }
  if (!closed) {
    return { ok: false, reason: "bundle is truncated: it ends inside its bodies", header };
  }
  for (line = await it.next(); !line.done; line = await it.next()) {
    if (line.value.trim() !== "") {
      return { ok: false, reason: "bundle has data after its end", header };
    }
  }
  const bodyProblem = checkBodies(referenced, blobs);
  return bodyProblem ? { ...bodyProblem, header } : { ...verdict, blobs: blobs.size, header };
}

function safeDecode(b64: string): string {
  try {
    return decoder.decode(fromBase64(b64));
  } catch {
    return "";
  }
}

function checkBodies(
  referenced: Map<string, number>,
  blobs: Map<string, string>,
): BundleFileResult | undefined {
  for (const [hash, index] of referenced) {
    const b64 = blobs.get(hash);
    if (b64 === undefined) {
      return {
        ok: false,
        index,
        reason: `entry ${index}: body ${hash} is missing from the bundle`,
      };
    }
    let calculated: string;
    try {
      calculated = toHex(sha256(fromBase64(b64)));
    } catch {
      return { ok: false, index, reason: `entry ${index}: body ${hash} is not valid base64` };
    }
    if (calculated !== hash) {
      return {
        ok: false,
        index,
        reason: `entry ${index}: body does not hash to its recorded body_sha256`,
        expected: hash,
        calculated,
      };
    }
  }
  return undefined;
}

async function verifyParsed(
  text: string,
  options: BundleStreamOptions,
): Promise<BundleFileResult> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return { ok: false, reason: "bundle is not valid JSON (is it truncated?)" };
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    return { ok: false, reason: "not a warden vault bundle (not a JSON object)" };
  }
  const d = doc as Record<string, unknown>;
  const problem = checkHeader(d, TOP_LEVEL_FIELDS);
  if (problem) return { ok: false, reason: problem };
  const { entries, checkpoints, leaves, blobs: blobField } = d;
  if (!Array.isArray(entries) || !Array.isArray(checkpoints)) {
    return { ok: false, reason: "bundle entries or checkpoints is not an array" };
  }
  if (leaves !== undefined && !Array.isArray(leaves)) {
    return { ok: false, reason: "bundle leaves is not an array" };
  }
  if (
    blobField !== undefined &&
    (typeof blobField !== "object" || blobField === null || Array.isArray(blobField) ||
      Object.values(blobField).some((v) => typeof v !== "string"))
  ) {
    return { ok: false, reason: "bundle blobs is not an object of base64 strings" };
  }
  const blobs = (blobField ?? {}) as Record<string, string>;
  const size = d.size as number;
  const verifier = await createBundleVerifier(
    {
      origin: d.origin as string,
      vkey: d.vkey as string,
      checkpoints: [...(checkpoints as string[]), ...(options.checkpoints ?? [])],
    },
    { key: options.key, allowUnsignedTail: options.allowUnsignedTail },
  );
  const referenced = new Map<string, number>();
  let failed = false;
  for (let i = 0; i < entries.length; i++) {
    const b64 = entries[i];
    if (!verifier.push(b64 as string)) {
      failed = true;
      break;
    }
    const ref = typeof b64 === "string" ? BODY_REF.exec(safeDecode(b64)) : null;
    if (ref) referenced.set(ref[1], i);
  }
  if (verifier.wantsLeaves) {
    for (const leaf of (leaves ?? []) as unknown[]) verifier.pushLeaf(leaf);
  }
  const verdict = verifier.finish();
  if (failed || !verdict.ok) return verdict;
  if (entries.length !== size) {
    return {
      ok: false,
      index: Math.min(entries.length, size),
      reason: `bundle header says ${size} entries, found ${entries.length}`,
    };
  }
  const bodyProblem = checkBodies(referenced, new Map(Object.entries(blobs)));
  return bodyProblem ?? { ...verdict, blobs: Object.keys(blobs).length };
}

/** The one-line summary `warden verify` prints. */
export function describeResult(result: BundleFileResult): string {
  if (result.ok) {
    return `OK: ${result.entries} entries (leaf hashes and hash chain), ${result.checkpoints} signed checkpoints ` +
      `(signatures, roots, ${result.consistencyProofs} consistency proofs), ${
        result.blobs ?? 0
      } bodies; ` +
      `size ${result.size}, signed size ${result.signedSize}, root ${result.root}`;
  }
  const where = result.index !== undefined ? `index ${result.index}: ` : "";
  const evidence = result.expected !== undefined || result.calculated !== undefined
    ? ` (expected ${result.expected ?? "?"}, calculated ${result.calculated ?? "?"})`
    : "";
  return `FAIL at ${where}${result.reason}${evidence}`;
}

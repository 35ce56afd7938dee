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
import { fromBase64, sha256, toHex } from "./hasher.ts";

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
  readonly entries: AsyncIterable<Uint8Array>;
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
  let buffer = "";
  for await (const bytes of source.entries) {
    buffer += (entries++ === 0 ? "" : ",\n") + '"' + encodeBase64(bytes) + '"';
    const ref = BODY_REF.exec(decoder.decode(bytes));
    if (ref) referenced.add(ref[1]);
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
  }
  if (rest.length > 0) yield rest;
}

/** Result of verifying a bundle file: the core verdict plus body checks. */
export type BundleFileResult = BundleResult & { blobs?: number; header?: BundleHeader };

function itemOf(line: string): string {
  return JSON.parse(line.endsWith(",") ? line.slice(0, -1) : line);
}

/**
 * Verifies a bundle read from `stream` (see the module doc for the layout),
 * entry by entry. Bodies kept outside entries must be present and hash to
 * the `body_sha256` their entry records.
 */
export async function verifyBundleStream(
  stream: ReadableStream<Uint8Array>,
  options: { key?: string; checkpoints?: readonly string[] } = {},
): Promise<BundleFileResult> {
  const it = lines(stream)[Symbol.asyncIterator]();
  const first = await it.next();
  const headMatch = first.done ? null : /^(\{.*),"checkpoints":\[$/.exec(first.value);
  if (!headMatch) {
    // Not our streaming layout: parse the whole document.
    let text = first.done ? "" : first.value + "\n";
    for (let r = await it.next(); !r.done; r = await it.next()) text += r.value + "\n";
    return await verifyParsed(text, options);
  }
  let header: BundleHeader;
  try {
    header = JSON.parse(headMatch[1] + "}");
  } catch {
    return { ok: false, reason: "bundle header is not valid JSON" };
  }
  if (header.format !== BUNDLE_FORMAT) {
    return { ok: false, reason: `unknown bundle format ${JSON.stringify(header.format)}` };
  }
  const checkpoints: string[] = [];
  let line = await it.next();
  for (; !line.done && line.value !== '],"entries":['; line = await it.next()) {
    checkpoints.push(itemOf(line.value));
  }
  if (line.done) return { ok: false, reason: "bundle ends inside its checkpoints" };
  // Checkpoints the verifier already held are checked like the bundle's own:
  // a log that dropped or rewrote what they cover cannot match them.
  const verifier = await createBundleVerifier(
    {
      origin: header.origin,
      vkey: header.vkey,
      checkpoints: [...checkpoints, ...(options.checkpoints ?? [])],
    },
    { key: options.key },
  );
  const referenced = new Map<string, number>();
  let index = 0;
  for (line = await it.next(); !line.done && line.value !== '],"blobs":{'; line = await it.next()) {
    const b64 = itemOf(line.value);
    if (!verifier.push(b64)) {
      // Drain nothing more: the verdict names the first defect.
      return { ...verifier.finish(), header };
    }
    const ref = BODY_REF.exec(safeDecode(b64));
    if (ref) referenced.set(ref[1], index);
    index++;
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
  if (!line.done) {
    for (line = await it.next(); !line.done && line.value !== "}}"; line = await it.next()) {
      const m = /^"([0-9a-f]{64})":"([^"]*)",?$/.exec(line.value);
      if (!m) return { ok: false, reason: "malformed blob line", header };
      blobs.set(m[1], m[2]);
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
  options: { key?: string; checkpoints?: readonly string[] },
): Promise<BundleFileResult> {
  let doc: BundleHeader & {
    checkpoints?: unknown;
    entries?: unknown;
    blobs?: Record<string, string>;
  };
  try {
    doc = JSON.parse(text);
  } catch {
    return { ok: false, reason: "bundle is not valid JSON" };
  }
  if (typeof doc !== "object" || doc === null || doc.format !== BUNDLE_FORMAT) {
    return { ok: false, reason: "not a warden vault bundle (format field missing or unknown)" };
  }
  if (!Array.isArray(doc.entries) || !Array.isArray(doc.checkpoints)) {
    return { ok: false, reason: "bundle entries or checkpoints is not an array" };
  }
  const verifier = await createBundleVerifier(
    {
      origin: doc.origin,
      vkey: doc.vkey,
      checkpoints: [...(doc.checkpoints as string[]), ...(options.checkpoints ?? [])],
    },
    { key: options.key },
  );
  const referenced = new Map<string, number>();
  for (let i = 0; i < doc.entries.length; i++) {
    const b64 = doc.entries[i] as string;
    if (!verifier.push(b64)) return verifier.finish();
    const ref = BODY_REF.exec(safeDecode(b64));
    if (ref) referenced.set(ref[1], i);
  }
  const verdict = verifier.finish();
  if (!verdict.ok) return verdict;
  if (doc.entries.length !== doc.size) {
    return {
      ok: false,
      index: Math.min(doc.entries.length, doc.size),
      reason: `bundle header says ${doc.size} entries, found ${doc.entries.length}`,
    };
  }
  const problem = checkBodies(referenced, new Map(Object.entries(doc.blobs ?? {})));
  return problem ?? { ...verdict, blobs: Object.keys(doc.blobs ?? {}).length };
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

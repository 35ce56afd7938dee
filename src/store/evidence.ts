/**
 * Fetched content kept as evidence, addressed by the SHA-256 of the bytes
 * fetched: the id fetch_content returns and reason_mind cites. Each principal
 * that fetched a record gets an index entry, so retrieval lists only a
 * caller's own evidence. Kept text is retrieved later, so the `redact` option
 * (the vault's detectors, given by the composition root) is applied to it
 * before it is written.
 */
import {
  evidenceByPrincipalKey,
  evidenceByPrincipalPrefix,
  evidenceKey,
  evidenceUrlKey,
} from "./keys.ts";

async function urlDigest(url: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(url));
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** One piece of evidence. */
export interface EvidenceRecord {
  readonly sha256: string;
  readonly url: string;
  readonly finalUrl: string;
  readonly title?: string;
  /** Extracted text, cut to fit one KV value. */
  readonly text: string;
  readonly contentType: string;
  readonly bytes: number;
  readonly fetchedAt: string;
}

/** Repository of evidence records. */
export interface EvidenceStore {
  /** Stores `record` (redacted) and notes that `principal` fetched it. */
  put(record: EvidenceRecord, principal: string): Promise<void>;
  get(sha256: string): Promise<EvidenceRecord | null>;
  has(sha256s: readonly string[]): Promise<Set<string>>;
  /** Whether `principal` fetched the record `sha256` (its own index entry exists). */
  fetchedBy(principal: string, sha256: string): Promise<boolean>;
  /** The content hash fetched from `url` (as asked or after redirects), if it was fetched. */
  resolveUrl(url: string): Promise<string | null>;
  /** Up to `limit` records `principal` fetched (never another principal's). */
  listOwn(principal: string, limit?: number): Promise<EvidenceRecord[]>;
}

/** Options of {@link createEvidenceStore}. */
export interface EvidenceStoreOptions {
  /** Returns `value` with secrets replaced (deep); identity when absent. */
  readonly redact?: <T>(value: T) => T;
}

const MAX_TEXT_BYTES = 48 * 1024;

function fitText(text: string): string {
  const encoder = new TextEncoder();
  if (encoder.encode(text).byteLength <= MAX_TEXT_BYTES) return text;
  // Worst case 3 bytes per UTF-16 unit in BMP text: cut, then trim until it fits.
  let cut = text.slice(0, Math.floor(MAX_TEXT_BYTES / 3));
  while (encoder.encode(cut).byteLength > MAX_TEXT_BYTES) cut = cut.slice(0, -100);
  return cut;
}

/** Creates the repository over a KV handle. */
export function createEvidenceStore(
  kv: Deno.Kv,
  options: EvidenceStoreOptions = {},
): EvidenceStore {
  const redact = options.redact ?? (<T>(v: T) => v);
  return {
    async put(record, principal) {
      const kept: EvidenceRecord = {
        ...record,
        url: redact(record.url),
        finalUrl: redact(record.finalUrl),
        ...(record.title !== undefined ? { title: redact(record.title) } : {}),
        text: fitText(redact(record.text)),
      };
      await kv.atomic()
        .set(evidenceKey(record.sha256), kept)
        .set(evidenceByPrincipalKey(principal, record.sha256), null)
        .set(evidenceUrlKey(await urlDigest(record.url)), record.sha256)
        .set(evidenceUrlKey(await urlDigest(record.finalUrl)), record.sha256)
        .commit();
    },
    async resolveUrl(url) {
      if (!/^https?:\/\//i.test(url) || url.length > 4096) return null;
      const candidates = [url];
      try {
        candidates.push(new URL(url).href); // "http://a.example" and "http://a.example/" alike
      } catch {
        return null;
      }
      for (const u of candidates) {
        const got = await kv.get<string>(evidenceUrlKey(await urlDigest(u)));
        if (got.value) return got.value;
      }
      return null;
    },
    async fetchedBy(principal, sha256) {
      if (!/^[0-9a-f]{64}$/.test(sha256)) return false;
      return (await kv.get(evidenceByPrincipalKey(principal, sha256))).versionstamp !== null;
    },
    async get(sha256) {
      if (!/^[0-9a-f]{64}$/.test(sha256)) return null;
      return (await kv.get<EvidenceRecord>(evidenceKey(sha256))).value;
    },
    async has(ids) {
      const valid = ids.filter((id) => /^[0-9a-f]{64}$/.test(id));
      const found = new Set<string>();
      for (let i = 0; i < valid.length; i += 10) {
        const slice = valid.slice(i, i + 10);
        const got = await kv.getMany(slice.map((id) => evidenceKey(id)));
        got.forEach((e, j) => {
          if (e.value) found.add(slice[j]);
        });
      }
      return found;
    },
    async listOwn(principal, limit = 200) {
      const ids: string[] = [];
      for await (const e of kv.list({ prefix: evidenceByPrincipalPrefix(principal) }, { limit })) {
        ids.push(String(e.key[2]));
      }
      const out: EvidenceRecord[] = [];
      for (let i = 0; i < ids.length; i += 10) {
        const got = await kv.getMany<EvidenceRecord[]>(ids.slice(i, i + 10).map(evidenceKey));
        for (const e of got) if (e.value) out.push(e.value);
      }
      return out;
    },
  };
}

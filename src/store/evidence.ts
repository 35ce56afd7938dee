/**
 * Fetched content kept as evidence, addressed by the SHA-256 of the bytes
 * fetched: the id fetch_content returns and reason_mind cites.
 */
import { evidenceKey, evidencePrefix } from "./keys.ts";

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
  put(record: EvidenceRecord): Promise<void>;
  get(sha256: string): Promise<EvidenceRecord | null>;
  has(sha256s: readonly string[]): Promise<Set<string>>;
  list(limit?: number): Promise<EvidenceRecord[]>;
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
export function createEvidenceStore(kv: Deno.Kv): EvidenceStore {
  return {
    async put(record) {
      await kv.set(evidenceKey(record.sha256), { ...record, text: fitText(record.text) });
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
    async list(limit = 200) {
      const out: EvidenceRecord[] = [];
      for await (const e of kv.list<EvidenceRecord>({ prefix: evidencePrefix() }, { limit })) {
        out.push(e.value);
      }
      return out;
    },
  };
}

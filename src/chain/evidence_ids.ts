/**
 * The one evidence-id scheme of the chain, accepted everywhere it is
 * advertised (reason_mind `grounding`, F2, search_reality and recall_memory
 * results): `vault:N` (or `N`), a content hash (`<64 hex>` or `sha256:<64 hex>`)
 * from fetch_content, a URL fetch_content already fetched (resolved to its
 * content hash), and a governed session id (`sess_…`) as search returns it.
 * @module
 */

/** A parsed evidence reference. */
export type EvidenceRef =
  | { readonly kind: "vault"; readonly index: number; readonly id: string }
  | { readonly kind: "hash"; readonly sha256: string; readonly id: string }
  | { readonly kind: "url"; readonly url: string; readonly id: string }
  | { readonly kind: "session"; readonly session: string; readonly id: string }
  | { readonly kind: "unknown"; readonly id: string };

/**
 * Parses one reference; `id` is its canonical form.
 *
 * @example
 * ```ts
 * import { parseEvidenceRef } from "./evidence_ids.ts";
 * parseEvidenceRef("12").id; // "vault:12"
 * parseEvidenceRef("SHA256:" + "A".repeat(64)).id; // "a…a" (64 hex)
 * ```
 */
export function parseEvidenceRef(ref: string): EvidenceRef {
  const r = ref.trim();
  const vault = /^(?:vault:)?(\d{1,15})$/i.exec(r);
  if (vault) return { kind: "vault", index: Number(vault[1]), id: `vault:${Number(vault[1])}` };
  const hash = /^(?:sha256:)?([0-9a-f]{64})$/i.exec(r);
  if (hash) return { kind: "hash", sha256: hash[1].toLowerCase(), id: hash[1].toLowerCase() };
  if (/^sess_[0-9a-f-]{36}$/.test(r)) return { kind: "session", session: r, id: r };
  if (/^https?:\/\/\S+$/i.test(r)) return { kind: "url", url: r, id: r };
  return { kind: "unknown", id: r };
}

/** The canonical form of a reference (what a claim records). */
export function canonicalEvidenceId(ref: string): string {
  return parseEvidenceRef(ref).id;
}

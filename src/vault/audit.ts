// deno-lint-ignore-file no-explicit-any -- responses are checked field by field against signed data
/**
 * `warden verify --url`: audits a running server from the outside. Every entry
 * and signed checkpoint is downloaded and checked exactly as an export bundle
 * is; in addition the server's own consistency proofs between consecutive
 * checkpoints, and its inclusion proofs for a sample of entries, are verified
 * against the signed roots — so the proof endpoints are audited too.
 */
import type { BundleFileResult } from "./bundle_io.ts";
import { createBundleVerifier } from "./bundle_verify.ts";
import {
  hashLeaf,
  parseCheckpoint,
  splitNote,
  verifyConsistency,
  verifyInclusion,
} from "../merkle/mod.ts";
import { fromBase64 } from "../lib/mod.ts";

/** The audit verdict: the bundle checks plus the remote proof checks. */
export type AuditResult = BundleFileResult & { remoteProofs?: number };

async function getJson(url: string, headers: HeadersInit): Promise<any> {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(30_000) });
  if (!res.ok) {
    throw new Error(`GET ${url} answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
  }
  return await res.json();
}

/**
 * Audits the server at `baseUrl`. `key` is the verifier key trusted out of
 * band; without it the server's published key is used (which only proves the
 * log consistent with itself). `token` is sent as a bearer token.
 */
export async function auditServer(
  baseUrl: string,
  options: {
    key?: string;
    token?: string;
    sample?: number;
    /** Signed checkpoints the auditor held before: a rolled-back or forked log fails. */
    checkpoints?: readonly string[];
    allowUnsignedTail?: boolean;
  } = {},
): Promise<AuditResult> {
  const base = baseUrl.replace(/\/+$/, "");
  const headers: HeadersInit = options.token ? { authorization: `Bearer ${options.token}` } : {};
  const keyRes = await fetch(`${base}/vault/key`, { headers, signal: AbortSignal.timeout(30_000) });
  if (!keyRes.ok) return { ok: false, reason: `GET /vault/key answered ${keyRes.status}` };
  const vkey = (await keyRes.text()).trim();
  const head = await getJson(`${base}/vault/head`, headers);
  const notes: string[] = [];
  for (let after = 0;;) {
    const page = await getJson(`${base}/vault/checkpoints?after=${after}`, headers);
    for (const cp of page.checkpoints) notes.push(cp.note);
    if (page.checkpoints.length === 0) break;
    after = page.checkpoints[page.checkpoints.length - 1].size;
  }
  const verifier = await createBundleVerifier(
    { origin: head.origin, vkey, checkpoints: [...notes, ...(options.checkpoints ?? [])] },
    { key: options.key, allowUnsignedTail: options.allowUnsignedTail },
  );
  // Leaf hashes are recomputed here, never taken from the server.
  const leaves: Uint8Array[] = [];
  for (let start = 0; start < head.size;) {
    const page = await getJson(`${base}/vault/entries?start=${start}&limit=1000`, headers);
    if (page.entries.length === 0) {
      return { ok: false, index: start, reason: `server returned no entry ${start}` };
    }
    for (const e of page.entries) {
      if (!verifier.push(e.data)) return verifier.finish();
      leaves.push(hashLeaf(fromBase64(e.data)));
      start++;
    }
  }
  const verdict = verifier.finish();
  if (!verdict.ok || notes.length === 0) return verdict;

  const signed = notes.map((n) => parseCheckpoint(splitNote(n).text)).sort((a, b) =>
    a.size - b.size
  );
  let remoteProofs = 0;
  for (let i = 1; i < signed.length; i++) {
    const [a, b] = [signed[i - 1], signed[i]];
    if (a.size === b.size) continue;
    const p = await getJson(`${base}/vault/proof/consistency?from=${a.size}&to=${b.size}`, headers);
    try {
      verifyConsistency({
        size1: a.size,
        size2: b.size,
        root1: a.root,
        root2: b.root,
        proof: p.proof.map(fromBase64),
      });
      remoteProofs++;
    } catch (e) {
      return {
        ok: false,
        index: b.size - 1,
        reason: `server's consistency proof ${a.size}→${b.size} does not verify: ${
          (e as Error).message
        }`,
      };
    }
  }
  const latest = signed[signed.length - 1];
  const sample = Math.min(options.sample ?? 16, latest.size);
  for (let k = 0; k < sample; k++) {
    const index = Math.floor((k * latest.size) / sample);
    const p = await getJson(
      `${base}/vault/proof/inclusion?index=${index}&size=${latest.size}`,
      headers,
    );
    try {
      verifyInclusion({
        index,
        size: latest.size,
        leafHash: leaves[index],
        proof: p.proof.map(fromBase64),
        root: latest.root,
      });
      remoteProofs++;
    } catch (e) {
      return {
        ok: false,
        index,
        reason: `server's inclusion proof for entry ${index} does not verify: ${
          (e as Error).message
        }`,
      };
    }
  }
  return { ...verdict, remoteProofs };
}

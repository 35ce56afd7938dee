/**
 * Resolves evidence ids (see `evidence_ids.ts`) to the text they stand for,
 * for F2: a vault entry's recorded fields (and inline body) when it records the
 * calling principal, fetched content,
 * a fetched URL through its content hash — both only what the calling principal
 * fetched itself — or a governed session of the same principal (its intent and
 * claims).
 * @module
 */
import type { EvidenceStore, GovSessionStore } from "../store/mod.ts";
import { type Ledger, ownEntry } from "../vault/mod.ts";
import { parseEvidenceRef } from "./evidence_ids.ts";

/** Looks up which ids exist and what each says. */
export type EvidenceResolver = (
  ids: readonly string[],
  principal: string,
) => Promise<Map<string, string>>;

/** Creates the resolver over the stores that hold evidence. */
export function createEvidenceResolver(deps: {
  readonly ledger: Pick<Ledger, "head" | "entry">;
  readonly evidence: Pick<EvidenceStore, "get" | "resolveUrl" | "fetchedBy">;
  readonly sessions: Pick<GovSessionStore, "get">;
}): EvidenceResolver {
  const decoder = new TextDecoder();
  return async (ids, principal) => {
    const out = new Map<string, string>();
    const { size } = await deps.ledger.head();
    for (const raw of ids.slice(0, 100)) {
      const ref = parseEvidenceRef(raw);
      let text: string | undefined;
      if (ref.kind === "vault" && ref.index < size) {
        // Only an entry that records this caller: another's (or no principal's) is unknown.
        const e = await ownEntry(deps.ledger, ref.index, principal);
        if (e) text = decoder.decode(e.bytes);
      } else if (ref.kind === "hash" || ref.kind === "url") {
        const sha = ref.kind === "hash" ? ref.sha256 : await deps.evidence.resolveUrl(ref.url);
        // Content another principal fetched is not this caller's evidence: resolving it would
        // tell the caller what the other fetched (F2 answers whether the text shares a word).
        const own = sha !== null && await deps.evidence.fetchedBy(principal, sha);
        const rec = own ? await deps.evidence.get(sha) : null;
        if (rec) text = `${rec.title ?? ""}\n${rec.url}\n${rec.text}`;
      } else if (ref.kind === "session") {
        const s = await deps.sessions.get(ref.session, principal).catch(() => null);
        if (s) {
          text = [s.intent, ...s.claims.filter((c) => !c.retracted).map((c) => c.text)].join("\n");
        }
      }
      if (text !== undefined) {
        out.set(raw, text);
        out.set(ref.id, text);
      }
    }
    return out;
  };
}

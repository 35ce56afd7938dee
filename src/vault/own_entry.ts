/**
 * Which vault entries a principal may resolve through a tool: those that record it as their
 * `principal` (exactly). Another principal's entry, and one no principal caused (`policy_loaded`,
 * usage summaries, upstream pins), reads exactly like an index that does not exist, so a tool's
 * answer is no oracle for what the log holds. The `/vault/*` routes and `warden verify --url`
 * still serve the whole log to authenticated auditors.
 *
 * @module
 */
import type { Ledger, StoredEntry } from "./ledger.ts";

const decoder = new TextDecoder();

/**
 * The entry at `index` when it records `principal`, else `null` (also for one past the head).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createLedger, ownEntry } from "./mod.ts";
 * import { generateSigner } from "../merkle/mod.ts";
 * using kv = await Deno.openKv(":memory:");
 * const ledger = createLedger(kv, { origin: "o", signer: await generateSigner("o") });
 * const { index } = await ledger.append({ type: "note", principal: "alice" });
 * assert.equal((await ownEntry(ledger, index, "alice"))?.index, 0);
 * assert.equal(await ownEntry(ledger, index, "bob"), null);
 * ```
 */
export async function ownEntry(
  ledger: Pick<Ledger, "entry">,
  index: number,
  principal: string,
): Promise<StoredEntry | null> {
  const entry = await ledger.entry(index);
  if (!entry) return null;
  let recorded: unknown;
  try {
    recorded = (JSON.parse(decoder.decode(entry.bytes)) as { principal?: unknown }).principal;
  } catch {
    return null;
  }
  return recorded === principal ? entry : null;
}

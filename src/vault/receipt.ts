/**
 * Execution receipts: what `secure_execute` ran and produced, signed as a
 * C2SP note by the vault's own key. The note's text is a fixed first line
 * and the receipt's canonical JSON, so a receipt can never parse as a
 * checkpoint (whose second line is a decimal size) nor a checkpoint as a
 * receipt.
 *
 * @module
 */

import { canonicalString } from "../lib/mod.ts";
import { openNote, type Signer, signNote, type Verifier, verifierFromVkey } from "../merkle/mod.ts";

/** The first line of every receipt note. */
export const RECEIPT_FORMAT = "warden-execution-receipt/1";

/** What a receipt attests. */
export interface ExecutionReceipt {
  readonly execution_id: string;
  readonly kind: string;
  readonly security_level: string;
  readonly principal: string;
  /** SHA-256 of what was executed (the code, or the prompt as sent). */
  readonly input_sha256: string;
  /** SHA-256 of the canonical JSON of what came back. */
  readonly output_sha256: string;
  readonly runtime: Readonly<Record<string, string>>;
  readonly limits: Readonly<Record<string, number>>;
  /** The vault entry recording this execution, and its leaf hash (hex). */
  readonly vault_index: number;
  readonly vault_leaf_hash: string;
  /** The log's origin. */
  readonly origin: string;
  readonly time: string;
  readonly [extra: string]: unknown;
}

/** A note that is not a receipt, or a receipt missing a field. */
export class MalformedReceiptError extends Error {
  override name = "MalformedReceiptError";
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Signs `receipt` with the vault's key; returns the signed note.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generateSigner } from "../merkle/mod.ts";
 * import { openReceipt, signReceipt } from "./receipt.ts";
 * const signer = await generateSigner("warden.example/vault");
 * const note = await signReceipt({ execution_id: "e1", kind: "code", security_level: "verified",
 *   principal: "alice", input_sha256: "0".repeat(64), output_sha256: "1".repeat(64),
 *   runtime: { deno: "2" }, limits: { timeout_ms: 5000 }, vault_index: 3,
 *   vault_leaf_hash: "2".repeat(64), origin: "warden.example/vault", time: "2026-01-01T00:00:00Z" },
 *   signer);
 * assert.equal((await openReceipt(note, signer.vkey)).vault_index, 3);
 * ```
 */
export function signReceipt(receipt: ExecutionReceipt, signer: Signer): Promise<string> {
  return signNote(`${RECEIPT_FORMAT}\n${canonicalString(receipt)}\n`, signer);
}

/**
 * Verifies a receipt note's signature by `vkey` and returns the receipt.
 * Throws a `NoteError` for a bad or unknown signature and
 * `MalformedReceiptError` for a note that is not a receipt.
 */
export async function openReceipt(
  note: string,
  vkey: string | Verifier,
): Promise<ExecutionReceipt> {
  const verifier = typeof vkey === "string" ? await verifierFromVkey(vkey) : vkey;
  const { text } = await openNote(note, [verifier]);
  const lines = text.split("\n");
  if (lines.length !== 3 || lines[0] !== RECEIPT_FORMAT || lines[2] !== "") {
    throw new MalformedReceiptError(`Cannot open receipt: not a ${RECEIPT_FORMAT} note`);
  }
  let value: unknown;
  try {
    value = JSON.parse(lines[1]);
  } catch {
    throw new MalformedReceiptError("Cannot open receipt: its body is not JSON");
  }
  const r = value as Record<string, unknown>;
  if (typeof r !== "object" || r === null || Array.isArray(r)) {
    throw new MalformedReceiptError("Cannot open receipt: its body is not an object");
  }
  for (const field of ["execution_id", "kind", "security_level", "principal", "origin", "time"]) {
    if (typeof r[field] !== "string") {
      throw new MalformedReceiptError(`Cannot open receipt: ${field} is missing`);
    }
  }
  for (const field of ["input_sha256", "output_sha256", "vault_leaf_hash"]) {
    if (typeof r[field] !== "string" || !HEX64.test(r[field] as string)) {
      throw new MalformedReceiptError(`Cannot open receipt: ${field} is not 64 hex digits`);
    }
  }
  if (
    typeof r.vault_index !== "number" || !Number.isSafeInteger(r.vault_index) || r.vault_index < 0
  ) {
    throw new MalformedReceiptError("Cannot open receipt: vault_index is not an entry index");
  }
  return r as unknown as ExecutionReceipt;
}

import assert from "node:assert/strict";
import {
  generateSigner,
  hashLeaf,
  openCheckpoint,
  signCheckpoint,
  UnverifiedNoteError,
  verifierFromVkey,
} from "../../src/merkle/mod.ts";
import { MalformedReceiptError, openReceipt, signReceipt } from "../../src/vault/mod.ts";

const ORIGIN = "warden.example/vault";
const RECEIPT = {
  execution_id: "e1",
  kind: "code",
  security_level: "verified",
  principal: "alice",
  input_sha256: "a".repeat(64),
  output_sha256: "b".repeat(64),
  runtime: { deno: "2.9.6", permissions: "none" },
  limits: { timeout_ms: 5000 },
  vault_index: 7,
  vault_leaf_hash: "c".repeat(64),
  origin: ORIGIN,
  time: "2026-12-02T00:00:00.000Z",
};

Deno.test("openReceipt() returns what signReceipt() signed, and only with the signing key", async () => {
  const signer = await generateSigner(ORIGIN);
  const note = await signReceipt(RECEIPT, signer);
  assert.deepEqual(await openReceipt(note, signer.vkey), RECEIPT);
  const other = await generateSigner(ORIGIN);
  await assert.rejects(() => openReceipt(note, other.vkey), UnverifiedNoteError);
});

Deno.test("a receipt is never a checkpoint and a checkpoint never a receipt", async () => {
  const signer = await generateSigner(ORIGIN);
  const receipt = await signReceipt(RECEIPT, signer);
  const verifier = await verifierFromVkey(signer.vkey);
  await assert.rejects(() => openCheckpoint(receipt, [verifier], { origin: ORIGIN }));
  const checkpoint = await signCheckpoint(
    { origin: ORIGIN, size: 1, root: hashLeaf(new Uint8Array([1])) },
    signer,
  );
  await assert.rejects(() => openReceipt(checkpoint, signer.vkey), MalformedReceiptError);
  const partial = await signReceipt({ ...RECEIPT, vault_index: -1 }, signer);
  await assert.rejects(() => openReceipt(partial, signer.vkey), /vault_index/);
});

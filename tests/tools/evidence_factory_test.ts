/**
 * createEvidenceTools() (issue 8 §1): the evidence family is a factory given exactly the services
 * it uses, checked when the tools are made — not a bag every tool sees.
 */
import assert from "node:assert/strict";
import {
  createEvidenceChainTools,
  createEvidenceTools,
  type EvidenceChainServices,
  type EvidenceToolServices,
} from "../../src/tools/mod.ts";

Deno.test("createEvidenceTools() names each missing service when the tools are made", () => {
  assert.throws(
    () => createEvidenceTools({} as EvidenceToolServices),
    (e: Error) =>
      e instanceof TypeError &&
      e.message ===
        "Cannot create the evidence tools: missing policy, evidence, files, ledger, governance, vitals, startedAtMs, sessions, context",
  );
  assert.throws(() => createEvidenceTools(undefined as unknown as EvidenceToolServices), TypeError);
});

Deno.test("createEvidenceChainTools() names each missing service when the tools are made", () => {
  assert.throws(
    () => createEvidenceChainTools({} as EvidenceChainServices),
    (e: Error) =>
      e instanceof TypeError &&
      e.message ===
        "Cannot create the evidence-chain tools: missing ledger, receipts, executions, policy, governance, code, shell",
  );
});

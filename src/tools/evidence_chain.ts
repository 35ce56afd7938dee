/**
 * The evidence chain's verification tools (SPEC §5): `evidence_package`
 * (a self-verifying bundle of entries, proofs, checkpoint, receipts and key —
 * what `warden verify` checks offline), `chain_verify` (entries, proofs and
 * signatures, here) and `security_audit` (the vault, the key, the policy,
 * open holds, the sandboxes). Thin adapters over `src/vault/`.
 *
 * @module
 */
import { z } from "zod";
import { FLOOR_IDS, floorMode, type Governance, type Policy } from "../governance/mod.ts";
import type { CodeService, ShellService } from "../execution/mod.ts";
import type { ExecutionStore } from "../store/mod.ts";
import {
  buildEvidencePackage,
  createBundleVerifier,
  type EvidencePackage,
  type Ledger,
  MAX_PACKAGE_ENTRIES,
  ownEntry,
  type PackageResult,
  verifyEvidencePackage,
} from "../vault/mod.ts";
import { openCheckpoint, verifierFromVkey } from "../merkle/mod.ts";
import { sha256HexOfText } from "../lib/mod.ts";
import { defineTool, ToolError } from "../calls/mod.ts";
import { READ_ONLY } from "./_annotations.ts";
import { type ReceiptSigner, toolFamily } from "./_services.ts";

/** The largest package returned in one result (JSON bytes). */
const MAX_PACKAGE_JSON_BYTES = 8 * 1024 * 1024;

const FactId = z.union([
  z.number().int().min(0),
  z.string().min(1).max(100),
]).describe("A vault entry (`vault:12` or 12) or a verified execution's id.");

/** Entries and receipts a selection names, for the caller. */
async function select(
  services: EvidenceChainServices,
  principal: string,
  selection: { executionIds: string[]; caseId?: string; indices: number[] },
): Promise<{ indices: number[]; receipts: string[] }> {
  const { executions } = services;
  // Only entries that record the caller: another principal's reads like one that does not exist.
  for (const index of selection.indices) {
    if (!await ownEntry(services.ledger, index, principal)) {
      throw new ToolError(
        `No vault entry ${index} of yours (only entries that record you as their principal)`,
      );
    }
  }
  const indices = [...selection.indices];
  const receipts: string[] = [];
  for (const id of selection.executionIds) {
    const record = await executions.get(principal, id);
    if (!record) {
      throw new ToolError(
        `No verified execution ${JSON.stringify(id.slice(0, 100))} of yours (only verified and ` +
          "fortress executions are kept for packaging, and only for the principal that ran them)",
      );
    }
    indices.push(record.vault_index);
    receipts.push(record.receipt);
  }
  if (selection.caseId !== undefined) {
    const records = await executions.byCase(principal, selection.caseId, MAX_PACKAGE_ENTRIES);
    if (records.length === 0) {
      throw new ToolError(`No verified execution of yours in case ${selection.caseId}`);
    }
    for (const r of records) {
      indices.push(r.vault_index);
      receipts.push(r.receipt);
    }
  }
  if (indices.length > MAX_PACKAGE_ENTRIES) {
    throw new ToolError(`A package holds at most ${MAX_PACKAGE_ENTRIES} entries`);
  }
  return { indices, receipts: [...new Set(receipts)] };
}

async function build(
  services: EvidenceChainServices,
  picked: { indices: number[]; receipts: string[] },
): Promise<EvidencePackage> {
  const head = await services.ledger.head();
  const missing = picked.indices.find((i) => i >= head.size);
  if (missing !== undefined) {
    throw new ToolError(`Vault entry ${missing} does not exist (the vault holds ${head.size})`);
  }
  return await buildEvidencePackage(services.ledger, {
    vkey: services.receipts.vkey,
    indices: picked.indices,
    receipts: picked.receipts,
  });
}

function parseFactIds(ids: readonly (string | number)[]): {
  indices: number[];
  executionIds: string[];
} {
  const indices: number[] = [];
  const executionIds: string[] = [];
  for (const id of ids) {
    if (typeof id === "number") indices.push(id);
    else if (/^(vault:)?\d{1,15}$/.test(id)) indices.push(Number(id.replace("vault:", "")));
    else executionIds.push(id);
  }
  return { indices, executionIds };
}

function verdictText(result: PackageResult): string {
  return result.ok
    ? `OK: ${result.entries} entries proven against the signed checkpoint of size ${result.size}, ` +
      `${result.receipts ?? 0} receipts verified`
    : `FAIL at ${result.index !== undefined ? `index ${result.index}: ` : ""}${result.reason}`;
}

const VerifyResult = z.object({
  ok: z.boolean(),
  index: z.number().int().optional().describe("The first entry that cannot be trusted."),
  reason: z.string().optional(),
  entries: z.number().int().optional(),
  receipts: z.number().int().optional(),
  size: z.number().int().optional(),
  root: z.string().optional(),
});

function verifyData(result: PackageResult): z.infer<typeof VerifyResult> {
  return result.ok
    ? {
      ok: true,
      entries: result.entries,
      receipts: result.receipts ?? 0,
      size: result.size,
      root: result.root,
    }
    : {
      ok: false,
      ...(result.index !== undefined ? { index: result.index } : {}),
      reason: result.reason,
    };
}

/** The `evidence_package` tool. */
function evidencePackageTool(services: EvidenceChainServices) {
  return defineTool({
    name: "evidence_package",
    title: "Evidence package",
    description: "Bundle vault entries into a self-verifying evidence package: each entry's " +
      "canonical bytes with its inclusion proof against one signed checkpoint, the signed " +
      "receipts of the executions it covers, referenced bodies and the vault's public key. " +
      "Write `package` to a file and check it offline with `warden verify FILE --key <vkey>`; an " +
      "altered entry fails naming its index. Select by execution_id, case_id (your verified " +
      "executions) and/or vault_indices.",
    inputSchema: z.object({
      execution_id: z.string().min(1).max(100).optional(),
      case_id: z.string().min(1).max(200).optional(),
      vault_indices: z.array(z.number().int().min(0)).max(MAX_PACKAGE_ENTRIES).optional(),
      package_format: z.string().max(64).optional().describe(
        "Accepted and recorded; the package is always warden-evidence-package/1.",
      ),
    }).refine(
      (a) =>
        a.execution_id !== undefined || a.case_id !== undefined ||
        (a.vault_indices?.length ?? 0) > 0,
      { message: "give execution_id, case_id or vault_indices" },
    ),
    outputSchema: z.object({
      package: z.record(z.string(), z.unknown()).describe("The evidence package (JSON)."),
      package_sha256: z.string().describe("SHA-256 of the package's JSON text as returned."),
      entries: z.number().int(),
      receipts: z.number().int(),
      checkpoint_size: z.number().int(),
      root: z.string(),
      vkey: z.string(),
    }),
    annotations: READ_ONLY,
    recordResult: ({ package: _package, ...rest }) => rest,
    async handler(args, ctx) {
      const picked = await select(services, ctx.principal, {
        executionIds: args.execution_id !== undefined ? [args.execution_id] : [],
        ...(args.case_id !== undefined ? { caseId: args.case_id } : {}),
        indices: args.vault_indices ?? [],
      });
      const pkg = await build(services, picked);
      const json = JSON.stringify(pkg);
      if (json.length > MAX_PACKAGE_JSON_BYTES) {
        throw new ToolError(
          `The package would be ${json.length} bytes, over ${MAX_PACKAGE_JSON_BYTES}; select fewer entries`,
        );
      }
      // Checked as `warden verify` will check it, so a package this returns always verifies.
      const self = await verifyEvidencePackage(pkg, { key: services.receipts.vkey });
      if (!self.ok) throw new Error(`evidence package does not verify: ${self.reason}`);
      return {
        data: {
          package: pkg as unknown as Record<string, unknown>,
          package_sha256: sha256HexOfText(json),
          entries: pkg.entries.length,
          receipts: pkg.receipts.length,
          checkpoint_size: pkg.size,
          root: self.root,
          vkey: pkg.vkey,
        },
        text: `Evidence package of ${pkg.entries.length} entries and ${pkg.receipts.length} ` +
          `receipts, proven against the checkpoint of size ${pkg.size}; verify offline with ` +
          `warden verify FILE --key ${pkg.vkey}`,
      };
    },
  });
}

/** The `chain_verify` tool. */
function chainVerifyTool(services: EvidenceChainServices) {
  return defineTool({
    name: "chain_verify",
    title: "Verify the evidence chain",
    description: "Verify vault entries here as `warden verify` would offline: each entry's " +
      "canonical form and inclusion proof against the latest signed checkpoint, the checkpoint's " +
      "Ed25519 signature by the vault's key, and (cross_reference) every receipt of a verified " +
      "execution against the entry it names. Or pass an evidence `package` to verify it against " +
      "this server's key. Returns the first entry that fails.",
    inputSchema: z.object({
      fact_ids: z.array(FactId).max(MAX_PACKAGE_ENTRIES).optional(),
      package: z.record(z.string(), z.unknown()).optional().describe(
        "An evidence package (from evidence_package) to verify.",
      ),
      verify_signatures: z.boolean().default(true).describe(
        "Signatures are always verified (a chain check without them proves nothing); " +
          "false is accepted and ignored.",
      ),
      cross_reference: z.boolean().default(true).describe(
        "Also check the receipts of your verified executions among the facts.",
      ),
    }).refine((a) => (a.fact_ids?.length ?? 0) > 0 || a.package !== undefined, {
      message: "give fact_ids or package",
    }),
    outputSchema: VerifyResult,
    annotations: READ_ONLY,
    async handler(args, ctx) {
      let result: PackageResult;
      if (args.package !== undefined) {
        result = await verifyEvidencePackage(args.package, { key: services.receipts.vkey });
      } else {
        const { indices, executionIds } = parseFactIds(args.fact_ids ?? []);
        const picked = await select(services, ctx.principal, { executionIds, indices });
        if (args.cross_reference) {
          // Entries that record one of the caller's verified executions bring its receipt along.
          for (const index of indices) {
            const stored = await services.ledger.entry(index);
            if (!stored) continue;
            const value = JSON.parse(new TextDecoder().decode(stored.bytes));
            if (value.type !== "execution_evidence") continue;
            const record = await services.executions.get(ctx.principal, value.execution_id);
            if (record && !picked.receipts.includes(record.receipt)) {
              picked.receipts.push(record.receipt);
            }
          }
        }
        result = await verifyEvidencePackage(await build(services, picked), {
          key: services.receipts.vkey,
        });
      }
      return { data: verifyData(result), text: verdictText(result) };
    },
  });
}

const Check = z.object({
  name: z.string(),
  ok: z.boolean(),
  detail: z.string(),
});

/** security_audit's vault checks: the head, the latest checkpoint and (comprehensive) the chain. */
async function vaultChecks(
  services: Pick<EvidenceChainServices, "ledger" | "receipts">,
  size: number,
  args: { audit_level: string; include_chain_verification: boolean },
  signal: AbortSignal,
): Promise<z.infer<typeof Check>[]> {
  const { ledger, receipts } = services;
  const head = { size };
  const checks: z.infer<typeof Check>[] = [];
  const headCheck = await ledger.verifyHead();
  checks.push({
    name: "vault_head",
    ok: headCheck.ok,
    detail: headCheck.ok
      ? `the head's root and last leaf match its ${headCheck.size} entries`
      : headCheck.reason ?? "the head does not verify",
  });
  const latest = await ledger.latestCheckpoint();
  if (latest === null) {
    checks.push({
      name: "checkpoint",
      ok: head.size === 0,
      detail: "no signed checkpoint yet",
    });
  } else {
    try {
      const verifier = await verifierFromVkey(receipts.vkey);
      const { checkpoint } = await openCheckpoint(latest, [verifier], {
        origin: ledger.origin,
      });
      checks.push({
        name: "checkpoint",
        ok: checkpoint.size <= head.size,
        detail: `the latest checkpoint signs ${checkpoint.size} of ${head.size} entries` +
          (checkpoint.size > head.size ? ": more than the head holds (rolled back?)" : ""),
      });
    } catch (e) {
      checks.push({ name: "checkpoint", ok: false, detail: (e as Error).message });
    }
  }
  if (args.audit_level === "comprehensive" && args.include_chain_verification) {
    const notes: string[] = [];
    for await (const cp of ledger.checkpoints()) notes.push(cp.note);
    const verifier = await createBundleVerifier(
      { origin: ledger.origin, vkey: receipts.vkey, checkpoints: notes },
      { key: receipts.vkey, allowUnsignedTail: true },
    );
    for await (const e of ledger.entries(0, head.size, { skipGaps: true })) {
      if (!verifier.push(e.bytes)) break;
      if (signal.aborted) throw new ToolError("security_audit was cancelled");
    }
    const verdict = verifier.finish();
    checks.push({
      name: "vault_chain",
      ok: verdict.ok,
      detail: verdict.ok
        ? `${verdict.entries} entries, hash chain, root and ${verdict.checkpoints} checkpoint ` +
          `signatures verified (${verdict.consistencyProofs} consistency proofs)`
        : `FAIL at ${
          verdict.index !== undefined ? `index ${verdict.index}: ` : ""
        }${verdict.reason}`,
    });
  }
  return checks;
}

/** The `security_audit` tool. */
function securityAuditTool(services: EvidenceChainServices) {
  return defineTool({
    name: "security_audit",
    title: "Security audit",
    description: "Audit this server: the vault (quick: the head and the latest checkpoint's " +
      "signature; comprehensive: every entry, hash chain, root and checkpoint signature), the " +
      "signing key's status, policy health (floors off or soft, operators, holds), open holds, " +
      "and whether the code and shell sandboxes are available.",
    inputSchema: z.object({
      audit_level: z.enum(["quick", "comprehensive"]).default("quick"),
      verify_signatures: z.boolean().default(true).describe(
        "Checkpoint signatures are always verified; false is accepted and ignored.",
      ),
      include_chain_verification: z.boolean().default(true).describe(
        "At comprehensive, verify every vault entry (false: the head and latest checkpoint only).",
      ),
    }),
    outputSchema: z.object({
      status: z.enum(["OK", "WARN", "FAIL"]),
      checks: z.array(Check),
      vault: z.object({ size: z.number().int(), root: z.string(), origin: z.string() }),
      open_holds: z.array(z.object({ id: z.string(), tool: z.string(), expires_at: z.string() })),
    }),
    annotations: READ_ONLY,
    async handler(args, ctx) {
      const { ledger, receipts, policy, governance, code, shell } = services;
      const checks: z.infer<typeof Check>[] = [];
      const warnings: string[] = [];
      const head = await ledger.head();

      checks.push(...await vaultChecks(services, head.size, args, ctx.signal));
      const keyDetail = {
        configured: "configured (WARDEN_SIGNING_KEY / --signing-key)",
        generated: "generated and kept beside the KV",
        kv: "kept in KV: whoever can write the KV can re-sign the log",
      }[receipts.keySource] ?? receipts.keySource;
      if (receipts.keySource === "kv") warnings.push("signing_key");
      checks.push({ name: "signing_key", ok: true, detail: `${receipts.vkey}: ${keyDetail}` });

      const off = FLOOR_IDS.filter((id) => floorMode(policy, id) === "off");
      const soft = FLOOR_IDS.filter((id) => floorMode(policy, id) === "soft");
      if (off.length > 0) warnings.push("policy");
      checks.push({
        name: "policy",
        ok: true,
        detail:
          `policy ${governance.policyHash.slice(0, 16)}…: ${
            off.length ? `floors off: ${off.join(", ")}; ` : ""
          }${soft.length ? `floors soft: ${soft.join(", ")}; ` : ""}${policy.operators.length} ` +
          `operators (${
            policy.operators.length === 0 ? "no hold can be released" : "holds can be released"
          })`,
      });

      const holds = await governance.holds.listOpen(100);
      checks.push({ name: "open_holds", ok: true, detail: `${holds.length} holds waiting` });

      const sandbox = code.available
        ? await code.sandbox.check()
        : { ok: false, reason: code.reason };
      checks.push({
        name: "code_sandbox",
        ok: true,
        detail: sandbox.ok
          ? "available: deno run with no permissions under prlimit"
          : `unavailable: ${(sandbox as { reason: string }).reason}`,
      });
      checks.push({
        name: "shell_sandbox",
        ok: true,
        detail: shell.available ? "available: bubblewrap" : `unavailable: ${shell.reason}`,
      });
      const failed = checks.filter((c) => !c.ok);
      const status: "OK" | "WARN" | "FAIL" = failed.length > 0
        ? "FAIL"
        : warnings.length > 0
        ? "WARN"
        : "OK";
      return {
        data: {
          status,
          checks,
          vault: { size: head.size, root: head.root, origin: ledger.origin },
          open_holds: holds.map((h) => ({
            id: h.id,
            tool: h.tool,
            expires_at: new Date(h.expiresAtMs).toISOString(),
          })),
        },
        text: `${status}: ${
          failed.length ? `failed ${failed.map((c) => c.name).join(", ")}; ` : ""
        }vault ${head.size} entries, ${holds.length} open holds, code sandbox ${
          sandbox.ok ? "available" : "unavailable"
        }`,
      };
    },
  });
}

/**
 * The services the evidence-chain tools use, and only those: the vault and the receipts' key,
 * the caller's verified executions, and for security_audit the policy, governance and sandboxes.
 */
export interface EvidenceChainServices {
  readonly ledger: Ledger;
  readonly receipts: ReceiptSigner;
  readonly executions: ExecutionStore;
  readonly policy: Policy;
  readonly governance: Pick<Governance, "policyHash" | "holds">;
  readonly code: CodeService;
  readonly shell: ShellService;
}

/**
 * evidence_package, chain_verify and security_audit, given exactly the services they use
 * (checked here, when the tools are made).
 */
export const createEvidenceChainTools = toolFamily<EvidenceChainServices>(
  "evidence-chain",
  ["ledger", "receipts", "executions", "policy", "governance", "code", "shell"],
  [evidencePackageTool, chainVerifyTool, securityAuditTool],
);

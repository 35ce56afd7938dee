/**
 * Composition step: the stores and local access every later step reads — file roots and the
 * shell sandbox (refused at start when they cannot be safe), the code sandbox, the evidence and
 * governed-session stores (retained text redacted), the evidence resolver over them, the MCP
 * session store and the per-principal bus.
 * @module
 */
import { type Config, ConfigError } from "../config.ts";
import {
  type CodeService,
  openCodeSandbox,
  openShell,
  SandboxUnavailableError,
  type ShellService,
} from "../execution/mod.ts";
import { FileRootError, type FileRoots, resolveFileRoots } from "../fs/mod.ts";
import { type Policy, redact } from "../governance/mod.ts";
import { createSessionStore, type SessionStore } from "../mcp/mod.ts";
import { type BusService, createBusService } from "../services/mod.ts";
import {
  createEvidenceStore,
  createGovSessionStore,
  type EvidenceStore,
  type GovSessionStore,
} from "../store/mod.ts";
import type { Ledger } from "../vault/mod.ts";
import { createEvidenceResolver, type EvidenceResolver } from "../chain/mod.ts";

/** Paths no file tool or shell command may ever see: the KV file, keys. */
export function secretPaths(config: Readonly<Config>): string[] {
  const out: string[] = [];
  if (config.kvPath !== undefined && config.kvPath !== ":memory:" && config.kvPath !== "") {
    // SQLite keeps recent writes in -wal and -shm files beside the database.
    out.push(config.kvPath, `${config.kvPath}-wal`, `${config.kvPath}-shm`);
    out.push(`${config.kvPath}.credential-key`);
  }
  if (config.credentialKeyFile !== undefined) out.push(config.credentialKeyFile);
  if (config.signingKeyFile !== undefined) out.push(config.signingKeyFile);
  if (config.keyDir !== undefined) out.push(config.keyDir);
  return out;
}

/** File roots and the shell sandbox; a root or sandbox that cannot be safe stops start-up. */
async function openLocalAccess(
  config: Readonly<Config>,
  policy: Policy,
): Promise<{ files: FileRoots; shell: ShellService }> {
  const secrets = secretPaths(config);
  try {
    const files = await resolveFileRoots({
      configured: policy.files.roots,
      kvPath: config.kvPath,
      onDeploy: config.onDeploy,
      protectedPaths: secrets,
      allowHardlinks: policy.files.allow_hardlinks,
    });
    const shell = await openShell({
      settings: policy.shell,
      onDeploy: config.onDeploy,
      protectedPaths: secrets,
    });
    return { files, shell };
  } catch (e) {
    if (e instanceof SandboxUnavailableError || e instanceof FileRootError) {
      throw new ConfigError(e.message);
    }
    throw e;
  }
}

/** What {@link openStores} opened. */
export interface Stores {
  readonly files: FileRoots;
  readonly shell: ShellService;
  readonly code: CodeService;
  readonly evidence: EvidenceStore;
  /** Governed (metabolic) sessions, kept at least a day. */
  readonly govSessions: GovSessionStore;
  /** vault:N, content hashes, fetched URLs and the caller's own sessions, with what each says. */
  readonly resolveEvidence: EvidenceResolver;
  /** MCP sessions (2025 Streamable HTTP and SSE). */
  readonly sessions: SessionStore;
  readonly busService: BusService;
}

/** Opens file roots and sandboxes and makes the stores over `kv`. */
export async function openStores(
  deps: { kv: Deno.Kv; config: Readonly<Config>; policy: Policy; ledger: Ledger },
): Promise<Stores> {
  const { kv, config, policy, ledger } = deps;
  const { files, shell } = await openLocalAccess(config, policy);
  // Probed lazily (first use, security_audit): a server that never runs code starts no runtime.
  const code = openCodeSandbox({ settings: policy.execution.code, onDeploy: config.onDeploy });
  // Text kept for retrieval is redacted with the vault's own detectors before it is written.
  const redactRetained = <T>(value: T): T => redact(value).value as T;
  const evidence = createEvidenceStore(kv, { redact: redactRetained });
  const sessions = createSessionStore(kv, { ttlMs: config.sessionTtlMs });
  const govSessions = createGovSessionStore(kv, {
    ttlMs: Math.max(config.sessionTtlMs, 86_400_000),
    redact: redactRetained,
  });
  const resolveEvidence = createEvidenceResolver({ ledger, evidence, sessions: govSessions });
  // Per-principal bus topics: the bus_* tools, and 2026-07-28 listen streams naming them.
  // Watched in this process; on Deno Deploy the watch sees every isolate, so nothing polls there.
  const busService = createBusService(kv, { limits: { pollMs: config.onDeploy ? 0 : 250 } });
  return { files, shell, code, evidence, govSessions, resolveEvidence, sessions, busService };
}

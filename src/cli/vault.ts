/**
 * `warden export` and `warden verify`: write the vault as a bundle, verify a bundle (streamed) or an evidence package.
 * @module
 */
import { type Config } from "../config.ts";
import { type Logger } from "../lib/mod.ts";
import {
  auditServer,
  type BundleFileResult,
  createLedger,
  describeResult,
  EVIDENCE_PACKAGE_FORMAT,
  exportBundle,
  loadVaultIdentity,
  verifyBundleStream,
  verifyEvidencePackage,
} from "../vault/mod.ts";
import {
  authHint,
  defaultOrigin,
  defaultSigningKeyFile,
  oneLine,
  openKv,
  requireParentDir,
  serverBase,
} from "./_common.ts";

/** The largest evidence package `verify` reads (packages are read whole, bundles streamed). */
const MAX_PACKAGE_BYTES = 256 * 1024 * 1024;

/** Whether the file at `path` is an evidence package rather than an export bundle. */
async function isEvidencePackage(path: string): Promise<boolean> {
  const file = await Deno.open(path);
  try {
    const head = new Uint8Array(4096);
    const n = await file.read(head);
    const text = new TextDecoder().decode(head.subarray(0, n ?? 0));
    return new RegExp(`"format"\\s*:\\s*"${EVIDENCE_PACKAGE_FORMAT}"`).test(text);
  } finally {
    file.close();
  }
}

/** `warden export --out FILE [--kv PATH]`: writes the vault as a bundle. */
export async function exportCommand(config: Readonly<Config>, logger: Logger): Promise<number> {
  if (!config.out) {
    console.error("warden: export needs --out FILE");
    return 2;
  }
  await requireParentDir("--out", config.out);
  const kv = await openKv(config, logger);
  try {
    let identity;
    try {
      // The default key file beside the KV, when the server created one.
      const file = defaultSigningKeyFile(config);
      const fromFile = config.signingKey === undefined && file !== undefined
        ? await Deno.readTextFile(file).then((t) => t.trim(), () => undefined)
        : undefined;
      identity = await loadVaultIdentity(kv, {
        origin: config.origin,
        defaultOrigin: defaultOrigin(),
        keyString: config.signingKey ?? fromFile,
        create: false,
      });
    } catch (e) {
      console.error(`warden: cannot export from ${config.kvPath}: ${(e as Error).message}`);
      return 1;
    }
    const ledger = createLedger(kv, { origin: identity.origin, signer: identity.signer });
    let file: Deno.FsFile;
    try {
      file = await Deno.open(config.out, { write: true, create: true, truncate: true });
    } catch (e) {
      console.error(`warden: cannot write --out ${config.out}: ${oneLine(e)}`);
      return 1;
    }
    const writer = file.writable.getWriter();
    const encoder = new TextEncoder();
    try {
      const result = await exportBundle(ledger, {
        vkey: identity.signer.vkey,
        write: (chunk) => writer.write(encoder.encode(chunk)),
      });
      console.log(
        `exported ${result.entries} entries, ${result.checkpoints} checkpoints, ${result.blobs} bodies to ${config.out}`,
      );
    } finally {
      await writer.close();
    }
    return 0;
  } finally {
    kv.close();
  }
}

/** `warden verify BUNDLE [--key VKEY]` or `warden verify --url URL`: exit 0 only if everything checks. */
export async function verifyCommand(config: Readonly<Config>): Promise<number> {
  const held: string[] = [];
  for (const f of config.checkpointFiles) {
    try {
      held.push(await Deno.readTextFile(f));
    } catch (e) {
      console.error(`warden: cannot read --checkpoint ${f}: ${(e as Error).message}`);
      return 2;
    }
  }
  const options = {
    key: config.key,
    checkpoints: held,
    allowUnsignedTail: config.allowUnsignedTail,
  };
  let result: BundleFileResult;
  if (config.url) {
    try {
      result = await auditServer(serverBase(config.url), { ...options, token: config.token });
    } catch (e) {
      console.error(authHint(`warden: cannot audit ${config.url}: ${oneLine(e)}`));
      return 2;
    }
    if (!result.ok && result.reason) result = { ...result, reason: authHint(result.reason) };
  } else {
    const path = config.args[0];
    if (!path) {
      console.error(
        "warden: verify needs a bundle file (or --url URL, the server with or without /mcp)",
      );
      return 2;
    }
    let isPackage: boolean;
    try {
      isPackage = await isEvidencePackage(path);
    } catch (e) {
      console.error(`warden: cannot open ${path}: ${(e as Error).message}`);
      return 2;
    }
    if (isPackage) return await verifyPackageFile(path, config);
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path);
    } catch (e) {
      console.error(`warden: cannot open ${path}: ${(e as Error).message}`);
      return 2;
    }
    result = await verifyBundleStream(file.readable, options);
  }
  return reportVerification(result);
}

/** `warden verify PACKAGE`: an evidence package (secure_execute's evidence_package), offline. */
async function verifyPackageFile(path: string, config: Readonly<Config>): Promise<number> {
  if (config.checkpointFiles.length > 0) {
    console.error(
      "warden: --checkpoint applies to export bundles; an evidence package proves its entries " +
        "against its own signed checkpoint (pass --key to trust it)",
    );
    return 2;
  }
  const info = await Deno.stat(path);
  if (info.size > MAX_PACKAGE_BYTES) {
    console.error(`warden: ${path} is over ${MAX_PACKAGE_BYTES} bytes; not an evidence package`);
    return 2;
  }
  let pkg: unknown;
  try {
    pkg = JSON.parse(await Deno.readTextFile(path));
  } catch {
    console.error(describeResult({ ok: false, reason: "evidence package is not valid JSON" }));
    return 1;
  }
  const result = await verifyEvidencePackage(pkg, { key: config.key });
  if (result.ok) {
    console.log(
      `OK: evidence package of ${result.entries} entries (canonical form and inclusion proofs ` +
        `against the signed checkpoint of size ${result.size}), ${
          result.receipts ?? 0
        } receipts, ` +
        `${result.blobs ?? 0} bodies; root ${result.root}`,
    );
    return reportWarnings(result);
  }
  console.error(describeResult(result));
  return 1;
}

function reportWarnings(result: BundleFileResult & { ok: true }): number {
  for (const warning of result.warnings ?? []) console.error(`WARNING: ${warning}`);
  if (!result.authenticated) {
    console.error(
      "WARNING: NOTHING WAS AUTHENTICATED. Without --key the bundle was checked only against " +
        "the key it names itself, so it is merely consistent with itself: anyone can produce such " +
        "a bundle. Pass --key with the verifier key you obtained out of band (GET /vault/key).",
    );
  }
  return 0;
}

function reportVerification(result: BundleFileResult): number {
  const line = describeResult(result);
  if (!result.ok) {
    console.error(line);
    return 1;
  }
  console.log(line);
  return reportWarnings(result);
}

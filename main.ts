/**
 * Warden's command line: `serve` (default) and `stdio`. This is the only place
 * that opens resources (KV, the listening socket) and installs process-wide
 * handlers; everything else receives them.
 */
import { type App, createApp } from "./src/app.ts";
import {
  type Announcer,
  createAnnouncer,
  ManifestError,
  parseUpstreams,
  signToolApproval,
  type UpstreamConfig,
} from "./src/gateway/mod.ts";
import {
  generateOperatorKey,
  holdDigest,
  loadOperatorKey,
  parsePolicy,
  type Policy,
  PolicyError,
  redact,
  signDecision,
} from "./src/governance/mod.ts";
import { checkExposure, type Config, ConfigError, helpText, loadConfig } from "./src/config.ts";
import { createLogger, type Logger, VERSION, withRedaction } from "./src/lib/mod.ts";
import {
  credentialCommand,
  identityCommand,
  startWorkers,
  type Workers,
  workersRefusal,
} from "./src/cli/mod.ts";
import { serveStdio } from "./src/mcp/mod.ts";
import type { ToolDefinition } from "./src/calls/mod.ts";
import {
  auditServer,
  type BundleFileResult,
  createLedger,
  describeResult,
  EVIDENCE_PACKAGE_FORMAT,
  exportBundle,
  loadDefaultSigningKey,
  loadVaultIdentity,
  VaultIdentityError,
  verifyBundleStream,
  verifyEvidencePackage,
} from "./src/vault/mod.ts";

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

/** Reads --signing-key FILE into the config (config.ts reads flags and env, never files). */
async function withSigningKeyFile(config: Readonly<Config>): Promise<Readonly<Config>> {
  if (config.signingKeyFile === undefined) return config;
  const text = (await Deno.readTextFile(config.signingKeyFile)).trim();
  return { ...config, signingKey: text };
}

/** `<kv>.signing-key` beside a KV file; none for :memory: or Deno Deploy (key from env there). */
function defaultSigningKeyFile(config: Readonly<Config>): string | undefined {
  if (config.kvPath === undefined || config.kvPath === ":memory:") return undefined;
  return `${config.kvPath}.signing-key`;
}

/**
 * Without --signing-key or WARDEN_SIGNING_KEY the key lives in its own file
 * beside the KV, so holding the KV file is not enough to re-sign a forged
 * history. On Deno Deploy (no files) and with :memory: the key stays in KV,
 * and the log says so.
 */
async function withDefaultSigningKey(
  config: Readonly<Config>,
  kv: Deno.Kv,
  _logger: Logger,
): Promise<Readonly<Config>> {
  if (config.signingKey !== undefined) return config;
  const file = defaultSigningKeyFile(config);
  if (file === undefined) {
    keyWarning = config.onDeploy
      ? "no WARDEN_SIGNING_KEY set on Deno Deploy: the signing key is kept in KV, so whoever can write the KV can re-sign the log; set WARDEN_SIGNING_KEY"
      : "KV is :memory:: the signing key is generated per process and kept in memory only";
    return config;
  }
  const origin = config.origin ?? defaultOrigin();
  const { keyString, created } = await loadDefaultSigningKey(kv, { file, origin });
  // Logged after the "listening" line (scripts read that one first).
  if (created) keyFileNote = { created, file };
  return { ...config, signingKey: keyString };
}

async function openKv(config: Readonly<Config>, logger: Logger): Promise<Deno.Kv> {
  if (config.kvPath === undefined) {
    logger.info("opening Deno Deploy KV");
    return await Deno.openKv();
  }
  if (config.kvPath !== ":memory:") await requireParentDir("--kv", config.kvPath);
  try {
    return await Deno.openKv(config.kvPath);
  } catch (e) {
    throw new ConfigError(`cannot open --kv ${config.kvPath}: ${oneLine(e)}`);
  }
}

/** First line of an error's message: CLI errors are one line, never a stack trace. */
function oneLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split("\n")[0];
}

/** The directory a file flag writes into must exist; a one-line error names the flag otherwise. */
async function requireParentDir(flag: string, path: string): Promise<void> {
  const slash = path.lastIndexOf("/");
  const dir = slash < 0 ? "." : slash === 0 ? "/" : path.slice(0, slash);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(dir);
  } catch {
    throw new ConfigError(`${flag} ${path}: directory ${dir} does not exist`);
  }
  if (!info.isDirectory) throw new ConfigError(`${flag} ${path}: ${dir} is not a directory`);
}

/**
 * The server's base URL from whatever the operator pasted: the advertised
 * `…/mcp` endpoint or the bare origin, with or without a trailing slash.
 */
export function serverBase(url: string): string {
  return url.replace(/\/+$/, "").replace(/\/mcp$/, "").replace(/\/+$/, "");
}

/** Appends what to do about a 401/403 to a message about a remote call. */
function authHint(message: string): string {
  return /\b(401|403)\b/.test(message)
    ? `${message} (the server requires a bearer token: pass --token SECRET or set WARDEN_TOKEN)`
    : message;
}

/** How many positional arguments each command takes after its name. */
const POSITIONALS: Readonly<Record<string, number>> = {
  serve: 0,
  stdio: 0,
  health: 0,
  export: 0,
  keygen: 0,
  verify: 1,
  approve: 1,
  deny: 1,
  "approve-tool": 2,
};

let keyFileNote: { created: string; file: string } | undefined;
let keyWarning: string | undefined;

/** Says where the checkpoint key came from; a generated one gets a line telling how to supply your own. */
function logSigningKey(app: App, logger: Logger): void {
  if (keyFileNote) {
    logger.always(`checkpoint signing key ${keyFileNote.created} into its own file`, {
      file: keyFileNote.file,
      mode: "0600",
      hint:
        "keep it away from the KV file's backups; or pass --signing-key FILE / WARDEN_SIGNING_KEY",
    });
    keyFileNote = undefined;
  }
  if (keyWarning) {
    logger.warn(keyWarning);
    keyWarning = undefined;
  }
  const { identity } = app;
  if (identity.source === "generated") {
    logger.always("generated a checkpoint signing key and stored it in KV", {
      origin: identity.origin,
      vkey: identity.signer.vkey,
      hint: "to use your own key, set WARDEN_SIGNING_KEY or pass --signing-key FILE",
    });
  } else {
    logger.info("checkpoint signing key loaded", {
      source: identity.source,
      origin: identity.origin,
      vkey: identity.signer.vkey,
    });
  }
}

/** `warden/<hostname>`: the origin of a new log unless configured. */
function defaultOrigin(): string {
  try {
    return `warden/${Deno.hostname()}`;
  } catch {
    return "warden/localhost";
  }
}

/**
 * The Deno runtime raises the descriptor soft limit to the hard limit at start; what it cannot
 * pass is the hard limit. When that is low, say how to raise it before a flood of idle
 * connections exhausts it.
 */
async function warnLowFdLimit(logger: Logger): Promise<void> {
  let text: string;
  try {
    text = await Deno.readTextFile("/proc/self/limits");
  } catch {
    return; // not Linux, or no /proc (Deno Deploy)
  }
  const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(text);
  if (!m || m[1] === "unlimited") return;
  const soft = Number(m[1]);
  if (soft >= 8192) return;
  logger.warn(
    `file descriptor limit is ${soft} (hard ${
      m[2]
    }): a flood of idle connections can exhaust it; raise the hard limit before start (\`ulimit -Hn 65536\`, Docker --ulimit nofile=65536:65536, systemd LimitNOFILE=65536)`,
    { soft, hard: m[2] },
  );
}

/** Told when Deno.serve's accept loop fails (file descriptors exhausted): serve() re-listens. */
let onListenerFailed: (() => void) | undefined;

/** Whether a contained rejection is the HTTP server's accept loop giving up. */
function isAcceptFailure(reason: unknown): boolean {
  const r = reason as { name?: unknown; message?: unknown } | null;
  return r?.name === "Http" && /Too many open files|os error 2[34]\b/.test(String(r.message));
}

/** Keeps a stray rejection or exception in some tool from killing the whole server. */
function containFaults(logger: Logger): void {
  globalThis.addEventListener("unhandledrejection", (e) => {
    e.preventDefault();
    logger.error("unhandled promise rejection contained", { error: e.reason });
    if (isAcceptFailure(e.reason)) onListenerFailed?.();
  });
  globalThis.addEventListener("error", (e) => {
    e.preventDefault();
    logger.error("uncaught exception contained", { error: e.error });
  });
}

/** Reads and validates --policy FILE; a bad file stops start-up with the field named. */
async function loadPolicyFile(
  config: Readonly<Config>,
): Promise<{ policy: Policy; source: string } | undefined> {
  if (config.policyFile === undefined) return undefined;
  let text: string;
  try {
    text = await Deno.readTextFile(config.policyFile);
  } catch (e) {
    throw new ConfigError(`cannot read policy file ${config.policyFile}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(
      `policy file ${config.policyFile} is not valid JSON: ${(e as Error).message}`,
    );
  }
  try {
    return { policy: parsePolicy(json), source: config.policyFile };
  } catch (e) {
    if (e instanceof PolicyError) {
      throw new ConfigError(`policy file ${config.policyFile}: ${e.message}`);
    }
    throw e;
  }
}

/** Reads and validates --upstreams FILE; a bad file stops start-up with the field named. */
async function loadUpstreamsFile(config: Readonly<Config>): Promise<UpstreamConfig[]> {
  if (config.upstreamsFile === undefined) return [];
  let text: string;
  try {
    text = await Deno.readTextFile(config.upstreamsFile);
  } catch (e) {
    throw new ConfigError(
      `cannot read upstreams file ${config.upstreamsFile}: ${(e as Error).message}`,
    );
  }
  try {
    return parseUpstreams(text);
  } catch (e) {
    if (e instanceof ManifestError) {
      throw new ConfigError(`upstreams file ${config.upstreamsFile}: ${e.message}`);
    }
    throw e;
  }
}

/** Test harnesses start the real CLI with extra tools; production passes none. */
export interface MainOptions {
  readonly extraTools?: readonly ToolDefinition[];
}

async function serve(
  config: Readonly<Config>,
  logger: Logger,
  options: MainOptions,
): Promise<number> {
  const refusal = checkExposure(config) ?? workersRefusal(config);
  if (refusal) {
    console.error(refusal.startsWith("warden:") ? refusal : `warden: ${refusal}`);
    Deno.exit(2);
  }
  let workers: Workers | undefined;
  let stopping = false;
  const { kv, app } = await openApp(config, logger, options);
  let ac = new AbortController();
  let announcer: Announcer | undefined;
  let server: Deno.HttpServer;
  let boundPort = config.port;
  try {
    server = listen(config, ac, app, logger, (shown, port) => {
      boundPort = port;
      if (config.workerIndex > 0) return; // the first process announces, for all of them
      announcer = startAnnouncer(config, app, logger, shown, port);
      if (config.workers > 1) {
        startWorkers({ count: config.workers, argv: Deno.args, port, logger }).then((w) => {
          workers = w;
          if (stopping) void w.stop();
        }).catch((e) => logger.error("cannot start workers", { error: e }));
      }
    });
  } catch (e) {
    // A busy or forbidden port: say so and exit at once, never linger listening on nothing.
    console.error(
      e instanceof Deno.errors.AddrInUse
        ? `warden: port ${config.port} on ${config.host} is already in use (another warden?): pick another with --port or stop the other process`
        : `warden: cannot listen on ${config.host}:${config.port}: ${oneLine(e)}`,
    );
    await app.close();
    kv.close();
    return 1;
  }
  await warnLowFdLimit(logger);
  let recovering = false;
  // Out of file descriptors (a flood of half-open connections), Deno.serve's accept loop dies and
  // the port would stay closed after the attacker leaves: close that listener and bind the same
  // port again, retrying until descriptors are free (issue 9 §6).
  onListenerFailed = async () => {
    if (stopping || recovering) return;
    recovering = true;
    logger.warn("listener failed (file descriptors exhausted?); listening again", {
      port: boundPort,
    });
    ac.abort();
    const again = { ...config, port: boundPort };
    for (let delay = 100; !stopping; delay = Math.min(delay * 2, 2000)) {
      await new Promise((r) => setTimeout(r, delay));
      try {
        const next = new AbortController();
        server = listen(again, next, app, logger, () => {}, false);
        ac = next;
        logger.always("listening again", { port: boundPort });
        break;
      } catch (e) {
        logger.warn("cannot listen again yet", { port: boundPort, error: oneLine(e) });
      }
    }
    recovering = false;
  };
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info("shutting down", { signal });
    await announcer?.stop();
    await workers?.stop();
    await app.close();
    ac.abort();
    await server.finished;
    kv.close();
    Deno.exit(0);
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    try {
      Deno.addSignalListener(signal, () => void stop(signal));
    } catch {
      // Signals are not available on every platform (Windows lacks SIGTERM).
    }
  }
  // A recovered listener replaces the first: wait for whichever is current when stopping.
  while (true) {
    const current = server;
    await current.finished;
    while (recovering) await new Promise((r) => setTimeout(r, 50));
    if (stopping || current === server) break;
  }
  return 0;
}

/** Binds the port; throws (AddrInUse, PermissionDenied) before anything is served. */
function listen(
  config: Readonly<Config>,
  ac: AbortController,
  app: App,
  logger: Logger,
  onBound: (shown: string, port: number) => void,
  first = true,
): Deno.HttpServer {
  return Deno.serve({
    port: config.port,
    hostname: config.host,
    signal: ac.signal,
    // --workers: every process binds the same port; the kernel spreads connections.
    ...(config.workers > 1 ? { reusePort: true } : {}),
    onListen: ({ hostname, port }) => {
      if (!first) return; // a listener bound again after a failure announces nothing new
      app.setBoundPort(port);
      const shown = hostname.includes(":") ? `[${hostname}]` : hostname;
      if (config.workerIndex > 0) {
        logger.always("worker listening", { worker: config.workerIndex, pid: Deno.pid, port });
        onBound(shown, port);
        return;
      }
      // Printed whatever the log level: operators and scripts read the bound URL from it.
      logger.always("listening", {
        url: `http://${shown}:${port}/mcp`,
        version: VERSION,
        kv: config.kvPath ?? "deno-deploy",
        response_mode: config.responseMode,
        auth: config.token ? "bearer" : "none",
        ...(config.publicUrl ? { public_url: `${config.publicUrl}/mcp` } : {}),
      });
      logSigningKey(app, logger);
      onBound(shown, port);
    },
  }, app.fetch);
}

/**
 * Announce (WARDEN_REGISTER_URL): registers this Warden's own tools with the
 * other gateway once listening. Only own tools: two Wardens fronting each
 * other must not re-expose each other's re-exposures.
 */
function startAnnouncer(
  config: Readonly<Config>,
  app: App,
  logger: Logger,
  host: string,
  port: number,
): Announcer | undefined {
  const a = config.announce;
  if (!a) return undefined;
  const base = a.publicUrl ?? `http://${host}:${port}`;
  const announcer = createAnnouncer({
    registerUrl: a.url,
    token: a.token,
    logger,
    checkIntervalMs: a.checkIntervalMs,
    manifest: () => ({
      server_name: a.name,
      endpoint: `${base}/mcp`,
      transport: "streamable-http",
      version: VERSION,
      health_check: `${base}/health`,
      ...(a.credential !== undefined
        ? { headers: { authorization: `Bearer ${a.credential}` } }
        : {}),
      tools: app.registry.list().map((t) => t.name).filter((n) => !app.gateway.get(n)).slice(
        0,
        1000,
      ),
    }),
  });
  announcer.start();
  return announcer;
}

/** Loads the policy, opens KV and wires the app: what serve and stdio share. */
async function openApp(
  config: Readonly<Config>,
  logger: Logger,
  options: MainOptions,
): Promise<{ kv: Deno.Kv; app: App }> {
  const policy = await loadPolicyFile(config);
  const upstreams = await loadUpstreamsFile(config);
  const kv = await openKv(config, logger);
  config = await withDefaultSigningKey(config, kv, logger);
  const app = await createApp(config, {
    kv,
    logger,
    extraTools: options.extraTools,
    defaultOrigin: defaultOrigin(),
    policy: policy?.policy,
    policySource: policy?.source,
    upstreams,
  });
  containFaults(logger);
  return { kv, app };
}

async function stdio(
  config: Readonly<Config>,
  logger: Logger,
  options: MainOptions,
): Promise<void> {
  if (config.announce) {
    logger.warn(
      "--register-url applies to `serve` only: a stdio Warden is not reachable over HTTP",
    );
  }
  const { kv, app } = await openApp(config, logger, options);
  await serveStdio(app.newMcpServer("local", "stdio"), logger);
  await app.close();
  kv.close();
}

/** `warden health`: probes a running server's /health (the Docker HEALTHCHECK, no curl needed). */
async function health(config: Readonly<Config>): Promise<number> {
  const host = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host;
  const shown = host.includes(":") ? `[${host}]` : host;
  // --url names the server explicitly (with or without /mcp); otherwise loopback on --host/--port,
  // and /health is exempt from the Host check, so this works whatever --allowed-hosts says.
  const target = config.url
    ? `${serverBase(config.url)}/health`
    : `http://${shown}:${config.port}/health`;
  try {
    const res = await fetch(target, {
      signal: AbortSignal.timeout(5000),
    });
    const body = await res.text();
    console.log(body);
    return res.ok ? 0 : 1;
  } catch (e) {
    console.error(`warden: health check failed (${target}): ${oneLine(e)}`);
    return 1;
  }
}

/** `warden export --out FILE [--kv PATH]`: writes the vault as a bundle. */
async function exportCommand(config: Readonly<Config>, logger: Logger): Promise<number> {
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
async function verifyCommand(config: Readonly<Config>): Promise<number> {
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

/** `warden keygen --out DIR [--name NAME]`: an operator key pair. */
async function keygenCommand(config: Readonly<Config>): Promise<number> {
  if (!config.out) {
    console.error("warden: keygen needs --out DIR");
    return 2;
  }
  const { keyFile, pubFile, publicKey } = await generateOperatorKey(
    config.operatorName ?? "operator",
  );
  try {
    await Deno.mkdir(config.out, { recursive: true });
  } catch (e) {
    console.error(`warden: cannot create --out directory ${config.out}: ${oneLine(e)}`);
    return 1;
  }
  const keyPath = `${config.out}/operator.key`;
  try {
    await Deno.writeTextFile(keyPath, keyFile, { mode: 0o600, createNew: true });
  } catch (e) {
    console.error(
      `warden: cannot write ${keyPath}: ${
        (e as Error).message
      } (an existing key is never overwritten)`,
    );
    return 1;
  }
  await Deno.writeTextFile(`${config.out}/operator.pub`, pubFile);
  console.log(`wrote ${keyPath} (private, mode 0600) and ${config.out}/operator.pub`);
  console.log(
    `add to the policy's "operators": ${
      JSON.stringify({ name: config.operatorName ?? "operator", public_key: publicKey })
    }`,
  );
  return 0;
}

/**
 * Shows the held call's arguments and recomputes the digest from them, so the
 * operator signs what they read. A mismatch refuses to sign; redacted or
 * omitted arguments are said to be unverifiable rather than silently trusted.
 */
function checkHoldDigest(
  // deno-lint-ignore no-explicit-any -- the server's JSON, checked field by field
  hold: any,
): { ok: boolean; message: string } {
  if (hold.arguments === undefined) {
    return {
      ok: true,
      message: `arguments: not shown (${
        hold.arguments_omitted ?? "this server does not report them"
      }); the digest cannot be recomputed here`,
    };
  }
  const shown = `arguments: ${JSON.stringify(hold.arguments, null, 2)}`;
  if (hold.arguments_redacted > 0) {
    return {
      ok: true,
      message: `${shown}\n${hold.arguments_redacted} value(s) redacted above: the digest covers ` +
        `the original values, so it cannot be recomputed from what is shown`,
    };
  }
  let recomputed: string;
  try {
    recomputed = holdDigest({
      tool: hold.tool,
      arguments: hold.arguments,
      principal: hold.principal,
    });
  } catch (e) {
    return { ok: false, message: `${shown}\ncannot recompute the digest: ${(e as Error).message}` };
  }
  if (recomputed !== hold.digest) {
    return {
      ok: false,
      message:
        `${shown}\nREFUSED: sha256 of canonical {tool, arguments, principal} is ${recomputed}, ` +
        `not the digest ${hold.digest} the server asks you to sign`,
    };
  }
  return {
    ok: true,
    message: `${shown}\ndigest recomputed from these arguments: ${recomputed} (matches)`,
  };
}

/** `warden approve|deny HOLD_ID --key FILE --url URL`: signs the hold's digest and sends it. */
async function decideCommand(
  config: Readonly<Config>,
  decision: "approve" | "deny",
): Promise<number> {
  const holdId = config.args[0];
  if (!holdId || !config.key || !config.url) {
    console.error(
      `warden: ${decision} needs HOLD_ID, --key FILE and --url URL (the server, with or without /mcp)`,
    );
    return 2;
  }
  let key;
  try {
    key = await loadOperatorKey(await Deno.readTextFile(config.key));
  } catch (e) {
    console.error(`warden: cannot load operator key ${config.key}: ${(e as Error).message}`);
    return 2;
  }
  const base = serverBase(config.url);
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (config.token) headers.authorization = `Bearer ${config.token}`;
  try {
    const res = await fetch(`${base}/holds/${encodeURIComponent(holdId)}`, {
      headers,
      signal: AbortSignal.timeout(30_000),
    });
    const hold = await res.json();
    if (!res.ok) {
      console.error(
        authHint(
          `warden: ${
            hold?.error?.message ?? "refused"
          } (GET /holds/${holdId} answered ${res.status})`,
        ),
      );
      return 1;
    }
    // Show what is being signed: the operator decides on this exact call.
    console.error(
      `hold ${hold.id}: tool ${hold.tool} for ${hold.principal}, status ${hold.status}, expires ${hold.expires_at}\n` +
        `reasons: ${hold.reasons.join("; ")}\ndigest: ${hold.digest}`,
    );
    const check = checkHoldDigest(hold);
    console.error(check.message);
    if (!check.ok) return 1;
    const operator = config.operatorName ?? key.name;
    const signature = await signDecision(key, { decision, holdId: hold.id, digest: hold.digest });
    const post = await fetch(`${base}/holds/${encodeURIComponent(holdId)}/${decision}`, {
      method: "POST",
      headers,
      body: JSON.stringify({ operator, signature }),
      signal: AbortSignal.timeout(30_000),
    });
    const body = await post.json();
    if (!post.ok) {
      console.error(
        authHint(
          `warden: ${decision} refused (${post.status}): ${
            body?.error?.message ?? "unknown error"
          }`,
        ),
      );
      return 1;
    }
    console.log(
      `${
        decision === "approve" ? "approved" : "denied"
      } hold ${holdId} as ${operator}: status ${body.status}`,
    );
    return 0;
  } catch (e) {
    console.error(`warden: cannot reach ${base}: ${(e as Error).message}`);
    return 1;
  }
}

/**
 * `warden approve-tool SERVER TOOL --key FILE --url URL`: shows the upstream
 * tool's current definition hash, signs it and sends the approval; the server
 * re-pins the tool (sealed) and releases it from F10's hold.
 */
async function approveToolCommand(config: Readonly<Config>): Promise<number> {
  const [server, tool] = config.args;
  if (!server || !tool || !config.key || !config.url) {
    console.error(
      "warden: approve-tool needs SERVER TOOL, --key FILE and --url URL (the server, with or without /mcp)",
    );
    return 2;
  }
  let key;
  try {
    key = await loadOperatorKey(await Deno.readTextFile(config.key));
  } catch (e) {
    console.error(`warden: cannot load operator key ${config.key}: ${(e as Error).message}`);
    return 2;
  }
  const base = serverBase(config.url);
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (config.token) headers.authorization = `Bearer ${config.token}`;
  try {
    const res = await fetch(`${base}/api/servers/${encodeURIComponent(server)}`, {
      headers,
      signal: AbortSignal.timeout(30_000),
    });
    const status = await res.json();
    if (!res.ok) {
      console.error(
        authHint(
          `warden: ${
            status?.error?.message ?? "refused"
          } (GET /api/servers/${server} answered ${res.status})`,
        ),
      );
      return 1;
    }
    const entry = (status.tools as {
      upstream_tool: string;
      definition_sha256: string;
      pinned_sha256: string;
      state: string;
    }[])
      .find((t) => t.upstream_tool === tool);
    if (!entry) {
      console.error(`warden: upstream ${server} has no tool ${tool}`);
      return 1;
    }
    console.error(
      `upstream ${server} tool ${tool}: state ${entry.state}\npinned:  ${entry.pinned_sha256}\ncurrent: ${entry.definition_sha256}`,
    );
    const operator = config.operatorName ?? key.name;
    const signature = await signToolApproval(key, server, tool, entry.definition_sha256);
    const post = await fetch(
      `${base}/api/servers/${encodeURIComponent(server)}/tools/${encodeURIComponent(tool)}/approve`,
      {
        method: "POST",
        headers,
        body: JSON.stringify({ sha256: entry.definition_sha256, operator, signature }),
        signal: AbortSignal.timeout(30_000),
      },
    );
    const body = await post.json();
    if (!post.ok) {
      console.error(
        authHint(
          `warden: approve-tool refused (${post.status}): ${
            body?.error?.message ?? "unknown error"
          }`,
        ),
      );
      return 1;
    }
    console.log(`approved ${server} tool ${tool} as ${operator}: pinned ${body.pinned}`);
    return 0;
  } catch (e) {
    console.error(`warden: cannot reach ${base}: ${(e as Error).message}`);
    return 1;
  }
}

/** Runs the CLI and resolves with the process exit code. */
export async function main(argv: string[], options: MainOptions = {}): Promise<number> {
  if (argv[0] === "token" || argv[0] === "user") return await identityCommand(argv);
  if (argv[0] === "upstream") return await credentialCommand(argv);
  let config: Readonly<Config>;
  try {
    config = loadConfig(argv, (name) => Deno.env.get(name));
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`warden: ${e.message}\nRun 'warden --help' for usage.`);
      return 2;
    }
    throw e;
  }
  const allowed = POSITIONALS[config.command];
  if (allowed !== undefined && config.args.length > allowed) {
    console.error(
      `warden: ${config.command} takes ${allowed === 0 ? "no" : `at most ${allowed}`} ` +
        `positional argument${allowed === 1 ? "" : "s"}; unexpected: ${
          config.args.slice(allowed).map((a) => JSON.stringify(a)).join(" ")
        }\nRun 'warden --help' for usage.`,
    );
    return 2;
  }
  // Every line through the vault's secret detectors (the app's own wrapper is then this one).
  const logger = withRedaction(createLogger({ level: config.logLevel }), (v) => redact(v).value);
  try {
    config = await withSigningKeyFile(config);
  } catch (e) {
    console.error(`warden: cannot read --signing-key file: ${(e as Error).message}`);
    return 2;
  }
  try {
    return await dispatch(config, logger, options);
  } catch (e) {
    if (e instanceof ConfigError || e instanceof VaultIdentityError) {
      console.error(`warden: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

async function dispatch(
  config: Readonly<Config>,
  logger: Logger,
  options: MainOptions,
): Promise<number> {
  switch (config.command) {
    case "help":
      console.log(helpText());
      return 0;
    case "serve":
      return await serve(config, logger, options);
    case "stdio":
      await stdio(config, logger, options);
      return 0;
    case "health":
      return await health(config);
    case "export":
      return await exportCommand(config, logger);
    case "verify":
      return await verifyCommand(config);
    case "keygen":
      return await keygenCommand(config);
    case "approve":
    case "deny":
      return await decideCommand(config, config.command);
    case "approve-tool":
      return await approveToolCommand(config);
    default:
      console.error(`warden: unknown command "${config.command}"\n\n${helpText()}`);
      return 2;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}

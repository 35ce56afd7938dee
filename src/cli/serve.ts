/**
 * `warden serve` and `warden stdio`: open the KV, the policy and the upstreams, build the app, listen (re-listening when the accept loop fails) or serve MCP on stdin/stdout. The only place that opens the listening socket and installs process-wide handlers.
 * @module
 */
import { type App, createApp } from "../app.ts";
import {
  type Announcer,
  createAnnouncer,
  ManifestError,
  parseUpstreams,
  type UpstreamConfig,
} from "../gateway/mod.ts";
import { parsePolicy, type Policy, PolicyError } from "../governance/mod.ts";
import { checkExposure, type Config, ConfigError } from "../config.ts";
import { type Logger, VERSION } from "../lib/mod.ts";
import { startWorkers } from "./workers.ts";
import { type Workers } from "./workers.ts";
import { workersRefusal } from "./workers.ts";
import { serveStdio } from "../mcp/mod.ts";
import { loadDefaultSigningKey } from "../vault/mod.ts";
import { defaultOrigin, defaultSigningKeyFile, MainOptions, oneLine, openKv } from "./_common.ts";

let keyFileNote: { created: string; file: string } | undefined;

let keyWarning: string | undefined;

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

export async function serve(
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
  let server: Deno.HttpServer | undefined;
  let boundPort = config.port;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info("shutting down", { signal });
    await announcer?.stop();
    await workers?.stop();
    await app.close();
    ac.abort();
    await server?.finished;
    kv.close();
    Deno.exit(0);
  };
  // Set before listening: a signal sent the moment the "listening" line appears (a supervisor
  // stopping what it just started) is a graceful stop, not the default action's abrupt one.
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    try {
      Deno.addSignalListener(signal, () => void stop(signal));
    } catch {
      // Signals are not available on every platform (Windows lacks SIGTERM).
    }
  }
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
  // A recovered listener replaces the first: wait for whichever is current when stopping.
  while (true) {
    const current: Deno.HttpServer = server!;
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

export async function stdio(
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

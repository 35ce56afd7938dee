/**
 * Test fixtures: a real Warden server on an ephemeral port (in-process, real
 * KV) and a child-process server for restart and multi-process tests.
 */
import { type App, type AppDeps, createApp } from "../../src/app.ts";
import { parsePolicy } from "../../src/governance/mod.ts";
import { loadConfig } from "../../src/config.ts";
import type { UpstreamConfig } from "../../src/gateway/mod.ts";
import { createLogger, silentLogger } from "../../src/lib/log.ts";
import type { ServerExtension } from "../../src/mcp/mod.ts";
import type { ToolDefinition } from "../../src/calls/mod.ts";

/**
 * A running in-process server. Disposable: `await using server = await
 * startServer(…)` closes it when the scope ends, however the test leaves it.
 */
export interface TestServer extends AsyncDisposable {
  readonly url: string;
  readonly port: number;
  readonly app: App;
  readonly kv: Deno.Kv;
  close(): Promise<void>;
}

/** Options of {@link startServer}. */
export type StartOptions = NonNullable<Parameters<typeof startServer>[0]>;

/** Runs `fn` against a server started with `options`, and closes it afterwards, whatever happens. */
export async function withServer<T>(
  options: StartOptions,
  fn: (server: TestServer) => Promise<T>,
): Promise<T> {
  await using server = await startServer(options);
  return await fn(server);
}

/** The vault entries `server` has sealed (decoded), optionally only those of `type`. */
export async function sealedEntries(
  server: Pick<TestServer, "app">,
  type?: string,
  // deno-lint-ignore no-explicit-any -- entries are probed field by field
): Promise<any[]> {
  // deno-lint-ignore no-explicit-any
  const out: any[] = [];
  const { size } = await server.app.ledger.head();
  for await (const e of server.app.ledger.entries(0, size)) {
    const v = JSON.parse(new TextDecoder().decode(e.bytes));
    if (type === undefined || v.type === type) out.push(v);
  }
  return out;
}

/** Starts Warden on 127.0.0.1 with a free port and `:memory:` KV unless told otherwise. */
export async function startServer(
  options: {
    args?: string[];
    env?: Record<string, string>;
    kv?: Deno.Kv;
    extraTools?: ToolDefinition[];
    extensions?: ServerExtension[];
    log?: boolean;
    /** Where the server's log lines go (each JSON line, at debug level); overrides `log`. */
    logLines?: (line: string) => void;
    /** A policy document (validated as a policy file would be). */
    policy?: unknown;
    /** Upstreams, as main.ts passes them after reading --upstreams. */
    upstreams?: UpstreamConfig[];
    gatewayOptions?: AppDeps["gatewayOptions"];
    busListen?: AppDeps["busListen"];
    verifyPassword?: AppDeps["verifyPassword"];
    oauthFetch?: AppDeps["oauthFetch"];
    oidcFetch?: AppDeps["oidcFetch"];
    /** The clock holds expire by (epoch ms). */
    clock?: AppDeps["clock"];
    /** Serve HTTPS with this certificate (the URL is then https). */
    tls?: { cert: string; key: string };
  } = {},
): Promise<TestServer> {
  const config = loadConfig(
    ["serve", "--port", "0", "--kv", ":memory:", ...(options.args ?? [])],
    (name) => options.env?.[name],
  );
  const kv = options.kv ?? await Deno.openKv(":memory:");
  const logger = options.logLines
    ? createLogger({ level: "debug", write: options.logLines })
    : options.log
    ? createLogger({ level: "debug" })
    : silentLogger;
  const app = await createApp(config, {
    kv,
    logger,
    ...(options.policy !== undefined
      ? { policy: parsePolicy(options.policy), policySource: "test" }
      : {}),
    extraTools: options.extraTools,
    extensions: options.extensions,
    ...(options.upstreams ? { upstreams: options.upstreams } : {}),
    ...(options.gatewayOptions ? { gatewayOptions: options.gatewayOptions } : {}),
    ...(options.busListen ? { busListen: options.busListen } : {}),
    ...(options.verifyPassword ? { verifyPassword: options.verifyPassword } : {}),
    ...(options.oauthFetch ? { oauthFetch: options.oauthFetch } : {}),
    ...(options.oidcFetch ? { oidcFetch: options.oidcFetch } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
  });
  const ac = new AbortController();
  const { promise: listening, resolve } = Promise.withResolvers<number>();
  const server = Deno.serve({
    // An ephemeral port unless `args` names one (a later --port wins).
    port: config.port,
    hostname: "127.0.0.1",
    signal: ac.signal,
    onListen: ({ port }) => resolve(port),
    ...(options.tls ?? {}),
  }, app.fetch);
  const port = await listening;
  app.setBoundPort(port);
  let closed: Promise<void> | undefined;
  const close = () =>
    closed ??= (async () => {
      await app.close();
      ac.abort();
      await server.finished;
      if (!options.kv) kv.close();
    })();
  const scheme = options.tls ? "https" : "http";
  return {
    url: `${scheme}://127.0.0.1:${port}`,
    port,
    app,
    kv,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** A Warden server in its own process (`deno run main.ts serve`); disposing of it stops it. */
export interface ChildServer extends AsyncDisposable {
  readonly url: string;
  readonly process: Deno.ChildProcess;
  /** Sends a signal and waits for exit. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
  /** stderr lines read so far. */
  readonly logs: string[];
}

const MAIN = new URL("./main_with_test_tools.ts", import.meta.url).pathname;

/**
 * Spawns the real CLI (with the test-only tools added) as `serve --port 0`
 * unless `args` names a port, and resolves once its first log line names the URL.
 */
export async function spawnServer(
  args: string[],
  env: Record<string, string> = {},
): Promise<ChildServer> {
  const portArgs = args.includes("--port") ? [] : ["--port", "0"];
  return await spawnListening(["run", "-A", MAIN, "serve", ...portArgs, ...args], { env });
}

/**
 * Runs `deno <args>` (a Warden server however it is started: `run main.ts serve`, `task start`)
 * and resolves once a JSON log line on its stderr says `listening`, with the URL it names; fails
 * if it exits first or does not listen within `timeoutMs`.
 */
export async function spawnListening(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {},
): Promise<ChildServer> {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    ...(options.cwd ? { cwd: options.cwd } : {}),
    env: { NO_COLOR: "1", ...options.env },
    stdout: "null",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  const logs: string[] = [];
  const { promise: urlReady, resolve, reject } = Promise.withResolvers<string>();
  (async () => {
    const lines = child.stderr.pipeThrough(new TextDecoderStream()).values();
    let buf = "";
    for await (const chunk of lines) {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        logs.push(line);
        try {
          const rec = JSON.parse(line);
          if (rec.msg === "listening") resolve(String(rec.url).replace(/\/mcp$/, ""));
        } catch {
          // not a JSON log line
        }
      }
    }
    reject(new Error(`server exited before listening:\n${logs.join("\n")}`));
  })();
  const timeoutMs = options.timeoutMs ?? 30_000;
  const timer = setTimeout(
    () => reject(new Error(`server did not start in ${timeoutMs / 1000} s`)),
    timeoutMs,
  );
  let url: string;
  try {
    url = await urlReady.finally(() => clearTimeout(timer));
  } catch (e) {
    // Not listening: do not leave it running behind the failed test.
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await child.status;
    throw e;
  }
  const stop = async (signal: Deno.Signal = "SIGTERM") => {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
    return await child.status;
  };
  return {
    url,
    process: child,
    logs,
    stop,
    async [Symbol.asyncDispose]() {
      await stop();
    },
  };
}

/** A policy without rate or concurrency limits, for tests that load the transports on purpose. */
export const UNTHROTTLED_POLICY = {
  rate_limits: {
    per_principal_per_minute: 0,
    per_tool_per_minute: 0,
    max_concurrent_per_principal: 0,
  },
};

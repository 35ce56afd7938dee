/**
 * Real upstream MCP servers for gateway tests, started from npm: the
 * reference servers, pinned in deno.json's imports (one place for the
 * version), run with Deno's npm support.
 */
import denoJson from "../../deno.json" with { type: "json" };
import { parseUpstreams, type UpstreamConfig } from "../../src/gateway/mod.ts";
import { type StartOptions, startServer, type TestServer } from "./server.ts";

const imports = denoJson.imports as Record<string, string>;

/** The pinned `npm:` specifier of a reference server, e.g. `npm:@modelcontextprotocol/server-memory@2026.8.31`. */
export function pinned(pkg: string): string {
  const spec = imports[pkg];
  if (!spec) throw new TypeError(`${pkg} is not pinned in deno.json imports`);
  return spec;
}

/** Where Deno keeps its npm cache (a sandboxed stdio upstream mounts it read-only). */
export function denoDir(): string {
  const out = new Deno.Command(Deno.execPath(), { args: ["info", "--json"], stdout: "piped" })
    .outputSync();
  return JSON.parse(new TextDecoder().decode(out.stdout)).denoDir;
}

/**
 * Downloads pinned reference servers into Deno's npm cache. A sandboxed stdio
 * upstream runs with `--cached-only` and no network, so on a fresh machine its
 * package must be fetched first, outside the sandbox.
 */
export async function cachePinned(...pkgs: string[]): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["cache", "--no-lock", "--quiet", ...pkgs.map(pinned)],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`deno cache ${pkgs.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** A free TCP port on loopback (bound and released). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** A running HTTP upstream; `await using` stops it when the scope ends. */
export interface HttpUpstream extends AsyncDisposable {
  readonly port: number;
  readonly url: string;
  readonly process: Deno.ChildProcess;
  stop(): Promise<void>;
}

/** The deno arguments that run a pinned reference server (`--no-lock`: its own tree, not ours). */
export function serverArgs(pkg: string, ...args: string[]): string[] {
  return ["run", "-A", "--no-lock", "--quiet", pinned(pkg), ...args];
}

/**
 * Starts `@modelcontextprotocol/server-everything` in `streamableHttp` or
 * `sse` mode (its CLI's first argument; PORT picks the port) and waits until
 * it listens.
 */
export async function startEverything(
  mode: "streamableHttp" | "sse",
  port = freePort(),
): Promise<HttpUpstream> {
  const process = new Deno.Command(Deno.execPath(), {
    args: serverArgs("@modelcontextprotocol/server-everything", mode),
    env: { PORT: String(port) },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = process.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  const deadline = Date.now() + 120_000;
  while (!/listening on port|running on port/i.test(seen)) {
    if (Date.now() > deadline) throw new Error(`server-everything ${mode} did not start: ${seen}`);
    const { value, done } = await reader.read();
    if (done) throw new Error(`server-everything ${mode} exited: ${seen}`);
    seen += value;
  }
  // Keep draining stderr so the child never blocks on a full pipe.
  (async () => {
    try {
      while (!(await reader.read()).done) { /* drain */ }
    } catch { /* closed */ }
  })();
  const path = mode === "sse" ? "/sse" : "/mcp";
  async function stop() {
    try {
      process.kill("SIGKILL");
    } catch { /* already gone */ }
    await process.status;
  }
  return {
    port,
    url: `http://127.0.0.1:${port}${path}`,
    process,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/**
 * Runs `fn` against Warden (started with `options`) gatewaying one server-everything over
 * Streamable HTTP — as `ev` unless `upstreams` names the upstreams for its URL — and stops both
 * afterwards, whatever happens.
 */
export async function withEverything<T>(
  options: StartOptions,
  fn: (server: TestServer, upstream: HttpUpstream) => Promise<T>,
  upstreams: (url: string) => UpstreamConfig[] = (url) =>
    parseUpstreams(JSON.stringify([{ name: "ev", transport: "streamable-http", url }])),
): Promise<T> {
  await using upstream = await startEverything("streamableHttp");
  await using server = await startServer({ ...options, upstreams: upstreams(upstream.url) });
  return await fn(server, upstream);
}

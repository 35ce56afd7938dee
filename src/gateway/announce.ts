/**
 * Announce: this Warden registers itself with another gateway
 * (`WARDEN_REGISTER_URL`, POST `<base>/api/servers/register` with
 * `WARDEN_REGISTER_TOKEN`) — the utilities container's manifest — once it
 * listens, retries with backoff until the other side accepts it, checks
 * periodically that the other side still knows it (re-registering when it
 * forgot, e.g. after a restart on a `:memory:` KV), and deregisters on
 * shutdown. Only Warden's own tools are announced, so two Wardens fronting
 * each other do not re-expose each other's re-exposures in a loop.
 *
 * @module
 */
import type { Logger } from "../lib/mod.ts";

/** The registration manifest (`POST /api/servers/register`). */
export interface AnnounceManifest {
  readonly server_name: string;
  readonly endpoint: string;
  readonly transport: "streamable-http";
  readonly version: string;
  readonly health_check: string;
  readonly tools?: readonly string[];
  /**
   * Headers the other gateway sends when it calls this Warden (its bearer
   * token); the other gateway keeps them in its encrypted credential store.
   */
  readonly headers?: Readonly<Record<string, string>>;
}

/** What the announcer needs. */
export interface AnnouncerOptions {
  /** The other gateway's base URL (no trailing slash). */
  readonly registerUrl: string;
  readonly token: string;
  /** Built when sent, so the tool list is current. */
  readonly manifest: () => AnnounceManifest;
  readonly logger: Logger;
  /** How often the other side is asked whether it still knows us. Default 30 s. */
  readonly checkIntervalMs?: number;
  /** First retry delay and its cap (doubled per failure, ±25 % jitter). Default 500 ms, 30 s. */
  readonly retry?: { readonly initialMs?: number; readonly maxMs?: number };
  /** Per-request timeout. Default 10 s (the other side connects back and lists our tools). */
  readonly timeoutMs?: number;
}

/** What the announcer reports. */
export interface AnnounceState {
  readonly registered: boolean;
  readonly attempts: number;
  readonly last_error?: string;
  /** Round trip of the last accepted registration. */
  readonly latency_ms?: number;
}

/** A running announcer. */
export interface Announcer {
  start(): void;
  state(): AnnounceState;
  /** Stops retrying and checking, then deregisters (DELETE) within the timeout. */
  stop(): Promise<void>;
}

const MAX_BODY_SHOWN = 300;

async function bodyText(res: Response): Promise<string> {
  try {
    return (await res.text()).slice(0, MAX_BODY_SHOWN);
  } catch {
    return "";
  }
}

/**
 * Creates an announcer; `start()` once the server listens.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createAnnouncer } from "./announce.ts";
 * import { silentLogger } from "../lib/mod.ts";
 * const announcer = createAnnouncer({
 *   registerUrl: "http://10.0.0.2:8000",
 *   token: "the other gateway's registration token",
 *   manifest: () => ({
 *     server_name: "warden",
 *     endpoint: "http://10.0.0.3:8000/mcp",
 *     transport: "streamable-http",
 *     version: "0.1.0",
 *     health_check: "http://10.0.0.3:8000/health",
 *   }),
 *   logger: silentLogger,
 * });
 * // Nothing is sent until start() (once the server listens): then it registers and keeps checking.
 * assert.deepEqual(announcer.state(), { registered: false, attempts: 0 });
 * // On shutdown: stops the loop and deregisters what it registered (here, nothing).
 * await announcer.stop();
 * assert.equal(announcer.state().registered, false);
 * ```
 */
// Kept whole: the announcer's closures share one registration loop's state (registered, attempts,
// last error, latency).
export function createAnnouncer(options: AnnouncerOptions): Announcer {
  const log = options.logger;
  const base = options.registerUrl.replace(/\/+$/, "");
  const checkEvery = options.checkIntervalMs ?? 30_000;
  const initialMs = options.retry?.initialMs ?? 500;
  const maxMs = options.retry?.maxMs ?? 30_000;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const auth = { authorization: `Bearer ${options.token}` };
  const stopping = new AbortController();
  let registered = false;
  /**
   * A registration was sent and not answered with a refusal: the other side may list us even
   * though no answer was read (a stop aborts it mid-flight), so a stop deregisters then too.
   */
  let maybeRegistered = false;
  let attempts = 0;
  let lastError: string | undefined;
  let latencyMs: number | undefined;
  let loop: Promise<void> | undefined;

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (stopping.signal.aborted) return resolve();
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        stopping.signal.removeEventListener("abort", done);
        resolve();
      }
      stopping.signal.addEventListener("abort", done);
    });
  }

  function request(path: string, init: RequestInit): Promise<Response> {
    return fetch(`${base}${path}`, {
      ...init,
      redirect: "manual",
      signal: AbortSignal.any([stopping.signal, AbortSignal.timeout(timeoutMs)]),
    });
  }

  /** One registration attempt; true when the other side accepted it. */
  async function register(): Promise<boolean> {
    const manifest = options.manifest();
    attempts++;
    const started = performance.now();
    let res: Response;
    maybeRegistered = true;
    try {
      res = await request("/api/servers/register", {
        method: "POST",
        headers: { ...auth, "content-type": "application/json" },
        body: JSON.stringify(manifest),
      });
    } catch (e) {
      if (stopping.signal.aborted) return false;
      lastError = `cannot reach ${base}: ${(e as Error).message}`.slice(0, MAX_BODY_SHOWN);
      log.warn("announce: registration failed; retrying", { url: base, error: lastError });
      return false;
    }
    if (res.status === 201 || res.status === 200) {
      await res.body?.cancel();
      latencyMs = Math.round((performance.now() - started) * 10) / 10;
      registered = true;
      lastError = undefined;
      log.always("announce: registered with the other gateway", {
        url: base,
        server_name: manifest.server_name,
        endpoint: manifest.endpoint,
        tools: manifest.tools?.length ?? null,
        latency_ms: latencyMs,
      });
      return true;
    }
    const text = await bodyText(res);
    maybeRegistered = false;
    lastError = `${base} answered ${res.status}: ${text}`;
    const hint = res.status === 401
      ? " (WARDEN_REGISTER_TOKEN is not the other gateway's --registration-token)"
      : res.status === 403
      ? " (the other gateway has runtime registration disabled or refuses this token)"
      : res.status === 400
      ? " (the other gateway refused the manifest; if it names a private or loopback endpoint, " +
        "its --registry-allow-hosts must name this host)"
      : "";
    // A refusal is an operator's matter: logged as an error, retried at the slowest pace.
    const fields = { url: base, status: res.status, error: text };
    if (res.status >= 400 && res.status < 500 && res.status !== 429) {
      log.error(`announce: registration refused${hint}; retrying`, fields);
    } else {
      log.warn("announce: registration failed; retrying", fields);
    }
    return false;
  }

  /** Whether the other side still lists us; undefined when it cannot tell. */
  async function known(name: string): Promise<boolean | undefined> {
    try {
      const res = await request(`/api/servers/${encodeURIComponent(name)}`, {
        method: "GET",
        headers: auth,
      });
      await res.body?.cancel();
      if (res.status === 404) return false;
      if (res.ok) return true;
      log.debug("announce: cannot check the registration", { url: base, status: res.status });
      return undefined;
    } catch (e) {
      if (!stopping.signal.aborted) {
        log.debug("announce: other gateway unreachable", { url: base, error: e });
      }
      return undefined;
    }
  }

  async function run(): Promise<void> {
    let delay = initialMs;
    while (!stopping.signal.aborted) {
      if (!registered) {
        if (await register()) {
          delay = initialMs;
        } else {
          const refused = lastError !== undefined && / answered 4(?!29)\d\d/.test(lastError);
          const wait = refused ? maxMs : delay;
          await sleep(wait * (0.75 + Math.random() * 0.5));
          delay = Math.min(delay * 2, maxMs);
          continue;
        }
      }
      await sleep(checkEvery);
      if (stopping.signal.aborted) break;
      if (await known(options.manifest().server_name) === false) {
        registered = false;
        log.warn("announce: the other gateway no longer lists this Warden; registering again", {
          url: base,
        });
      }
    }
  }

  return {
    start() {
      if (loop) return;
      loop = run().catch((e) => log.error("announce loop failed", { error: e }));
    },
    state: () => ({
      registered,
      attempts,
      ...(lastError !== undefined ? { last_error: lastError } : {}),
      ...(latencyMs !== undefined ? { latency_ms: latencyMs } : {}),
    }),
    async stop() {
      stopping.abort();
      await loop;
      if (!registered && !maybeRegistered) return;
      const name = options.manifest().server_name;
      try {
        const res = await fetch(`${base}/api/servers/${encodeURIComponent(name)}`, {
          method: "DELETE",
          headers: auth,
          redirect: "manual",
          signal: AbortSignal.timeout(Math.min(timeoutMs, 3_000)),
        });
        await res.body?.cancel();
        registered = false;
        maybeRegistered = false;
        if (res.ok || res.status === 404) {
          log.info("announce: deregistered from the other gateway", { url: base });
        } else {
          log.warn("announce: deregistration refused", { url: base, status: res.status });
        }
      } catch (e) {
        log.warn("announce: cannot deregister", { url: base, error: e });
      }
    },
  };
}

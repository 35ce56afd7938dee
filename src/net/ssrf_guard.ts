/**
 * The SSRF guard every outbound fetch of a caller-chosen URL passes
 * (fetch_content, OAuth client metadata documents; later the gateway's
 * registrations): only `http:` and `https:` URLs without credentials; the host
 * is resolved (IP literals are taken as they are) and the URL is refused when
 * ANY address it resolves to is private, loopback, link-local, multicast or
 * otherwise not a public unicast address — unless the host is allowlisted.
 * A caller that follows redirects checks every hop with the same guard.
 *
 * Known limitation (time of check to time of use): the addresses checked here
 * come from our own DNS lookup, while `fetch` performs its own lookup when it
 * connects. A hostile DNS server can answer the first lookup with a public
 * address and the second with 127.0.0.1 (DNS rebinding, TTL 0). Closing the
 * gap needs the connection pinned to the checked address, and `fetch` offers
 * no hook for that (connecting to the IP with a `Host` header breaks TLS
 * certificate checks and SNI for https). So the guard stops plain mistakes
 * and the common SSRF payloads (literal private IPs, names that resolve
 * inside, redirects inward), not a determined attacker who controls a DNS
 * zone; deployments that must hold against that need an egress firewall.
 *
 * @module
 */
import { isPrivateAddress } from "./ip_ranges.ts";

/**
 * The guard refused a URL: wrong scheme, credentials, a private address, an
 * invalid redirect or too many of them. Retrying will not help; allowlisting
 * the host (for private addresses) will.
 */
export class FetchRefusedError extends Error {
  override name = "FetchRefusedError";
  /** The URL refused (the redirect target when a hop was refused). */
  readonly url: string;

  constructor(url: string, message: string) {
    super(message);
    this.url = url;
  }
}

/** The fetch was allowed but failed: DNS, connection, TLS, or the time limit. */
export class FetchFailedError extends Error {
  override name = "FetchFailedError";
  /** The URL being fetched when it failed. */
  readonly url: string;

  constructor(url: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.url = url;
  }
}

function article(phrase: string): string {
  return /^(?:[aeio]|IPv4|unspecified)/i.test(phrase) ? "an" : "a";
}

/** `host` as the URL parser spells it, so allowlist entries compare exactly. */
function normalizeHost(host: string): string {
  let text = host.trim().toLowerCase();
  if (text.includes(":") && !text.startsWith("[")) text = `[${text}]`;
  try {
    return new URL(`http://${text}/`).hostname;
  } catch {
    return text;
  }
}

function isLocalhostName(host: string): boolean {
  // RFC 6761: "localhost" and every name under it are loopback, whatever DNS says.
  const name = host.endsWith(".") ? host.slice(0, -1) : host;
  return name === "localhost" || name.endsWith(".localhost");
}

function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** The default resolver: A and AAAA records through `Deno.resolveDns`. */
export async function resolveWithDeno(
  host: string,
  options: { signal: AbortSignal },
): Promise<string[]> {
  // One record type failing (no AAAA, say) is normal; both failing is not.
  const [a, aaaa] = await Promise.allSettled([
    Deno.resolveDns(host, "A", { signal: options.signal }),
    Deno.resolveDns(host, "AAAA", { signal: options.signal }),
  ]);
  if (a.status === "rejected" && aaaa.status === "rejected") throw a.reason;
  return [
    ...(a.status === "fulfilled" ? a.value : []),
    ...(aaaa.status === "fulfilled" ? aaaa.value : []),
  ];
}

/** DNS lookup returning every address of `host`. */
export type Resolver = (host: string, options: { signal: AbortSignal }) => Promise<string[]>;

/** What {@link checkUrl} checks against: the allowlist, the resolver and the caller's signal. */
export interface UrlGuard {
  /** Hosts exempt from the private-address refusal, normalised by {@link createUrlGuard}. */
  readonly allowed: ReadonlySet<string>;
  readonly resolve: Resolver;
  readonly signal: AbortSignal;
}

/** Options of {@link createUrlGuard}. */
export interface UrlGuardOptions {
  /** Host names or IP literals exempt from the private-address refusal (exact, case-insensitive). */
  readonly allowHosts: readonly string[];
  /** DNS lookup; default `Deno.resolveDns` A + AAAA. */
  readonly resolve?: Resolver;
  /** Aborts a lookup in progress; its reason is thrown unchanged. */
  readonly signal: AbortSignal;
}

/** A guard for one operation (its allowlist normalised as the URL parser spells hosts). */
export function createUrlGuard(options: UrlGuardOptions): UrlGuard {
  return {
    allowed: new Set(options.allowHosts.map(normalizeHost)),
    resolve: options.resolve ?? resolveWithDeno,
    signal: options.signal,
  };
}

/**
 * Refuses `url` unless it is `http:`/`https:` without credentials and every
 * address its host resolves to is public (or the host is allowlisted):
 * throws `FetchRefusedError`, or `FetchFailedError` when the host cannot be
 * resolved. `via` names the URL that redirected here, for the message.
 *
 * @example
 * ```ts
 * import { checkUrl, createUrlGuard } from "./ssrf_guard.ts";
 * const guard = createUrlGuard({ allowHosts: [], signal: AbortSignal.timeout(1000) });
 * await checkUrl(new URL("http://127.0.0.1/"), guard, null).catch((e) => e.message);
 * // "Refused: 127.0.0.1 is a loopback address (host \"127.0.0.1\"); add the host to …"
 * ```
 */
export async function checkUrl(url: URL, context: UrlGuard, via: string | null): Promise<void> {
  const hop = via === null ? "" : ` (redirected from ${via})`;
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new FetchRefusedError(
      url.href,
      `Refused: ${url.protocol} URLs are not fetched, only http: and https:${hop}`,
    );
  }
  if (url.username !== "" || url.password !== "") {
    throw new FetchRefusedError(
      url.href,
      `Refused: URLs with credentials are not fetched${hop}`,
    );
  }
  const host = url.hostname;
  if (context.allowed.has(host)) return;

  let addresses: string[];
  if (host.startsWith("[")) addresses = [host.slice(1, -1)];
  else if (/^\d+\.\d+\.\d+\.\d+$/.test(host)) addresses = [host];
  else if (isLocalhostName(host)) addresses = ["127.0.0.1", "::1"];
  else {
    try {
      addresses = await abortable(
        context.resolve(host, { signal: context.signal }),
        context.signal,
      );
    } catch (error) {
      if (context.signal.aborted) throw error;
      const detail = error instanceof Error ? error.message : String(error);
      throw new FetchFailedError(
        url.href,
        `Cannot fetch ${url.href}: cannot resolve host "${host}": ${detail}`,
        { cause: error },
      );
    }
    if (addresses.length === 0) {
      throw new FetchFailedError(
        url.href,
        `Cannot fetch ${url.href}: host "${host}" has no addresses`,
      );
    }
  }
  for (const address of addresses) {
    const reason = isPrivateAddress(address);
    if (reason !== null) {
      throw new FetchRefusedError(
        url.href,
        `Refused: ${address} is ${article(reason)} ${reason} (host "${host}")${hop}; ` +
          `add the host to policy fetch.allow_hosts to allow it`,
      );
    }
  }
}

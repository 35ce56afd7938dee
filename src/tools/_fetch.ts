/**
 * The domain core of `fetch_content`: an HTTP(S) GET guarded against
 * server-side request forgery, with byte, character, time and redirect
 * limits, HTML reduced to text, and the SHA-256 of the body as evidence id.
 *
 * The guard: only `http:` and `https:` URLs without credentials; the host is
 * resolved (IP literals are taken as they are) and the request is refused
 * when ANY address it resolves to is private, loopback, link-local, multicast
 * or otherwise not a public unicast address — unless the host is named in
 * `allowHosts`. Redirects are followed by hand so that every hop passes the
 * same guard; `fetch` itself never follows one.
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

import { isPrivateAddress } from "../net/mod.ts";
import { sha256, toHex } from "../vault/mod.ts";

export { isPrivateAddress };

/** What `fetchEvidence` needs to know; every limit is mandatory except the redirect cap. */
export interface FetchOptions {
  /** Host names or IP literals exempt from the private-address refusal (exact, case-insensitive). */
  readonly allowHosts: readonly string[];
  /** Most body bytes read; beyond it the body is cancelled and the result marked truncated. */
  readonly maxBytes: number;
  /** Time limit for the whole operation: DNS, every redirect hop and the body. */
  readonly timeoutMs: number;
  /** Most characters of text returned; longer text is cut and marked truncated. */
  readonly maxChars: number;
  /** Most redirects followed before refusing; default 5. */
  readonly maxRedirects?: number;
  /** DNS lookup returning every address of `host`; default `Deno.resolveDns` A + AAAA. */
  readonly resolve?: (host: string, options: { signal: AbortSignal }) => Promise<string[]>;
  /** The `fetch` to use; default `globalThis.fetch`. */
  readonly fetch?: typeof fetch;
  /** Aborts the operation; the signal's reason is thrown unchanged. */
  readonly signal?: AbortSignal;
}

/** A fetched document: what was asked, where it ended, and its text. */
export interface FetchedEvidence {
  /** The URL as requested (normalised by the URL parser). */
  readonly url: string;
  /** The URL whose response is returned, after redirects. */
  readonly finalUrl: string;
  readonly status: number;
  /** The `Content-Type` header as sent, or "" when absent. */
  readonly contentType: string;
  /** The HTML `<title>`, when the document is HTML and has one. */
  readonly title?: string;
  /** Extracted text: HTML reduced to text, text and JSON as sent, binary as "". */
  readonly text: string;
  /** Body bytes read (after content decoding), at most `maxBytes`. */
  readonly bytes: number;
  /** True when the body hit `maxBytes` or the text hit `maxChars`. */
  readonly truncated: boolean;
  /** Hex SHA-256 of the body bytes read: the evidence id. */
  readonly sha256: string;
  /** Every redirect target followed, in order. */
  readonly redirects: string[];
  /** When the fetch started (ISO 8601). */
  readonly fetchedAt: string;
  /** Why `text` is empty or partial, when it is. */
  readonly note?: string;
}

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

const DEFAULT_MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const REQUEST_HEADERS = {
  "user-agent": "Warden-fetch/1",
  "accept": "text/html, text/plain, application/json;q=0.9, */*;q=0.5",
};

// ---------------------------------------------------------------------------
// The guard

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

async function resolveWithDeno(host: string, options: { signal: AbortSignal }): Promise<string[]> {
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

interface GuardContext {
  readonly allowed: ReadonlySet<string>;
  readonly resolve: NonNullable<FetchOptions["resolve"]>;
  readonly signal: AbortSignal;
}

async function checkTarget(url: URL, context: GuardContext, via: string | null): Promise<void> {
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

// ---------------------------------------------------------------------------
// Body handling

async function readBody(
  response: Response,
  maxBytes: number,
): Promise<{ body: Uint8Array; truncated: boolean }> {
  if (response.body === null) return { body: new Uint8Array(), truncated: false };
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  let truncated = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const room = maxBytes - total;
      if (value.byteLength > room) {
        chunks.push(value.subarray(0, room));
        total += room;
        truncated = true;
        break;
      }
      chunks.push(value);
      total += value.byteLength;
    }
  } catch (error) {
    await reader.cancel().catch(() => {});
    throw error;
  }
  // Cancelling rather than draining: the rest may be endless.
  if (truncated) await reader.cancel().catch(() => {});
  const body = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return { body, truncated };
}

function mediaType(contentType: string): string {
  return contentType.split(";", 1)[0].trim().toLowerCase();
}

function decoderFor(contentType: string): TextDecoder {
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(contentType)?.[1];
  if (charset !== undefined) {
    try {
      return new TextDecoder(charset);
    } catch {
      // An unknown label falls back to UTF-8 below.
    }
  }
  return new TextDecoder("utf-8");
}

const TEXT_TYPES = new Set([
  "application/json",
  "application/ld+json",
  "application/xml",
  "application/javascript",
  "application/ecmascript",
  "application/x-javascript",
  "application/x-ndjson",
  "application/yaml",
  "application/x-yaml",
  "application/toml",
  "application/x-www-form-urlencoded",
]);

const BINARY_PREFIXES = ["image/", "audio/", "video/", "font/", "model/"];

type BodyKind = "html" | "text" | "binary";

function looksLikeHtml(text: string): boolean {
  const start = text.slice(0, 512).trimStart().toLowerCase();
  return start.startsWith("<!doctype html") || start.startsWith("<html");
}

function bodyKind(type: string, body: Uint8Array): BodyKind {
  if (type === "text/html" || type === "application/xhtml+xml") return "html";
  const declaredText = type.startsWith("text/") || TEXT_TYPES.has(type) ||
    type.endsWith("+json") || type.endsWith("+xml");
  if (declaredText) return "text";
  if (type !== "") {
    if (BINARY_PREFIXES.some((prefix) => type.startsWith(prefix))) return "binary";
    // Any other declared application/* type (octet-stream, pdf, zip, wasm…)
    // is data, not prose.
    if (type.startsWith("application/")) return "binary";
  }
  // No usable type: a NUL byte near the start is the classic binary tell.
  return body.subarray(0, 1024).includes(0) ? "binary" : "text";
}

function cutText(text: string, maxChars: number): { text: string; cut: boolean } {
  if (text.length <= maxChars) return { text, cut: false };
  let end = maxChars;
  // Never leave half a surrogate pair at the end.
  const last = text.charCodeAt(end - 1);
  if (end > 0 && last >= 0xd800 && last <= 0xdbff) end -= 1;
  return { text: text.slice(0, end), cut: true };
}

// ---------------------------------------------------------------------------
// HTML to text

const NAMED_ENTITIES: Readonly<Record<string, string>> = {
  amp: "&",
  lt: "<",
  gt: ">",
  quot: '"',
  apos: "'",
  nbsp: "\u00a0",
  copy: "©",
  reg: "®",
  trade: "™",
  hellip: "…",
  mdash: "—",
  ndash: "–",
  lsquo: "‘",
  rsquo: "’",
  ldquo: "“",
  rdquo: "”",
  laquo: "«",
  raquo: "»",
  bull: "•",
  middot: "·",
  euro: "€",
  pound: "£",
  cent: "¢",
  yen: "¥",
  sect: "§",
  deg: "°",
  times: "×",
  divide: "÷",
};

const ENTITY = /&(?:#([0-9]{1,8})|#[xX]([0-9a-fA-F]{1,8})|([a-zA-Z][a-zA-Z0-9]{1,31}));/g;

function decodeEntities(text: string): string {
  if (!text.includes("&")) return text;
  // One pass, so "&amp;lt;" becomes "&lt;" and not "<".
  return text.replace(ENTITY, (whole, dec?: string, hex?: string, name?: string) => {
    if (name !== undefined) return NAMED_ENTITIES[name] ?? whole;
    const code = dec !== undefined ? parseInt(dec, 10) : parseInt(hex!, 16);
    const valid = code > 0 && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff);
    return valid ? String.fromCodePoint(code) : "\ufffd";
  });
}

/** Elements whose content is never text for a reader. */
const SKIPPED_ELEMENTS = new Set([
  "script",
  "style",
  "noscript",
  "template",
  "svg",
  "math",
  "iframe",
  "object",
]);

/** Elements that may live in <head>; any other start tag implies the body has begun. */
const HEAD_ELEMENTS = new Set([
  "base",
  "link",
  "meta",
  "script",
  "style",
  "noscript",
  "template",
  "title",
]);

const BLOCK_ELEMENTS = new Set([
  "address",
  "article",
  "aside",
  "blockquote",
  "body",
  "br",
  "caption",
  "dd",
  "details",
  "dialog",
  "div",
  "dl",
  "dt",
  "fieldset",
  "figcaption",
  "figure",
  "footer",
  "form",
  "h1",
  "h2",
  "h3",
  "h4",
  "h5",
  "h6",
  "header",
  "hgroup",
  "hr",
  "html",
  "li",
  "main",
  "nav",
  "ol",
  "p",
  "pre",
  "section",
  "summary",
  "table",
  "tbody",
  "tfoot",
  "thead",
  "tr",
  "ul",
]);

/** Cells separate words, not lines. */
const CELL_ELEMENTS = new Set(["td", "th"]);

const TAG_NAME = /<(\/?)([a-zA-Z][a-zA-Z0-9-]*)/y;

/** Index of the `>` closing the tag whose attributes start at `from`, or -1. */
function findTagEnd(html: string, from: number): number {
  let i = from;
  while (i < html.length) {
    const c = html[i];
    if (c === ">") return i;
    if (c === "=") {
      i += 1;
      while (i < html.length && /\s/.test(html[i])) i += 1;
      const quote = html[i];
      if (quote === '"' || quote === "'") {
        const close = html.indexOf(quote, i + 1);
        if (close < 0) return -1;
        i = close + 1;
      }
      continue;
    }
    i += 1;
  }
  return -1;
}

/** Where the raw-text element `name` ends: [content end, index after its end tag]. */
function findEndTag(html: string, name: string, from: number): [number, number] {
  const pattern = new RegExp(`</${name}[\\s/>]`, "gi");
  pattern.lastIndex = from;
  const match = pattern.exec(html);
  if (match === null) return [html.length, html.length];
  const close = html.indexOf(">", match.index);
  return [match.index, close < 0 ? html.length : close + 1];
}

/**
 * Reduces an HTML document to readable text in one linear pass (no regex
 * backtracking over the document): script, style, noscript, template, svg and
 * the rest of `<head>` are dropped except `<title>`, which is returned apart;
 * block elements become line breaks; other tags vanish; entities (the common
 * named ones and all numeric ones) are decoded; whitespace runs collapse to
 * one space, blank lines are removed and lines are trimmed.
 *
 * @example
 * ```ts
 * import { htmlToText } from "./_fetch.ts";
 * htmlToText("<title>T</title><p>a &amp; b</p><p>c</p>"); // { title: "T", text: "a & b\nc" }
 * ```
 */
export function htmlToText(html: string): { title?: string; text: string } {
  const out: string[] = [];
  let title: string | undefined;
  let inHead = false;
  let i = 0;
  const emit = (raw: string) => {
    if (!inHead && raw !== "") out.push(decodeEntities(raw).replace(/\s+/g, " "));
  };

  while (i < html.length) {
    const lt = html.indexOf("<", i);
    if (lt < 0) {
      emit(html.slice(i));
      break;
    }
    emit(html.slice(i, lt));
    if (html.startsWith("<!--", lt)) {
      const end = html.indexOf("-->", lt + 4);
      i = end < 0 ? html.length : end + 3;
      continue;
    }
    const next = html[lt + 1];
    if (next === "!" || next === "?") {
      // Doctype, CDATA or a processing instruction: nothing to read.
      const end = html.indexOf(">", lt);
      i = end < 0 ? html.length : end + 1;
      continue;
    }
    TAG_NAME.lastIndex = lt;
    const tag = TAG_NAME.exec(html);
    if (tag === null) {
      emit("<"); // a bare "<" in text, as in "a < b"
      i = lt + 1;
      continue;
    }
    const closing = tag[1] === "/";
    const name = tag[2].toLowerCase();
    const end = findTagEnd(html, TAG_NAME.lastIndex);
    if (end < 0) break; // an unterminated tag at the end is dropped, as browsers do
    i = end + 1;

    if (!closing && (name === "title" || SKIPPED_ELEMENTS.has(name))) {
      const [contentEnd, after] = findEndTag(html, name, i);
      if (name === "title" && title === undefined) {
        title = decodeEntities(html.slice(i, contentEnd)).replace(/\s+/g, " ").trim();
      }
      i = after;
      continue;
    }
    if (name === "head") {
      inHead = !closing;
      continue;
    }
    if (inHead && !closing && !HEAD_ELEMENTS.has(name)) inHead = false;
    if (BLOCK_ELEMENTS.has(name)) out.push("\n");
    else if (CELL_ELEMENTS.has(name)) out.push(" ");
  }

  const text = out.join("").split("\n").map((line) => line.replace(/ {2,}/g, " ").trim())
    .filter((line) => line !== "").join("\n");
  return title === undefined || title === "" ? { text } : { title, text };
}

// ---------------------------------------------------------------------------
// The fetch

function checkLimit(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`${name} must be an integer >= ${min}, got ${value}`);
  }
}

/**
 * Fetches `url` under the SSRF guard and limits described in the module
 * documentation and returns the evidence: status, type, title and text, the
 * SHA-256 of the body bytes read, and every redirect followed. Throws
 * `FetchRefusedError` when the guard refuses the URL or any redirect hop,
 * `FetchFailedError` on DNS, network or TLS failure or when `timeoutMs` runs
 * out, and the abort reason of `options.signal` when the caller aborts.
 *
 * Bodies are read as sent after content decoding (`fetch` undoes gzip and
 * brotli), so `maxBytes` also bounds a decompression bomb.
 *
 * @example
 * ```ts
 * import { fetchEvidence } from "./_fetch.ts";
 * const page = await fetchEvidence("https://example.org/", {
 *   allowHosts: [],
 *   maxBytes: 1_048_576,
 *   timeoutMs: 10_000,
 *   maxChars: 20_000,
 * });
 * console.log(page.sha256, page.title);
 * ```
 */
export async function fetchEvidence(url: string, options: FetchOptions): Promise<FetchedEvidence> {
  checkLimit("maxBytes", options.maxBytes, 1);
  checkLimit("timeoutMs", options.timeoutMs, 1);
  checkLimit("maxChars", options.maxChars, 0);
  const maxRedirects = options.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
  checkLimit("maxRedirects", maxRedirects, 0);

  let current: URL;
  try {
    current = new URL(url);
  } catch {
    throw new FetchRefusedError(url, `Refused: ${JSON.stringify(url)} is not a valid URL`);
  }

  const fetchedAt = new Date().toISOString();
  const timeout = AbortSignal.timeout(options.timeoutMs);
  const signal = options.signal === undefined
    ? timeout
    : AbortSignal.any([timeout, options.signal]);
  const context: GuardContext = {
    allowed: new Set(options.allowHosts.map(normalizeHost)),
    resolve: options.resolve ?? resolveWithDeno,
    signal,
  };
  const doFetch = options.fetch ?? globalThis.fetch;
  const redirects: string[] = [];
  const requested = current.href;

  try {
    let via: string | null = null;
    for (;;) {
      await checkTarget(current, context, via);
      const response = await doFetch(current, {
        method: "GET",
        headers: REQUEST_HEADERS,
        redirect: "manual",
        signal,
      });
      const location = response.headers.get("location");
      if (REDIRECT_STATUSES.has(response.status) && location !== null) {
        await response.body?.cancel();
        let next: URL;
        try {
          next = new URL(location, current);
        } catch {
          throw new FetchRefusedError(
            current.href,
            `Refused: ${current.href} redirects to an invalid URL ${JSON.stringify(location)}`,
          );
        }
        if (redirects.length >= maxRedirects) {
          throw new FetchRefusedError(
            next.href,
            `Refused: more than ${maxRedirects} redirects (the next one from ${current.href} ` +
              `to ${next.href})`,
          );
        }
        redirects.push(next.href);
        via = current.href;
        current = next;
        continue;
      }

      const { body, truncated: bodyTruncated } = await readBody(response, options.maxBytes);
      const contentType = response.headers.get("content-type") ?? "";
      const type = mediaType(contentType);
      let kind = bodyKind(type, body);
      let title: string | undefined;
      let text = "";
      const notes: string[] = [];
      if (kind === "binary") {
        notes.push(`binary content (${type || "unknown type"}) is not converted to text`);
      } else {
        text = decoderFor(contentType).decode(body);
        if (kind === "text" && !type.includes("json") && looksLikeHtml(text)) kind = "html";
        if (kind === "html") ({ title, text } = htmlToText(text));
      }
      const cut = cutText(text, options.maxChars);
      if (bodyTruncated) notes.push(`body cut at maxBytes (${options.maxBytes} bytes)`);
      if (cut.cut) notes.push(`text cut at maxChars (${options.maxChars} characters)`);

      return {
        url: requested,
        finalUrl: current.href,
        status: response.status,
        contentType,
        ...(title === undefined ? {} : { title }),
        text: cut.text,
        bytes: body.byteLength,
        truncated: bodyTruncated || cut.cut,
        sha256: toHex(sha256(body)),
        redirects,
        fetchedAt,
        ...(notes.length === 0 ? {} : { note: notes.join("; ") }),
      };
    }
  } catch (error) {
    if (error instanceof FetchRefusedError || error instanceof FetchFailedError) throw error;
    if (timeout.aborted) {
      throw new FetchFailedError(
        current.href,
        `Cannot fetch ${current.href}: timed out after ${options.timeoutMs} ms`,
        { cause: error },
      );
    }
    if (options.signal?.aborted) throw options.signal.reason;
    const detail = error instanceof Error ? error.message : String(error);
    throw new FetchFailedError(current.href, `Cannot fetch ${current.href}: ${detail}`, {
      cause: error,
    });
  }
}

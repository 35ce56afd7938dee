/**
 * The domain core of `fetch_content`: an HTTP(S) GET under the SSRF guard of
 * src/net/ (every redirect hop checked; `fetch` itself never follows one),
 * with byte, character, time and redirect limits, HTML reduced to text, and
 * the SHA-256 of the body as evidence id.
 *
 * @module
 */
import {
  checkUrl,
  createUrlGuard,
  FetchFailedError,
  FetchRefusedError,
  type Resolver,
} from "../net/mod.ts";
import { sha256, toHex } from "../lib/mod.ts";
import { htmlToText } from "./html_text.ts";

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
  readonly resolve?: Resolver;
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

const DEFAULT_MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const REQUEST_HEADERS = {
  "user-agent": "Warden-fetch/1",
  "accept": "text/html, text/plain, application/json;q=0.9, */*;q=0.5",
};

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
// The fetch

function checkLimit(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`${name} must be an integer >= ${min}, got ${value}`);
  }
}

/**
 * Fetches `url` under the SSRF guard (`checkUrl`, every hop) and the limits
 * above and returns the evidence: status, type, title and text, the
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
 * import assert from "node:assert/strict";
 * import { fetchEvidence } from "./fetch.ts";
 * import { FetchRefusedError } from "../net/mod.ts";
 * const options = { allowHosts: [], maxBytes: 1_048_576, timeoutMs: 10_000, maxChars: 20_000 };
 * // A public page resolves to { url, status, sha256, title, text, … }; a loopback or
 * // private address is refused by the guard before any connection is made.
 * await assert.rejects(fetchEvidence("http://127.0.0.1:8000/admin", options), FetchRefusedError);
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
  const guard = createUrlGuard({
    allowHosts: options.allowHosts,
    ...(options.resolve !== undefined ? { resolve: options.resolve } : {}),
    signal,
  });
  const doFetch = options.fetch ?? globalThis.fetch;
  const redirects: string[] = [];
  const requested = current.href;

  try {
    let via: string | null = null;
    for (;;) {
      await checkUrl(current, guard, via);
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

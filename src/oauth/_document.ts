/**
 * Reading a small JSON document another party publishes at a URL (an OpenID provider's metadata
 * and keys, a client's metadata document): through the SSRF guard of fetch_content (a private
 * address only for an allowlisted host), no redirects, within a size cap and a deadline.
 */
import { fetchEvidence } from "../evidence/mod.ts";
import { FetchFailedError, FetchRefusedError } from "../net/mod.ts";

/** The errors {@link readJsonDocument} throws, in the caller's own words and class. */
export interface DocumentErrors {
  /** The guard refused the URL or the fetch failed; `why` says how. */
  unreadable(why: string): Error;
  /** It answered another status than 200. */
  status(status: number): Error;
  /** It is over `maxBytes`. */
  tooLarge(): Error;
  /** It is not JSON. */
  notJson(): Error;
}

/**
 * Fetches `url` and parses it as JSON. `allowed` exempts its host from the guard's refusal of
 * private addresses (the caller has checked the host against its allowlist).
 */
export async function readJsonDocument(
  url: string,
  options: {
    readonly allowed: boolean;
    readonly maxBytes: number;
    readonly timeoutMs: number;
    readonly fetch?: typeof fetch;
  },
  errors: DocumentErrors,
): Promise<unknown> {
  let doc;
  try {
    doc = await fetchEvidence(url, {
      allowHosts: options.allowed ? [new URL(url).hostname] : [],
      maxBytes: options.maxBytes + 1,
      maxChars: options.maxBytes + 1,
      timeoutMs: options.timeoutMs,
      maxRedirects: 0,
      ...(options.fetch ? { fetch: options.fetch } : {}),
    });
  } catch (e) {
    throw errors.unreadable(
      e instanceof FetchRefusedError || e instanceof FetchFailedError
        ? e.message
        : "it could not be fetched",
    );
  }
  if (doc.status !== 200) throw errors.status(doc.status);
  if (doc.truncated || doc.bytes > options.maxBytes) throw errors.tooLarge();
  try {
    return JSON.parse(doc.text);
  } catch {
    throw errors.notJson();
  }
}

/**
 * The optional embeddings client of the context index: one call to an
 * OpenAI-compatible `POST {endpoint_url}/embeddings` per document added and
 * per query. The endpoint is the operator's (policy `context.embeddings`,
 * key from `WARDEN_EMBEDDINGS_API_KEY`), yet it still passes the SSRF guard
 * (a private or loopback address only when its host is in
 * `context.embeddings.allow_hosts`); redirects are refused (a key must not
 * follow one), the answer is read within a size cap and a deadline, and every
 * vector is checked: finite numbers, one length for all, at most
 * `MAX_EMBEDDING_DIMENSIONS`.
 *
 * @module
 */
import {
  callDeadline,
  checkUrl,
  createUrlGuard,
  endpointUrl,
  postJson,
  type Resolver,
} from "../../net/mod.ts";

/** Longest vector accepted (16 KiB as Float32, well inside one KV value). */
export const MAX_EMBEDDING_DIMENSIONS = 4096;

/** The policy's `context.embeddings` section. */
export interface EmbeddingSettings {
  /** Base URL of the API (`…/v1`); `/embeddings` is appended. Unset: BM25 only. */
  readonly endpoint_url?: string;
  readonly model: string;
  /** Weight of cosine similarity in the blend, 0-1 (BM25 gets 1 − weight). */
  readonly weight: number;
  readonly timeout_ms: number;
  readonly max_response_bytes: number;
  /** Hosts exempt from the SSRF guard's private-address refusal. */
  readonly allow_hosts: readonly string[];
}

/** An embeddings endpoint ready to use. */
export interface Embedder {
  /** The endpoint's origin (never the key). */
  readonly endpoint: string;
  readonly model: string;
  readonly weight: number;
  /** One unit-length vector per text, in order. */
  embed(texts: readonly string[], signal?: AbortSignal): Promise<Float32Array[]>;
}

/** The endpoint failed, was refused, timed out or answered something that is not embeddings. */
export class EmbeddingError extends Error {
  override name = "EmbeddingError";
}

/**
 * Opens the embeddings client, or says why there is none (the index then
 * ranks by BM25 alone and says so).
 *
 * @example
 * ```ts
 * import { openEmbeddings } from "./embeddings.ts";
 * const e = openEmbeddings({ settings: { model: "m", weight: 0.5, timeout_ms: 1000,
 *   max_response_bytes: 65536, allow_hosts: [] } });
 * e.available; // false: no endpoint configured
 * ```
 */
export function openEmbeddings(options: {
  readonly settings: EmbeddingSettings;
  readonly apiKey?: string;
  readonly resolve?: Resolver;
}): { available: true; embedder: Embedder } | { available: false; reason: string } {
  const { settings } = options;
  const at = endpointUrl(settings.endpoint_url, "/embeddings", {
    label: "embeddings endpoint",
    setting: "context.embeddings.endpoint_url",
  });
  if (!at.ok) return { available: false, reason: at.reason };
  const { url } = at;
  return {
    available: true,
    embedder: {
      endpoint: at.origin,
      model: settings.model,
      weight: settings.weight,
      async embed(texts, outer) {
        const deadline = callDeadline(settings.timeout_ms, outer);
        const { signal, late } = deadline;
        try {
          await checkUrl(
            url,
            createUrlGuard({
              allowHosts: settings.allow_hosts,
              signal,
              ...(options.resolve ? { resolve: options.resolve } : {}),
            }),
            null,
          );
        } catch (e) {
          throw new EmbeddingError(
            late()
              ? `the embeddings endpoint's host did not resolve within ${settings.timeout_ms} ms`
              : `${
                (e as Error).message.replace(
                  "policy fetch.allow_hosts",
                  "policy context.embeddings.allow_hosts",
                )
              }`,
          );
        }
        const text = await postJson(url, { model: settings.model, input: texts }, {
          ...(options.apiKey ? { apiKey: options.apiKey } : {}),
          deadline,
          timeoutMs: settings.timeout_ms,
          maxResponseBytes: settings.max_response_bytes,
          label: "embeddings endpoint",
          capSetting: "context.embeddings.max_response_bytes",
          fail: (message) => new EmbeddingError(message),
        });
        return parseEmbeddings(text, texts.length);
      },
    },
  };
}

/** Validates an embeddings answer and returns unit-length vectors in input order. */
export function parseEmbeddings(text: string, count: number): Float32Array[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new EmbeddingError("the embeddings endpoint's answer is not JSON");
  }
  const data = (doc as { data?: unknown })?.data;
  if (!Array.isArray(data) || data.length !== count) {
    throw new EmbeddingError(
      `the embeddings endpoint's answer has no data array of ${count} embedding(s)`,
    );
  }
  const out: Float32Array[] = new Array(count);
  let dims = -1;
  for (let i = 0; i < data.length; i++) {
    const item = data[i] as { embedding?: unknown; index?: unknown };
    const index = typeof item?.index === "number" ? item.index : i;
    const v = item?.embedding;
    if (
      !Number.isInteger(index) || index < 0 || index >= count || out[index] !== undefined ||
      !Array.isArray(v) || v.length === 0 || v.length > MAX_EMBEDDING_DIMENSIONS ||
      (dims !== -1 && v.length !== dims) ||
      !v.every((x) => typeof x === "number" && Number.isFinite(x))
    ) {
      throw new EmbeddingError(
        `the embeddings endpoint's embedding ${i} is not a vector of 1-${MAX_EMBEDDING_DIMENSIONS} ` +
          "finite numbers of one length, at a distinct index",
      );
    }
    dims = v.length;
    out[index] = unit(v as number[]);
  }
  return out;
}

function unit(v: readonly number[]): Float32Array {
  let norm = 0;
  for (const x of v) norm += x * x;
  norm = Math.sqrt(norm);
  const out = new Float32Array(v.length);
  if (norm > 0) { for (let i = 0; i < v.length; i++) out[i] = v[i] / norm; }
  return out;
}

/** Cosine similarity of two unit vectors (0 when their lengths differ). */
export function cosine(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return 0;
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i] * b[i];
  return dot;
}

/**
 * The hybrid score: `(1 − weight) · bm25 / best_bm25 + weight · max(0, cosine)`, BM25
 * normalised by the best candidate's score so both parts lie in 0-1.
 */
export function blend(bm25: number, bestBm25: number, cos: number, weight: number): number {
  const lexical = bestBm25 > 0 ? bm25 / bestBm25 : 0;
  return (1 - weight) * lexical + weight * Math.max(0, cos);
}

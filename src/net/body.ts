/**
 * Reading a byte stream with a size cap: what every body from the network
 * (HTTP requests, OAuth forms) and a password on stdin needs.
 *
 * @module
 */

/**
 * Reads `stream` whole, or stops and cancels it once more than `maxBytes`
 * arrived and resolves to `undefined`. When `signal` aborts first (a body
 * timeout), the stream is cancelled too and the read rejects with the
 * signal's reason: a body that stalls is given up, not waited for.
 *
 * @example
 * ```ts
 * const bytes = await readCapped(new Blob(["hello"]).stream(), 16);
 * console.log(bytes?.byteLength); // 5
 * const stalled = new ReadableStream<Uint8Array>({ start(c) { c.enqueue(new Uint8Array(1)); } });
 * await readCapped(stalled, 16, AbortSignal.timeout(10)).catch((e) => e.name); // "TimeoutError"
 * ```
 */
export async function readCapped(
  stream: ReadableStream<Uint8Array>,
  maxBytes: number,
  signal?: AbortSignal,
): Promise<Uint8Array | undefined> {
  const reader = stream.getReader();
  // Cancelling settles a read in progress (as done), so a stalled read ends at the abort.
  const onAbort = () => reader.cancel(signal?.reason).catch(() => {});
  signal?.addEventListener("abort", onAbort, { once: true });
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    if (signal?.aborted) onAbort();
    for (;;) {
      const { done, value } = await reader.read();
      if (signal?.aborted) throw signal.reason;
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        reader.cancel().catch(() => {});
        return undefined;
      }
      chunks.push(value);
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    bytes.set(c, offset);
    offset += c.byteLength;
  }
  return bytes;
}

/** How long a request body may take to arrive when the caller names no deadline. */
export const DEFAULT_BODY_TIMEOUT_MS = 30_000;

/** Why `readWithin` has no body to give. */
export type BodyRefusal = "too_large" | "timeout" | "unreadable";

/**
 * Reads `stream` whole, at most `maxBytes`, within `timeoutMs`: its bytes, or why not. A body
 * that stalls is cancelled at the deadline ("timeout"), one over the bound as soon as it is
 * ("too_large"); a stream that fails is "unreadable". For the routes that map these to their
 * own error shapes (the OAuth endpoints, the dashboard's forms).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readWithin } from "./body.ts";
 * const got = await readWithin(new Blob(["hello"]).stream(), 16, 1000);
 * assert.equal((got as Uint8Array).byteLength, 5);
 * assert.equal(await readWithin(new Blob(["hello"]).stream(), 2, 1000), "too_large");
 * const stalled = new ReadableStream<Uint8Array>({ start(c) { c.enqueue(new Uint8Array(1)); } });
 * assert.equal(await readWithin(stalled, 16, 10), "timeout");
 * ```
 */
export async function readWithin(
  stream: ReadableStream<Uint8Array>,
  maxBytes: number,
  timeoutMs: number,
): Promise<Uint8Array | BodyRefusal> {
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    return await readCapped(stream, maxBytes, signal) ?? "too_large";
  } catch {
    return signal.aborted ? "timeout" : "unreadable";
  }
}

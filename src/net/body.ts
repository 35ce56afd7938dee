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

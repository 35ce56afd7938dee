/**
 * Reading a byte stream with a size cap: what every body from the network
 * (HTTP requests, OAuth forms) and a password on stdin needs.
 *
 * @module
 */

/**
 * Reads `stream` whole, or stops and cancels it once more than `maxBytes`
 * arrived and resolves to `undefined`.
 *
 * @example
 * ```ts
 * const bytes = await readCapped(new Blob(["hello"]).stream(), 16);
 * console.log(bytes?.byteLength); // 5
 * ```
 */
export async function readCapped(
  stream: ReadableStream<Uint8Array>,
  maxBytes: number,
): Promise<Uint8Array | undefined> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    bytes.set(c, offset);
    offset += c.byteLength;
  }
  return bytes;
}

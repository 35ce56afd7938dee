/**
 * Reads a child's output stream into a fixed buffer, so a process that
 * writes without end costs at most `max` bytes of memory here.
 */

/** Reads a stream into at most `max` bytes; calls `onOverflow` once when more arrives. */
export async function collect(
  stream: ReadableStream<Uint8Array>,
  max: number,
  onOverflow: () => void,
): Promise<{ bytes: Uint8Array; overflow: boolean }> {
  const out = new Uint8Array(max);
  let filled = 0;
  let overflow = false;
  const reader = stream.getReader();
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      const take = Math.min(value.byteLength, max - filled);
      out.set(value.subarray(0, take), filled);
      filled += take;
      if (take < value.byteLength && !overflow) {
        overflow = true;
        onOverflow();
      }
    }
  } catch {
    // The process was killed mid-write; what was read stands.
  } finally {
    reader.releaseLock();
  }
  return { bytes: out.subarray(0, filled), overflow };
}

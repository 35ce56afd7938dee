/**
 * A bound on what a long-lived response stream may hold for a client that stopped reading.
 *
 * @module
 */

/**
 * Unsent bytes a response stream may hold for a client that is not reading before it is
 * dropped: the WebSocket's bound (`maxBufferedBytes`) too.
 */
export const DEFAULT_MAX_UNSENT_BYTES = 8 * 1024 * 1024;

/** Options of {@link capUnsent}. */
export interface CapUnsentOptions {
  /** The most bytes held unsent; one chunk more and the stream is dropped. */
  readonly maxUnsentBytes?: number;
  /** Told once, with the bytes unsent, when the stream is dropped. */
  readonly onDrop?: (unsentBytes: number) => void;
  /** Told once when the stream ends, however: done, dropped, failed or cancelled by its reader. */
  readonly onEnd?: () => void;
}

/**
 * Passes `source` on, holding what its reader has not taken yet. Once more than
 * `maxUnsentBytes` are held, the stream is errored, which drops what it held and makes
 * `Deno.serve` close the connection, and `source` is cancelled, which tells its producer (an
 * SSE transport) that its client is gone. A `ReadableStream` queues every chunk enqueued
 * whatever its reader does, so without this a client that opens an event stream and never
 * reads it makes the server buffer without bound once the socket's own buffers are full.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { capUnsent } from "./unsent.ts";
 * const producer: ReadableStreamDefaultController<Uint8Array>[] = [];
 * let cancelled = false;
 * const events = new ReadableStream<Uint8Array>({
 *   start: (c) => void producer.push(c),
 *   cancel: () => void (cancelled = true),
 * });
 * const [source] = producer;
 * let dropped = 0;
 * const capped = capUnsent(events, { maxUnsentBytes: 10, onDrop: (n) => (dropped = n) });
 * source.enqueue(new Uint8Array(8)); // nobody reads: 8 bytes held
 * source.enqueue(new Uint8Array(8)); // 16 held, over the bound
 * await new Promise((r) => setTimeout(r, 0));
 * assert.equal(dropped, 16);
 * assert.equal(cancelled, true);
 * await assert.rejects(capped.getReader().read(), /not reading/);
 * ```
 */
export function capUnsent(
  source: ReadableStream<Uint8Array>,
  options: CapUnsentOptions = {},
): ReadableStream<Uint8Array> {
  const max = options.maxUnsentBytes ?? DEFAULT_MAX_UNSENT_BYTES;
  if (!Number.isSafeInteger(max) || max < 1) {
    throw new RangeError(`Cannot cap a stream at ${max} unsent bytes: give a positive integer`);
  }
  const reader = source.getReader();
  let stopped = false;
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    options.onEnd?.();
  };
  async function pump(controller: ReadableStreamDefaultController<Uint8Array>) {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (stopped) return;
        if (done) {
          stopped = true;
          controller.close();
          return end();
        }
        controller.enqueue(value);
        // With a high-water mark of 0 the desired size is minus the bytes held unsent.
        const unsent = -(controller.desiredSize ?? 0);
        if (unsent > max) {
          stopped = true;
          const reason = new Error(
            `Dropped the stream: ${unsent} bytes unsent (more than ${max}); the client is not reading`,
          );
          controller.error(reason);
          options.onDrop?.(unsent);
          end();
          await reader.cancel(reason).catch(() => {});
          return;
        }
      }
    } catch (e) {
      if (!stopped) {
        stopped = true;
        controller.error(e);
      }
      end();
    }
  }
  return new ReadableStream<Uint8Array>({
    start(controller) {
      void pump(controller);
    },
    cancel(reason) {
      stopped = true;
      end();
      return reader.cancel(reason);
    },
  }, new ByteLengthQueuingStrategy({ highWaterMark: 0 }));
}

/** `res` with its body (which it must have) passed through {@link capUnsent}; status and headers kept. */
export function capUnsentResponse(res: Response, options: CapUnsentOptions = {}): Response {
  return new Response(capUnsent(res.body!, options), {
    status: res.status,
    statusText: res.statusText,
    headers: res.headers,
  });
}

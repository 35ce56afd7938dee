/**
 * A bound on each message an HTTP upstream sends: a JSON answer as a whole, an SSE stream per
 * event. Without it a hostile or broken upstream's answer was read whole, however large, and
 * held several times over (parsed, enveloped, sealed, answered), so one tool call could take the
 * process's memory; past V8's longest string the HTTP route itself failed. The count is kept as
 * the bytes arrive, so nothing over the bound is ever held: the stream errors, the SDK's read
 * fails, and the call is the upstream's fault like any other. A POST's SSE answer cut for size
 * ends with a JSON-RPC error for each of its requests instead (the SDK would otherwise wait out
 * the call's time limit for an answer that is not coming).
 *
 * @module
 */

/** The most bytes one upstream message may have: 16 MiB. */
export const MAX_UPSTREAM_MESSAGE_BYTES = 16 * 1024 * 1024;

/** An upstream message went past {@link MAX_UPSTREAM_MESSAGE_BYTES}; the stream is abandoned. */
export class UpstreamMessageTooLargeError extends Error {
  override name = "UpstreamMessageTooLargeError";
}

/** Statuses a `Response` may not be built with a body for (they carry none). */
const NULL_BODY_STATUSES: ReadonlySet<number> = new Set([101, 103, 204, 205, 304]);
const LF = 0x0a;
const CR = 0x0d;

/** The ids of the requests in a JSON-RPC POST body (a message or a batch); none when unreadable. */
function requestIds(body: unknown): (string | number)[] {
  if (typeof body !== "string") return [];
  try {
    const parsed: unknown = JSON.parse(body);
    return (Array.isArray(parsed) ? parsed : [parsed]).flatMap((m) => {
      const id = (m as { id?: unknown; method?: unknown } | null)?.id;
      const request = typeof (m as { method?: unknown } | null)?.method === "string";
      return request && (typeof id === "string" || typeof id === "number") ? [id] : [];
    });
  } catch {
    return [];
  }
}

/**
 * The SSE events that end a POST's answer stream cut for size: a blank line closing the partial
 * event, then a JSON-RPC error for each request of the POST, so each fails now rather than when
 * its time runs out (the SDK waits for an answer that will not come on a stream that broke).
 */
function refusalEvents(ids: readonly (string | number)[], message: string): Uint8Array {
  const events = ids.map((id) =>
    `event: message\ndata: ${
      JSON.stringify({ jsonrpc: "2.0", id, error: { code: -32603, message } })
    }\n\n`
  );
  return new TextEncoder().encode(`\n\n${events.join("")}`);
}

/**
 * The count of an SSE stream's current event after `chunk`: bytes since the last blank line (an
 * event's end: LF LF, CR CR or CRLF CRLF), line ends left out. `state` carries the line being read
 * across chunks. Lines are found with `indexOf`, so a chunk costs its lines, not its bytes.
 */
function countEvent(
  chunk: Uint8Array,
  state: { count: number; lineBytes: number; afterCr: boolean },
): void {
  let at = 0;
  if (state.afterCr && chunk[0] === LF) at = 1; // the LF of a CRLF split across chunks
  state.afterCr = false;
  while (at < chunk.length) {
    const lf = chunk.indexOf(LF, at);
    const cr = chunk.indexOf(CR, at);
    const end = lf < 0 ? cr : cr < 0 ? lf : Math.min(lf, cr);
    if (end < 0) {
      state.lineBytes += chunk.length - at;
      state.count += chunk.length - at;
      return;
    }
    const line = end - at;
    if (line === 0 && state.lineBytes === 0) state.count = 0; // a blank line: the event is complete
    state.count += line;
    state.lineBytes = 0;
    at = end + 1;
    if (chunk[end] === CR) {
      if (at === chunk.length) state.afterCr = true;
      else if (chunk[at] === LF) at++;
    }
  }
}

/**
 * Counts a body's bytes per message: `perEvent` per SSE event ({@link countEvent}), otherwise
 * the whole body is one message. Past the bound a POST's SSE answer ends with an error for each of
 * `postBody`'s requests; any other body errors.
 */
function boundStream(
  body: ReadableStream<Uint8Array>,
  options: { maxBytes: number; perEvent: boolean; what: string; postBody?: unknown },
): ReadableStream<Uint8Array> {
  const { maxBytes, perEvent } = options;
  const state = { count: 0, lineBytes: 0, afterCr: false };
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        if (perEvent) countEvent(chunk, state);
        else state.count += chunk.byteLength;
        if (state.count <= maxBytes) {
          controller.enqueue(chunk);
          return;
        }
        const message = `${options.what} sent a message over ${maxBytes} bytes`;
        const ids = perEvent ? requestIds(options.postBody) : [];
        if (ids.length === 0) {
          controller.error(new UpstreamMessageTooLargeError(message));
          return;
        }
        controller.enqueue(refusalEvents(ids, message));
        controller.terminate();
      },
    }),
  );
}

/**
 * Wraps `base` (a transport's fetch) so every response body is bounded per message: SSE
 * (`text/event-stream`) per event, anything else as a whole (but see `sseGets`). `what` names the sender in the
 * error (`upstream ev`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { boundedMessages, UpstreamMessageTooLargeError } from "./message_bound.ts";
 * const answer = (body: string, type: string) =>
 *   Promise.resolve(new Response(body, { headers: { "content-type": type } }));
 * const json = boundedMessages(() => answer('{"a":"0123456789"}', "application/json"), "up", { maxBytes: 8 });
 * await assert.rejects((await json("http://up.example/")).text(), UpstreamMessageTooLargeError);
 * // An SSE stream is counted per event (10 bytes each here): many small events pass.
 * const events = "data: 1234\n\ndata: 5678\n\n";
 * const sse = boundedMessages(() => answer(events, "text/event-stream"), "up", {
 *   maxBytes: 12,
 * });
 * assert.equal(await (await sse("http://up.example/")).text(), events);
 * // A POST's SSE answer cut for size ends with an error answering each of its requests.
 * const cut = boundedMessages(() => answer(`data: ${"x".repeat(20)}`, "text/event-stream"), "up", {
 *   maxBytes: 12,
 * });
 * const body = JSON.stringify({ jsonrpc: "2.0", id: 7, method: "tools/call" });
 * const text = await (await cut("http://up.example/", { method: "POST", body })).text();
 * assert.match(text, /"id":7,"error":\{"code":-32603,"message":"up sent a message over 12 bytes"\}/);
 * ```
 */
export function boundedMessages(
  base: typeof fetch,
  what: string,
  options: {
    /** Default {@link MAX_UPSTREAM_MESSAGE_BYTES}. */
    readonly maxBytes?: number;
    /**
     * Bound the SSE streams of GET requests too (default true): the legacy SSE transport's one
     * stream carries every answer. Streamable HTTP passes false: its GET stream carries only
     * the upstream's own notifications and requests, answers come on the POSTs.
     */
    readonly sseGets?: boolean;
  } = {},
): typeof fetch {
  const maxBytes = options.maxBytes ?? MAX_UPSTREAM_MESSAGE_BYTES;
  return async (input, init) => {
    const res = await base(input, init);
    if (res.body === null || NULL_BODY_STATUSES.has(res.status)) return res;
    const type = (res.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
    const post = init?.method === "POST";
    if (type === "text/event-stream" && !post && options.sseGets === false) return res;
    const body = boundStream(res.body, {
      maxBytes,
      perEvent: type === "text/event-stream",
      what,
      ...(post ? { postBody: init!.body } : {}),
    });
    return new Response(body, {
      status: res.status,
      statusText: res.statusText,
      headers: res.headers,
    });
  };
}

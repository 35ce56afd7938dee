/**
 * The answer to a POST, handed to the SDK's Streamable HTTP client as JSON
 * when the upstream sent it in an SSE stream whose only messages are that
 * answer (after the 2025-11-25 priming event): the SDK's SSE path pipes every
 * response through a TextDecoderStream and an event-source parser, the
 * largest cost of a routed call in a `--cpu-prof` after the fetch itself.
 *
 * The stream is read as it comes, never waited out: the first event that is
 * anything else — a notification (progress, log), a request (sampling,
 * elicitation), a `retry:` hint, a line ending the parser here does not take
 * (`\r`) — hands the SDK the very stream, the bytes read so far first, so it
 * sees exactly what it would have seen, when it would have seen it. A stream
 * that ends without an answer is handed over the same way (the SDK resumes
 * or reports it). After the answer the server ends the stream; what follows
 * is read off, bounded, so the connection goes back to the pool.
 * @module
 */

/** Past this many bytes without a verdict, the stream is the SDK's. */
const PEEK_MAX_BYTES = 1 << 20;
/** What is read off after the answer before the body is cancelled. */
const DRAIN_MAX_BYTES = 64 * 1024;
const DRAIN_MAX_MS = 5_000;

type Verdict = "skip" | "answer" | "other";

/**
 * Wraps `base` (the transport's fetch) so a POST's SSE answer arrives as an
 * `application/json` response with the same status and headers.
 *
 * @example
 * ```ts
 * import { answerAsJson } from "./sse_answer.ts";
 * const fetchForTransport = answerAsJson(fetch);
 * // new StreamableHTTPClientTransport(url, { fetch: fetchForTransport })
 * ```
 */
export function answerAsJson(base: typeof fetch): typeof fetch {
  return async (input, init) => {
    const res = await base(input, init);
    if (init?.method !== "POST" || res.status !== 200 || res.body === null) return res;
    const type = res.headers.get("content-type") ?? "";
    if (type.split(";")[0].trim().toLowerCase() !== "text/event-stream") return res;
    return await peek(res, init?.signal ?? undefined);
  };
}

/**
 * Cancels `reader` when `signal` aborts, until the returned function is called (the stream
 * ended). An aborted fetch leaves a body held by a reader of ours, and with it the connection,
 * open: the transport's close() (Warden shutting down, a broken connection dropped) must end a
 * long-lived stream such as `subscriptions/listen` upstream. The transport's signal lives as long
 * as the connection, so the listener goes once the stream is done.
 */
function cancelOnAbort(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  signal: AbortSignal | undefined,
): () => void {
  if (!signal) return () => {};
  const cancel = () => reader.cancel(signal.reason).catch(() => {});
  if (signal.aborted) cancel();
  else signal.addEventListener("abort", cancel, { once: true });
  return () => signal.removeEventListener("abort", cancel);
}

async function peek(res: Response, signal: AbortSignal | undefined): Promise<Response> {
  const reader = res.body!.getReader();
  const done = cancelOnAbort(reader, signal);
  const chunks: Uint8Array[] = [];
  const decoder = new TextDecoder();
  let text = "";
  let bytes = 0;
  let from = 0; // where the first event not yet judged starts
  while (true) {
    let step: ReadableStreamReadResult<Uint8Array>;
    try {
      step = await reader.read();
    } catch {
      // Cut off mid-stream: the SDK meets the same error on the same stream (and resumes it).
      return handOver(res, chunks, reader, done);
    }
    if (step.done) break;
    chunks.push(step.value);
    bytes += step.value.byteLength;
    text += decoder.decode(step.value, { stream: true });
    if (text.includes("\r")) break;
    for (let end = text.indexOf("\n\n", from); end >= 0; end = text.indexOf("\n\n", from)) {
      const event = text.slice(from, end);
      from = end + 2;
      const verdict = judge(event);
      if (verdict === "skip") continue;
      if (verdict === "other") return handOver(res, chunks, reader, done);
      drain(reader, done);
      const headers = new Headers(res.headers);
      headers.set("content-type", "application/json");
      headers.delete("content-length");
      return new Response(dataOf(event), {
        status: res.status,
        statusText: res.statusText,
        headers,
      });
    }
    if (bytes > PEEK_MAX_BYTES) break;
  }
  return handOver(res, chunks, reader, done);
}

/** One SSE event (its lines, without the blank line ending it) judged. */
function judge(event: string): Verdict {
  let hasData = false;
  for (const line of event.split("\n")) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + (line[colon + 1] === " " ? 2 : 1));
    if (field === "id") continue;
    if (field === "event") {
      if (value !== "message") return "other";
      continue;
    }
    if (field === "data") {
      if (value !== "") hasData = true;
      continue;
    }
    return "other"; // retry:, or a field the parser here does not know
  }
  if (!hasData) return "skip"; // a priming event: an id to resume after, and nothing else
  let message: unknown;
  try {
    message = JSON.parse(dataOf(event));
  } catch {
    return "other"; // the SDK reports it
  }
  if (typeof message !== "object" || message === null || Array.isArray(message)) return "other";
  const m = message as Record<string, unknown>;
  const answer = "id" in m && !("method" in m) && ("result" in m || "error" in m);
  return answer ? "answer" : "other";
}

/** The data lines of an event, joined as the event-source parser joins them. */
function dataOf(event: string): string {
  const out: string[] = [];
  for (const line of event.split("\n")) {
    if (line === "data" || line === "data:") out.push("");
    else if (line.startsWith("data:")) out.push(line.slice(line[5] === " " ? 6 : 5));
  }
  return out.join("\n");
}

/** The original response again: the bytes read so far, then the rest of the stream as it comes. */
function handOver(
  res: Response,
  chunks: Uint8Array[],
  reader: ReadableStreamDefaultReader<Uint8Array>,
  done: () => void,
): Response {
  let i = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (i < chunks.length) {
        controller.enqueue(chunks[i++]);
        return;
      }
      let step: ReadableStreamReadResult<Uint8Array>;
      try {
        step = await reader.read();
      } catch (e) {
        done();
        throw e;
      }
      if (step.done) {
        done();
        controller.close();
      } else controller.enqueue(step.value);
    },
    cancel(reason) {
      done();
      return reader.cancel(reason);
    },
  });
  return new Response(body, {
    status: res.status,
    statusText: res.statusText,
    headers: res.headers,
  });
}

/** Reads off what follows the answer (the end of the stream), bounded in bytes and time. */
function drain(reader: ReadableStreamDefaultReader<Uint8Array>, done: () => void): void {
  let bytes = 0;
  const timer = setTimeout(() => reader.cancel().catch(() => {}), DRAIN_MAX_MS);
  (async () => {
    while (true) {
      const step = await reader.read();
      if (step.done) return;
      bytes += step.value.byteLength;
      if (bytes > DRAIN_MAX_BYTES) {
        await reader.cancel();
        return;
      }
    }
  })().catch(() => {}).finally(() => {
    clearTimeout(timer);
    done();
  });
}

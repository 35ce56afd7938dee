/**
 * The direct path of a 2025-era session's plain `tools/call` (issue 13).
 *
 * The SDK's sessionful transport and protocol layer spend more CPU on a Warden call than the
 * call's own work: a zod parse of the request as a JSON-RPC message, another as a
 * `tools/call`, the handler's context, a parse of Warden's ~1 KB envelope against the
 * `CallToolResult` schema, and two more guard parses of the response as it is sent. For the
 * common request — one `tools/call` of one of Warden's own tools, nothing in `_meta` but a
 * progress token, from a client that declared neither sampling nor elicitation — this path
 * answers exactly as the SDK would: the same stream set-up (headers, priming event, keep-alive),
 * the same event store (so `Last-Event-ID` replays and resumes it through the SDK's own GET
 * handler), the same session's registry call, the same response. Everything else — batches,
 * initialize, responses, notifications, other methods, unusual fields, clients the server may
 * ask things — goes to the SDK, which owns every error answer.
 *
 * It reaches into the transport's stream bookkeeping (`_streamMapping`,
 * `_requestToStreamMapping`, the priming and keep-alive helpers) of the pinned SDK 2.4.0, so that
 * a replay through the SDK finds a direct request's stream and answer;
 * `tests/mcp/session_direct_test.ts` holds the two paths to the same wire behaviour.
 *
 * @module
 */
import {
  type CallToolResult,
  DEFAULT_NEGOTIATED_PROTOCOL_VERSION,
  isJsonContentType,
  type WebStandardStreamableHTTPServerTransport,
} from "@modelcontextprotocol/server";
import type { KvEventStore } from "./event_store.ts";
import type { SessionToolCall } from "./server.ts";
import { isPlainObject, toolCallShape } from "./_tool_call_shape.ts";

/** A `tools/call` the direct path may answer. */
export interface PlainSessionCall {
  readonly id: string | number;
  readonly name: string;
  readonly args: Record<string, unknown> | undefined;
  readonly progressToken?: string | number;
}

/**
 * The request, if the direct path answers it as the SDK would: a POST accepting both JSON and
 * SSE with a JSON body of one `tools/call` (string or integer id, a name, an arguments object or
 * none, `_meta` absent or holding only a progress token) of a tool `serves` names, in a session
 * whose client declared neither sampling nor elicitation.
 */
export function plainSessionCall(
  req: Request,
  body: unknown,
  clientCapabilities: Record<string, unknown> | undefined,
  serves: (name: string) => boolean,
): PlainSessionCall | undefined {
  const shape = toolCallShape(body);
  if (!shape || !serves(shape.name)) return;
  const { id, name, args, meta } = shape;
  let progressToken: string | number | undefined;
  if (meta !== undefined) {
    if (!isPlainObject(meta)) return;
    for (const k in meta) {
      const token = meta[k];
      if (k !== "progressToken") return;
      if (typeof token !== "string" && !Number.isSafeInteger(token)) return;
      progressToken = token as string | number;
    }
  }
  if (clientCapabilities === undefined || !isPlainObject(clientCapabilities)) return;
  if ("sampling" in clientCapabilities || "elicitation" in clientCapabilities) return;
  const accept = req.headers.get("accept");
  if (!accept?.includes("application/json") || !accept.includes("text/event-stream")) return;
  if (!isJsonContentType(req.headers.get("content-type"))) return;
  return {
    id,
    name,
    args,
    ...(progressToken !== undefined ? { progressToken } : {}),
  };
}

interface StreamEntry {
  controller?: ReadableStreamDefaultController<Uint8Array>;
  encoder?: TextEncoder;
  replayedEventIds?: Set<string>;
  cleanup(): void;
}

/** The SDK transport's stream bookkeeping this path shares (SDK 2.4.0). */
interface TransportInternals {
  readonly sessionId?: string;
  readonly _closed: boolean;
  readonly _eventStore?: {
    storeEvent(streamId: string, message: unknown): Promise<string>;
  } & Partial<Pick<KvEventStore, "sent" | "streamBroken">>;
  readonly _streamMapping: Map<string, StreamEntry>;
  readonly _requestToStreamMapping: Map<string | number, string>;
  writePrimingEvent(
    controller: ReadableStreamDefaultController<Uint8Array>,
    encoder: TextEncoder,
    streamId: string,
    protocolVersion: string,
  ): Promise<void>;
  readonly _keepAliveMs?: number;
  writeSSEEvent(
    controller: ReadableStreamDefaultController<Uint8Array>,
    encoder: TextEncoder,
    message: unknown,
    eventId?: string,
  ): boolean;
}

interface KeptAlive {
  readonly encoder: TextEncoder;
  readonly everyMs: number;
  last: number;
}

/** The open direct streams, each written `: keepalive` as the SDK's transport writes its own. */
const keptAlive = new Map<ReadableStreamDefaultController<Uint8Array>, KeptAlive>();
let keepAliveTicker: ReturnType<typeof setInterval> | undefined;
const KEEP_ALIVE_TICK_MS = 1_000;

/**
 * Keeps `controller`'s stream alive every `everyMs` (within a tick), until the returned function
 * is called. One timer serves every open stream: the SDK arms a Node-style interval per response,
 * which cost a call that answers in a millisecond about 2 % of its CPU (`--cpu-prof`).
 */
export function keepStreamAlive(
  controller: ReadableStreamDefaultController<Uint8Array>,
  encoder: TextEncoder,
  everyMs: number,
): () => void {
  if (!Number.isFinite(everyMs) || everyMs < 1) return () => {};
  keptAlive.set(controller, { encoder, everyMs, last: Date.now() });
  if (keepAliveTicker === undefined) {
    keepAliveTicker = setInterval(() => {
      const now = Date.now();
      for (const [c, k] of keptAlive) {
        if (now - k.last < k.everyMs) continue;
        k.last = now;
        try {
          c.enqueue(k.encoder.encode(": keepalive\n\n"));
        } catch {
          keptAlive.delete(c); // closed under us
        }
      }
      if (keptAlive.size === 0) {
        clearInterval(keepAliveTicker);
        keepAliveTicker = undefined;
      }
    }, Math.min(KEEP_ALIVE_TICK_MS, everyMs));
    Deno.unrefTimer(keepAliveTicker!);
  }
  return () => {
    keptAlive.delete(controller);
  };
}

/** How long a direct call may take to be answered in one body rather than a stream. */
const QUICK_ANSWER_MS = 100;
const QUICK_TICK_MS = 20;

/** Calls waiting for a quick answer, each with the time past which it is streamed. */
const quickWaiting = new Set<{ readonly by: number; readonly late: () => void }>();
let quickTicker: ReturnType<typeof setInterval> | undefined;

/**
 * A promise that resolves (to undefined) `ms` to `ms` + a tick from now, unless `done` first.
 * One shared timer serves every waiting call: a timer per call cost about 1.5 % of its CPU.
 */
function lateAfter(ms: number): { late: Promise<undefined>; done(): void } {
  let late!: () => void;
  const promise = new Promise<undefined>((resolve) => late = () => resolve(undefined));
  const entry = { by: Date.now() + ms, late };
  quickWaiting.add(entry);
  if (quickTicker === undefined) {
    quickTicker = setInterval(() => {
      const now = Date.now();
      for (const e of quickWaiting) {
        if (e.by > now) continue;
        quickWaiting.delete(e);
        e.late();
      }
      if (quickWaiting.size === 0) {
        clearInterval(quickTicker);
        quickTicker = undefined;
      }
    }, QUICK_TICK_MS);
    Deno.unrefTimer(quickTicker!);
  }
  return { late: promise, done: () => void quickWaiting.delete(entry) };
}

/** What one direct answer needs. */
export interface DirectAnswer {
  readonly transport: WebStandardStreamableHTTPServerTransport;
  readonly call: PlainSessionCall;
  readonly run: SessionToolCall;
  readonly sessionId: string;
  /** Aborted by the client's `notifications/cancelled` or the session's end. */
  readonly signal: AbortSignal;
  /** Called once the request is answered (or abandoned): its id is free again. */
  readonly done: () => void;
  readonly jsonMode: boolean;
  /** The request's `MCP-Protocol-Version` header, if any (the priming event depends on it). */
  readonly protocolVersion: string | null;
}

/** The response the SDK's handler ladder gives a thrown error (HTTP 200, JSON-RPC error). */
function errorMessage(id: string | number, e: unknown): Record<string, unknown> {
  const err = e as { code?: unknown; message?: string; data?: unknown };
  return {
    jsonrpc: "2.0",
    id,
    error: {
      code: Number.isSafeInteger(err?.code) ? err.code as number : -32603,
      message: err?.message ?? "Internal error",
      ...(err?.data !== undefined ? { data: err.data } : {}),
    },
  };
}

async function answerOf(a: DirectAnswer, notify: Parameters<SessionToolCall>[0]["notify"]) {
  try {
    const result: CallToolResult = await a.run({
      name: a.call.name,
      args: a.call.args,
      sessionId: a.sessionId,
      ...(a.call.progressToken !== undefined ? { progressToken: a.call.progressToken } : {}),
      signal: a.signal,
      notify,
    });
    return { result, jsonrpc: "2.0", id: a.call.id };
  } catch (e) {
    return errorMessage(a.call.id, e);
  }
}

/** Answers a plain call: as JSON in JSON mode, else on its own SSE stream. */
export async function answerDirect(a: DirectAnswer): Promise<Response> {
  const headers: Record<string, string> = a.jsonMode ? { "Content-Type": "application/json" } : {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache, no-transform",
    Connection: "keep-alive",
    "X-Accel-Buffering": "no",
  };
  headers["mcp-session-id"] = a.sessionId;
  if (a.jsonMode) {
    // The SDK drops a request's notifications in JSON mode; so does this path.
    const message = await answerOf(a, () => Promise.resolve()).finally(a.done);
    return new Response(JSON.stringify(message), { status: 200, headers });
  }
  const t = a.transport as unknown as TransportInternals;
  const version = a.protocolVersion ?? DEFAULT_NEGOTIATED_PROTOCOL_VERSION;
  const streamId = crypto.randomUUID();
  const encoder = new TextEncoder();
  const store = t._eventStore;
  if (!store?.sent) {
    const started = streamAnswer(a, t, { streamId, encoder, version, primed: undefined });
    started.run(answerOf(a, started.notify));
    return new Response(started.readable, { status: 200, headers });
  }
  // Most calls answer within moments: their whole stream (priming event, any notifications,
  // the answer) goes out as one body, with no stream, keep-alive or mapping to set up. A call
  // still running after QUICK_ANSWER_MS gets its stream as before, with what it sent so far.
  const primed: Uint8Array[] = [];
  const collect = { enqueue: (chunk: Uint8Array) => void primed.push(chunk) };
  await t.writePrimingEvent(collect as never, encoder, streamId, version);
  const early: unknown[] = [];
  let live: ((message: unknown) => Promise<void>) | undefined;
  const answer = answerOf(a, (n) => {
    const message = { jsonrpc: "2.0", ...n };
    if (live) return live(message);
    early.push(message);
    return Promise.resolve();
  });
  const deadline = lateAfter(QUICK_ANSWER_MS);
  const quick = await Promise.race([answer.then((message) => ({ message })), deadline.late]);
  deadline.done();
  if (quick === undefined) {
    const started = streamAnswer(a, t, { streamId, encoder, version, primed, early });
    live = started.notify;
    started.run(answer);
    return new Response(started.readable, { status: 200, headers });
  }
  a.done();
  const event = (message: unknown) => {
    const json = JSON.stringify(message);
    const eventId = store.sent!(streamId, json);
    return `event: message\nid: ${eventId}\ndata: ${json}\n\n`;
  };
  let body = new TextDecoder().decode(concat(primed));
  for (const message of early) body += event(message);
  // A cancelled request gets no response (as the SDK's protocol layer does).
  if (!a.signal.aborted) body += event(quick.message);
  return new Response(body, { status: 200, headers });
}

function concat(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/**
 * The answer's own SSE stream, mapped in the SDK transport as its own streams are: the priming
 * event (`primed`, already written for its id, or written here) and the notifications sent
 * before it (`early`) first, then what `notify` and `run`'s answer send, kept alive meanwhile.
 */
function streamAnswer(
  a: DirectAnswer,
  t: TransportInternals,
  s: {
    streamId: string;
    encoder: TextEncoder;
    version: string;
    primed: Uint8Array[] | undefined;
    early?: unknown[];
  },
) {
  const { streamId, encoder } = s;
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let keepAlive: (() => void) | undefined;
  const readable = new ReadableStream<Uint8Array>({
    start: (c) => {
      controller = c;
    },
    cancel: () => {
      keepAlive?.();
      if (t._streamMapping.get(streamId)?.controller === controller) {
        t._streamMapping.delete(streamId);
      }
      // Cut off before its end: what it was sent is stored for a replay, here or elsewhere.
      t._eventStore?.streamBroken?.(streamId);
    },
  });
  t._streamMapping.set(streamId, {
    controller,
    encoder,
    cleanup: () => {
      keepAlive?.();
      t._streamMapping.delete(streamId);
      try {
        controller.close();
      } catch { /* already closed */ }
    },
  });
  // A replay (GET with Last-Event-ID) keeps the stream open only while a request maps to it.
  t._requestToStreamMapping.set(a.call.id, streamId);
  // As the SDK's send: stored first, then written to whichever connection holds the stream now
  // (this response, or a replay that took it over), unless that replay already sent it.
  const emit = async (message: unknown) => {
    const store = t._eventStore;
    const own = t._streamMapping.get(streamId);
    if (store?.sent && own?.controller === controller) {
      // This response is still connected: the event is kept in memory, and stored only if the
      // stream breaks (the cancel above). Serialised once, for the stream and its size.
      const json = JSON.stringify(message);
      const eventId = store.sent(streamId, json);
      try {
        controller.enqueue(encoder.encode(`event: message\nid: ${eventId}\ndata: ${json}\n\n`));
      } catch {
        store.streamBroken!(streamId); // closed under us: keep it for a replay
      }
      return;
    }
    const eventId = store ? await store.storeEvent(streamId, message) : undefined;
    const stream = t._streamMapping.get(streamId);
    if (
      stream?.controller && stream.encoder &&
      (eventId === undefined || !stream.replayedEventIds?.has(eventId))
    ) t.writeSSEEvent(stream.controller, stream.encoder, message, eventId);
  };
  const primed = s.primed === undefined
    ? t.writePrimingEvent(controller, encoder, streamId, s.version)
    : Promise.resolve(s.primed.forEach((chunk) => controller.enqueue(chunk)));
  const early = primed.then(async () => {
    for (const message of s.early ?? []) await emit(message);
  });
  if (t._streamMapping.get(streamId)?.controller === controller) {
    if (!t._closed) keepAlive = keepStreamAlive(controller, encoder, t._keepAliveMs ?? 15_000);
  }
  return {
    readable,
    notify: async (message: unknown) => {
      await early;
      await emit(message);
    },
    run(answer: Promise<unknown>) {
      (async () => {
        const message = await answer;
        await early;
        // A cancelled request gets no response (as the SDK's protocol layer does), and its
        // stream ends instead of staying open.
        if (!a.signal.aborted) await emit(message);
      })().catch(() => {/* a failed event write: the stream still ends below */}).finally(() => {
        a.done();
        t._requestToStreamMapping.delete(a.call.id);
        t._streamMapping.get(streamId)?.cleanup();
      });
    },
  };
}

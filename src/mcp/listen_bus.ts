/**
 * Bus topics on the 2026-07-28 `subscriptions/listen` stream. A listen request's
 * `notifications.resourceSubscriptions` may name `warden://bus/<topic>` URIs: the caller's own
 * topics (the principal comes from the request's authentication, never from the URI). The stream
 * is acknowledged with them, and each message published to one of them — on any instance sharing
 * the KV — arrives as `notifications/resources/updated` of that URI with the message in
 * `_meta["warden/bus"]`, stamped with the stream's subscription id like every notification on it.
 *
 * The SDK's listen router owns the stream (ack first, filtering, subscription ids, keepalive,
 * teardown); Warden hands it an event bus whose `subscribe` — called by the router as the stream
 * opens, inside the request's async context — finds the stream's topics and connects their follow
 * to that one listener. Other listeners never see these events, so another principal's stream
 * naming the same URI gets its own topic's messages only.
 *
 * Bounds: streams with topics per principal and per process and topics per stream (the bus
 * service's `follow` refuses before the ack, `-32603` naming the bound); bytes handed to a stream
 * its client has not taken (past `maxQueuedBytes` the stream is cut: a client that does not read
 * is not buffered for); and an idle time after which a stream that delivered no message ends
 * gracefully with the listen result (the client listens again).
 *
 * @module
 */
import { AsyncLocalStorage } from "node:async_hooks";
import {
  InMemoryServerEventBus,
  SERVER_INFO_META_KEY,
  type ServerEvent,
  type ServerEventBus,
  SUBSCRIPTION_ID_META_KEY,
} from "@modelcontextprotocol/server";
import type { Logger } from "../lib/mod.ts";

/**
 * The resource URI a `subscriptions/listen` filter names one of the caller's own bus topics by:
 * `warden://bus/<topic>` in `notifications.resourceSubscriptions`. The principal is the
 * request's own, so alice's `warden://bus/builds` and bob's are different topics.
 */
export const BUS_URI_PREFIX = "warden://bus/";

/** The `_meta` key of a bus message on a `notifications/resources/updated` of a listen stream. */
export const BUS_META_KEY = "warden/bus";

/** A bus message as the listen path delivers it. */
export interface ListenBusMessage {
  readonly seq: number;
  readonly message: unknown;
  readonly sha256: string;
  readonly published_at: string;
  readonly missed: number;
}

/** What serving bus topics on `subscriptions/listen` needs (the bus service, and its bounds). */
export interface ListenBus {
  /** The topics' heads now (throws, with a message for the client, for a bad topic name). */
  heads(principal: string, topics: readonly string[]): Promise<number[]>;
  /**
   * Delivers what is published to the topics after `after` until `signal` aborts; throws, with a
   * message for the client, when the stream may not open (too many streams or topics).
   */
  follow(
    principal: string,
    topics: readonly string[],
    onMessage: (topic: string, m: ListenBusMessage) => void,
    signal: AbortSignal,
    after: readonly number[],
  ): void;
  /** Bytes of a stream's notifications not yet taken by its client before it is closed. */
  readonly maxQueuedBytes: number;
  /** A bus stream that delivered no message for this long is ended gracefully (listen again). */
  readonly idleMs: number;
}

/** One listen stream's bus topics: the follow, and what it has not handed to the stream yet. */
interface BusFeed {
  readonly id: unknown;
  readonly uris: readonly string[];
  readonly stop: AbortController;
  /** Messages that came before the SDK's listener was there (bounded like the backlog). */
  readonly early: { topic: string; m: ListenBusMessage }[];
  /** Bytes handed to the stream not yet taken by the client. */
  backlog: number;
  sink?: (topic: string, m: ListenBusMessage) => void;
  /** Ends the stream: gracefully (the listen result, the client may listen again) or cut. */
  end?: (graceful: boolean) => void;
  /** Called for each message handed over (the idle timer). */
  touched?: () => void;
}

const jsonRpcError = (id: unknown, code: number, message: string) =>
  Response.json({ jsonrpc: "2.0", id, error: { code, message } }, { status: 200 });

const encoder = new TextEncoder();

/** The listen path's bus seam: the SDK's event bus, and the per-stream feeds. */
export interface ListenBusRouter {
  /** The event bus to give `createMcpHandler` (list_changed and resource events as before). */
  readonly events: ServerEventBus;
  /** The bus URIs of a filter (those starting with {@link BUS_URI_PREFIX}). */
  busUris(uris: readonly string[]): string[];
  /**
   * Opens the feed of a listen request's bus URIs, or the JSON-RPC error refusing it (a bad
   * topic name `-32602`, a bound `-32603`).
   */
  open(id: unknown, principal: string, uris: readonly string[]): Promise<BusFeed | Response>;
  /** Runs the SDK's handling of the listen request so that its listener finds `feed`. */
  run<T>(feed: BusFeed | undefined, fn: () => Promise<T>): Promise<T>;
  /**
   * Wraps the SDK's stream: counts what the client takes, ends it when idle or over its backlog,
   * and calls `ended` once however it ends.
   */
  wrap(response: Response, feed: BusFeed | undefined, ended: () => void): Response;
  /** Streams with bus topics open now. */
  readonly open_feeds: number;
}

/**
 * The router over `bus`; without `bus` it is the SDK's in-process event bus and no URI is a bus
 * URI.
 */
export function createListenBus(options: {
  readonly bus?: ListenBus;
  readonly logger: Logger;
  readonly serverInfo?: {
    readonly name: string;
    readonly title?: string;
    readonly version: string;
  };
}): ListenBusRouter {
  const { bus, logger } = options;
  const inner = new InMemoryServerEventBus((e) =>
    logger.debug("listen stream listener failed", { error: e.message })
  );
  const context = new AsyncLocalStorage<BusFeed>();
  let openFeeds = 0;

  const events: ServerEventBus = {
    publish: (event) => inner.publish(event),
    subscribe(listener) {
      const off = inner.subscribe(listener);
      const feed = context.getStore();
      if (feed === undefined || feed.sink !== undefined || feed.stop.signal.aborted) return off;
      feed.sink = (topic, m) => {
        const event: ServerEvent = {
          kind: "resource_updated",
          uri: `${BUS_URI_PREFIX}${topic}`,
          params: { _meta: { [BUS_META_KEY]: { topic, ...m } } },
        };
        feed.backlog += encoder.encode(JSON.stringify(event)).byteLength + 128;
        if (feed.backlog > bus!.maxQueuedBytes) {
          logger.info("bus listen stream cut: its client does not take what it is sent", {
            backlog_bytes: feed.backlog,
          });
          feed.end?.(false);
          return;
        }
        feed.touched?.();
        listener(event);
      };
      for (const { topic, m } of feed.early.splice(0)) feed.sink(topic, m);
      return () => {
        off();
        feed.stop.abort();
      };
    },
  };

  async function open(id: unknown, principal: string, uris: readonly string[]) {
    const unique = [...new Set(uris)];
    const topics = unique.map((u) => u.slice(BUS_URI_PREFIX.length));
    let after: number[];
    try {
      after = await bus!.heads(principal, topics);
    } catch (e) {
      return jsonRpcError(id, -32602, `Invalid params: ${(e as Error).message}`);
    }
    const feed: BusFeed = { id, uris: unique, stop: new AbortController(), early: [], backlog: 0 };
    let earlyBytes = 0;
    try {
      bus!.follow(
        principal,
        topics,
        (topic, m) => {
          if (feed.sink) return feed.sink(topic, m);
          earlyBytes += encoder.encode(JSON.stringify(m)).byteLength;
          if (earlyBytes > bus!.maxQueuedBytes) feed.stop.abort();
          else feed.early.push({ topic, m });
        },
        feed.stop.signal,
        after,
      );
    } catch (e) {
      return jsonRpcError(id, -32603, (e as Error).message);
    }
    openFeeds++;
    feed.stop.signal.addEventListener("abort", () => openFeeds--, { once: true });
    return feed;
  }

  return {
    events,
    busUris: (uris) => bus === undefined ? [] : uris.filter((u) => u.startsWith(BUS_URI_PREFIX)),
    open,
    run: (feed, fn) => feed === undefined ? fn() : context.run(feed, fn),
    wrap: (response, feed, ended) =>
      wrapStream(response, feed, ended, bus?.idleMs ?? 0, options.serverInfo),
    get open_feeds() {
      return openFeeds;
    },
  };
}

/** {@link ListenBusRouter.wrap} (see there). */
function wrapStream(
  response: Response,
  feed: BusFeed | undefined,
  ended: () => void,
  idleMs: number,
  serverInfo:
    | { readonly name: string; readonly title?: string; readonly version: string }
    | undefined,
): Response {
  let done = false;
  let idle: ReturnType<typeof setTimeout> | undefined;
  const finish = () => {
    if (done) return;
    done = true;
    clearTimeout(idle);
    feed?.stop.abort();
    ended();
  };
  const reader = response.body!.getReader();
  let out: ReadableStreamDefaultController<Uint8Array> | undefined;
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      out = controller;
    },
    async pull(controller) {
      try {
        const chunk = await reader.read();
        if (done) return;
        if (chunk.done) {
          finish();
          controller.close();
          return;
        }
        if (feed) feed.backlog = Math.max(0, feed.backlog - chunk.value.byteLength);
        controller.enqueue(chunk.value);
      } catch (e) {
        if (done) return;
        finish();
        controller.error(e);
      }
    },
    cancel(reason) {
      finish();
      return reader.cancel(reason);
    },
  });
  if (feed !== undefined) {
    feed.end = (graceful) => {
      if (done) return;
      if (graceful) {
        // The spec's graceful end: the listen request's result, as the SDK writes it.
        const result = {
          jsonrpc: "2.0",
          id: feed.id,
          result: {
            resultType: "complete",
            _meta: {
              [SUBSCRIPTION_ID_META_KEY]: feed.id,
              ...(serverInfo ? { [SERVER_INFO_META_KEY]: serverInfo } : {}),
            },
          },
        };
        out?.enqueue(encoder.encode(`event: message\ndata: ${JSON.stringify(result)}\n\n`));
      }
      finish();
      try {
        out?.close();
      } catch {
        // already closed
      }
      reader.cancel().catch(() => {});
    };
    const arm = () => {
      clearTimeout(idle);
      idle = setTimeout(() => feed.end?.(true), idleMs);
    };
    feed.touched = arm;
    arm();
    // Stopped before the stream opened (more came before the acknowledgement than a stream may
    // hold): end it rather than leave it open with nothing following its topics.
    if (feed.stop.signal.aborted) feed.end(false);
  }
  return new Response(stream, { status: response.status, headers: response.headers });
}

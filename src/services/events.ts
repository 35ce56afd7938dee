/**
 * The instances' event bus: what one Warden process does that every other
 * process sharing the KV must act on (an upstream registered, updated, removed
 * or approved at one of them), carried by Deno KV and woken by `kv.watch`.
 *
 * An event is a numbered record (`["instance_events", "e", seq]`) written in
 * one checked atomic with the head (`["instance_events", "head"]`), so numbers
 * are gap-free and ordered; the last {@link EventBusLimits.retained} are kept,
 * each for {@link EventBusLimits.retentionSeconds}. Every instance watches the
 * head, reads the events after the last one it saw and hands those of other
 * instances to its handlers (its own it acted on when it published them). An
 * instance that fell further behind than the kept window — or whose watch
 * broke and came back — gets one `resync` event instead: it must reread what
 * it holds from KV. `kv.watch` and checked atomics exist on Deno Deploy's KV,
 * where the watch wakes every isolate. On a local SQLite file a watch sees
 * only the writes of its own process, so there the head is also read every
 * {@link EventBusLimits.pollMs} (one key; 0 turns it off): another process's
 * event arrives within that.
 *
 * Why not KV queues (`enqueue`/`listenQueue`): a queued message is delivered to
 * one listener of all those sharing the KV — work distribution — while these
 * events must reach every instance.
 *
 * @module
 */
import { instanceEventHeadKey, instanceEventKey } from "../store/mod.ts";

/** Limits of the event bus. */
export interface EventBusLimits {
  /** Largest event data, as UTF-8 JSON. */
  readonly maxEventBytes: number;
  /** Events kept (older ones are deleted by the publish that passes them). */
  readonly retained: number;
  /** How long an event and the head live, in seconds. */
  readonly retentionSeconds: number;
  /** How often the head is read besides the watch (other processes on one file), in ms; 0: never. */
  readonly pollMs: number;
}

/** The defaults. */
export const DEFAULT_EVENT_BUS_LIMITS: EventBusLimits = Object.freeze({
  maxEventBytes: 4096,
  retained: 256,
  retentionSeconds: 600,
  pollMs: 500,
});

/** One event as a handler receives it. */
export interface InstanceEvent {
  /** What happened (`upstream`, …), or `resync`: events were missed, reread everything. */
  readonly type: string;
  readonly data: Record<string, unknown>;
  /** The instance that published it. */
  readonly origin: string;
  readonly seq: number;
}

/** The event bus one instance holds. */
export interface EventBus {
  /** This instance's name on the bus (its events are not handed back to it). */
  readonly origin: string;
  /** Publishes an event to every other instance; resolves once it is committed. */
  publish(type: string, data: Record<string, unknown>): Promise<number>;
  /** Calls `handler` for each event of another instance (and `resync`); returns an unsubscribe. */
  on(handler: (event: InstanceEvent) => void): () => void;
  /** Events of other instances handed to handlers so far. */
  readonly received: number;
  /** Stops watching. */
  close(): Promise<void>;
}

interface StoredHead {
  seq: number;
}

interface StoredEvent {
  type: string;
  data: Record<string, unknown>;
  origin: string;
  at_ms: number;
}

const TYPE_PATTERN = /^[a-z][a-z0-9_.:-]{0,63}$/;
const utf8 = new TextEncoder();

/** Commits one event with the head (checked, retried while other instances publish). */
async function publishEvent(
  kv: Deno.Kv,
  limits: EventBusLimits,
  origin: string,
  type: string,
  data: Record<string, unknown>,
): Promise<number> {
  if (!TYPE_PATTERN.test(type) || type === "resync") {
    throw new RangeError(`event type ${JSON.stringify(type)} is not a valid event type`);
  }
  const bytes = utf8.encode(JSON.stringify(data)).byteLength;
  if (bytes > limits.maxEventBytes) {
    throw new RangeError(`an event is at most ${limits.maxEventBytes} bytes; this is ${bytes}`);
  }
  const headKey = instanceEventHeadKey();
  const expireIn = limits.retentionSeconds * 1000;
  for (let attempt = 0; attempt < 64; attempt++) {
    if (attempt > 0) await new Promise((ok) => setTimeout(ok, Math.random() * 2 * attempt));
    const head = await kv.get<StoredHead>(headKey);
    const seq = (head.value?.seq ?? 0) + 1;
    const op = kv.atomic().check(head)
      .set(headKey, { seq } satisfies StoredHead, { expireIn })
      .set(
        instanceEventKey(seq),
        { type, data, origin, at_ms: Date.now() } satisfies StoredEvent,
        { expireIn },
      );
    if (seq > limits.retained) op.delete(instanceEventKey(seq - limits.retained));
    if ((await op.commit()).ok) return seq;
  }
  throw new Error(`Cannot publish event ${type}: the event head kept changing`);
}

/**
 * Opens the event bus over `kv` and starts watching it.
 *
 * @example
 * ```ts
 * const kv = await Deno.openKv(":memory:");
 * const a = await openEventBus(kv, { origin: "a" });
 * const b = await openEventBus(kv, { origin: "b" });
 * const seen = new Promise<string>((ok) => b.on((e) => ok(e.data.name as string)));
 * await a.publish("upstream", { name: "utils", op: "registered" });
 * console.assert((await seen) === "utils");
 * await a.close();
 * await b.close();
 * kv.close();
 * ```
 */
export async function openEventBus(
  kv: Deno.Kv,
  options: { origin: string; limits?: Partial<EventBusLimits>; onError?: (e: unknown) => void },
): Promise<EventBus> {
  const limits: EventBusLimits = { ...DEFAULT_EVENT_BUS_LIMITS, ...options.limits };
  const { origin } = options;
  const handlers = new Set<(event: InstanceEvent) => void>();
  const headKey = instanceEventHeadKey();
  let closed = false;
  let received = 0;
  let last = (await kv.get<StoredHead>(headKey)).value?.seq ?? 0;

  const deliver = (event: InstanceEvent) => {
    for (const h of handlers) {
      try {
        h(event);
      } catch (e) {
        options.onError?.(e);
      }
    }
  };

  /** Hands over the events after `last` up to `head`, or one `resync` when some are gone. */
  async function catchUp(head: number): Promise<void> {
    if (head === last) return;
    if (head < last) {
      // The head lapsed (idle past the retention) and numbering started again.
      last = 0;
    }
    let expected = last + 1;
    let gap = false;
    for await (
      const e of kv.list<StoredEvent>({
        start: instanceEventKey(last + 1),
        end: instanceEventKey(head + 1),
      })
    ) {
      const seq = e.key[e.key.length - 1] as number;
      if (seq !== expected) gap = true;
      expected = seq + 1;
      last = seq;
      if (gap || e.value.origin === origin) continue;
      received++;
      deliver({ type: e.value.type, data: e.value.data, origin: e.value.origin, seq });
    }
    if (expected !== head + 1) gap = true;
    last = head;
    if (gap) deliver({ type: "resync", data: {}, origin: "", seq: head });
  }

  // One catch-up at a time, whether the watch or the poll saw the head move.
  let queue: Promise<void> = Promise.resolve();
  const check = (head: number | undefined) => {
    if (head === undefined || head === last) return queue;
    return queue = queue.then(() => closed ? undefined : catchUp(head)).catch((e) =>
      options.onError?.(e)
    );
  };
  const stream = kv.watch<[StoredHead]>([headKey]);
  const reader = stream.getReader();
  const watching = (async () => {
    try {
      while (!closed) {
        const next = await reader.read();
        if (next.done) break;
        await check(next.value[0].value?.seq);
      }
    } catch (e) {
      if (!closed) options.onError?.(e);
    }
  })();
  let polling = false;
  const poller = limits.pollMs > 0
    ? setInterval(() => {
      if (polling || closed) return;
      polling = true;
      kv.get<StoredHead>(headKey).then((h) => check(h.value?.seq)).catch((e) => {
        if (!closed) options.onError?.(e);
      }).finally(() => polling = false);
    }, limits.pollMs)
    : undefined;

  return {
    origin,
    publish: (type, data) => publishEvent(kv, limits, origin, type, data),
    on(handler) {
      handlers.add(handler);
      return () => handlers.delete(handler);
    },
    get received() {
      return received;
    },
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(poller);
      await reader.cancel().catch(() => {});
      await watching;
      await queue;
      handlers.clear();
    },
  };
}

/**
 * The message bus: per-principal topics of JSON messages in Deno KV, so every
 * instance sharing the KV publishes into and reads from the same topics.
 *
 * A topic is a head (`["bus_head", principal, topic]`, its last sequence
 * number) and its last `maxRetained` messages (`["bus_msg", …, seq]`); a
 * publish commits the head, the message and the deletion of the message that
 * falls out of the window in one checked atomic, so sequence numbers are
 * gap-free and ordered. Everything carries `expireIn` = the retention: a topic
 * idle that long is gone. A subscriber reads the messages after its cursor
 * and, when there are none yet, waits on `kv.watch` of the head — a publish on
 * any instance wakes it. Waiting subscriptions are capped per process and
 * per principal.
 *
 * @module
 */
import { busHeadKey, busHeadPrefix, busMessageKey } from "../store/mod.ts";
import { digestJson } from "../lib/mod.ts";

/** Limits of the bus. */
export interface BusLimits {
  /** Largest message, as UTF-8 JSON. */
  readonly maxMessageBytes: number;
  /** Messages kept per topic (older ones are deleted by the publish that passes them). */
  readonly maxRetained: number;
  /** How long an idle topic and its messages live, in seconds. */
  readonly retentionSeconds: number;
  /** Live topics one principal may have. */
  readonly maxTopicsPerPrincipal: number;
  /** Subscriptions waiting at once in this process, and per principal. */
  readonly maxWaiting: number;
  readonly maxWaitingPerPrincipal: number;
}

/** The defaults. */
export const DEFAULT_BUS_LIMITS: BusLimits = Object.freeze({
  maxMessageBytes: 16_384,
  maxRetained: 100,
  retentionSeconds: 3600,
  maxTopicsPerPrincipal: 100,
  maxWaiting: 256,
  maxWaitingPerPrincipal: 8,
});

/** Why a bus operation was refused. */
export class BusError extends Error {
  override name = "BusError";
  readonly code: "bad_topic" | "bad_message" | "too_large" | "full" | "busy";
  constructor(code: BusError["code"], message: string) {
    super(message);
    this.code = code;
  }
}

/** A topic name: 1-128 characters of letters, digits and `.`, `_`, `:`, `-`, `/`. */
export const TOPIC_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;

interface StoredHead {
  seq: number;
  at_ms: number;
}

interface StoredMessage {
  json: string;
  sha256: string;
  at_ms: number;
}

/** One message as a subscriber receives it. */
export interface BusMessage {
  readonly seq: number;
  readonly message: unknown;
  readonly sha256: string;
  readonly published_at: string;
}

/** What a publish reports. */
export interface PublishResult {
  readonly topic: string;
  readonly seq: number;
  readonly sha256: string;
  readonly bytes: number;
  readonly published_at: string;
}

/** What a subscription call reports. */
export interface SubscribeResult {
  readonly topic: string;
  readonly messages: BusMessage[];
  /** Pass as `after_seq` next time to carry on where this left off. */
  readonly next_after_seq: number;
  /** The topic's last sequence number when the call ended. */
  readonly head: number;
  /** Messages after the cursor were already out of the kept window (the earliest kept follow). */
  readonly missed: number;
  /** Whether the call waited for a publish. */
  readonly waited: boolean;
}

/** The bus of every principal, over one KV. */
export interface BusService {
  readonly limits: BusLimits;
  publish(principal: string, topic: string, message: unknown): Promise<PublishResult>;
  /**
   * The messages after `afterSeq` (default: the head, i.e. only new ones), up to
   * `limit`; when there are none, waits up to `waitMs` for a publish. `onMessage`
   * is called for each message as it is taken (the tool streams them to the client).
   */
  subscribe(
    principal: string,
    input: {
      topic: string;
      afterSeq?: number;
      limit?: number;
      waitMs?: number;
      signal?: AbortSignal;
      onMessage?: (m: BusMessage) => Promise<void> | void;
    },
  ): Promise<SubscribeResult>;
  /** Subscriptions waiting now in this process. */
  readonly waiting: number;
}

const utf8 = new TextEncoder();

function checkTopic(topic: string): void {
  if (typeof topic !== "string" || !TOPIC_PATTERN.test(topic)) {
    throw new BusError(
      "bad_topic",
      `Cannot use topic ${
        JSON.stringify(String(topic).slice(0, 60))
      }: 1-128 letters, digits or . _ : - /, starting with a letter or digit`,
    );
  }
}

/**
 * Builds the bus over `kv`.
 *
 * @example
 * ```ts
 * const kv = await Deno.openKv(":memory:");
 * const bus = createBusService(kv);
 * await bus.publish("alice", "builds", { ok: true });
 * (await bus.subscribe("alice", { topic: "builds", afterSeq: 0 })).messages[0].message; // { ok: true }
 * ```
 */
// Kept whole: the bus's closures share the waiting-consumer maps; publish and wait must be read
// together.
export function createBusService(
  kv: Deno.Kv,
  options: { limits?: Partial<BusLimits> } = {},
): BusService {
  const limits: BusLimits = { ...DEFAULT_BUS_LIMITS, ...options.limits };
  const expireIn = limits.retentionSeconds * 1000;
  let waiting = 0;
  const waitingBy = new Map<string, number>();

  async function publish(principal: string, topic: string, message: unknown) {
    checkTopic(topic);
    if (message === undefined) throw new BusError("bad_message", "Cannot publish no message");
    let json: string;
    try {
      json = JSON.stringify(message);
    } catch {
      throw new BusError("bad_message", "Cannot publish a message that is not JSON");
    }
    const bytes = utf8.encode(json).byteLength;
    if (bytes > limits.maxMessageBytes) {
      throw new BusError(
        "too_large",
        `Cannot publish ${bytes} bytes: messages are at most ${limits.maxMessageBytes} bytes of JSON`,
      );
    }
    const sha256 = digestJson(JSON.parse(json));
    const headKey = busHeadKey(principal, topic);
    for (let attempt = 0; attempt < 64; attempt++) {
      if (attempt > 0) await new Promise((ok) => setTimeout(ok, Math.random() * 2 * attempt));
      const head = await kv.get<StoredHead>(headKey);
      if (head.value === null) {
        // A new topic: count the live ones (a bounded read, only when a topic is created).
        let topics = 0;
        for await (
          const _ of kv.list({ prefix: busHeadPrefix(principal) }, {
            limit: limits.maxTopicsPerPrincipal,
          })
        ) topics++;
        if (topics >= limits.maxTopicsPerPrincipal) {
          throw new BusError(
            "full",
            `Cannot create topic "${topic}": this principal already has ` +
              `${limits.maxTopicsPerPrincipal} live topics, the most allowed (an idle topic ` +
              `lapses after ${limits.retentionSeconds} s)`,
          );
        }
      }
      const seq = (head.value?.seq ?? 0) + 1;
      const at = Date.now();
      const op = kv.atomic().check(head)
        .set(headKey, { seq, at_ms: at } satisfies StoredHead, { expireIn })
        .set(
          busMessageKey(principal, topic, seq),
          { json, sha256, at_ms: at } satisfies StoredMessage,
          {
            expireIn,
          },
        );
      if (seq > limits.maxRetained) {
        op.delete(busMessageKey(principal, topic, seq - limits.maxRetained));
      }
      if ((await op.commit()).ok) {
        return { topic, seq, sha256, bytes, published_at: new Date(at).toISOString() };
      }
    }
    throw new Error(
      `Cannot publish to "${topic}": the topic kept changing under concurrent publishes`,
    );
  }

  async function read(principal: string, topic: string, after: number, limit: number) {
    const messages: BusMessage[] = [];
    const iter = kv.list<StoredMessage>({
      start: busMessageKey(principal, topic, after + 1),
      end: busMessageKey(principal, topic, Number.MAX_SAFE_INTEGER),
    }, { limit });
    for await (const e of iter) {
      messages.push({
        seq: e.key[e.key.length - 1] as number,
        message: JSON.parse(e.value.json),
        sha256: e.value.sha256,
        published_at: new Date(e.value.at_ms).toISOString(),
      });
    }
    return messages;
  }

  /** Resolves when the head passes `after`, the time is up or the signal fires. */
  async function waitForHead(
    key: Deno.KvKey,
    after: number,
    waitMs: number,
    signal?: AbortSignal,
  ): Promise<void> {
    const stream = kv.watch<[StoredHead]>([key]);
    const reader = stream.getReader();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stop = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, waitMs);
      signal?.addEventListener("abort", () => resolve(), { once: true });
    });
    try {
      while (true) {
        const next = await Promise.race([reader.read(), stop.then(() => undefined)]);
        if (next === undefined || next.done) return;
        if ((next.value[0].value?.seq ?? 0) > after) return;
      }
    } finally {
      clearTimeout(timer);
      await reader.cancel().catch(() => {});
    }
  }

  async function subscribe(
    principal: string,
    input: Parameters<BusService["subscribe"]>[1],
  ): Promise<SubscribeResult> {
    const { topic } = input;
    checkTopic(topic);
    const limit = Math.max(1, Math.min(limits.maxRetained, Math.floor(input.limit ?? 20)));
    const waitMs = Math.max(0, Math.floor(input.waitMs ?? 0));
    const headKey = busHeadKey(principal, topic);
    const headNow = async () => (await kv.get<StoredHead>(headKey)).value?.seq ?? 0;
    const head = await headNow();
    // A cursor past the head is from a topic that lapsed and started again: read it from the start.
    let cursor = input.afterSeq === undefined ? head : input.afterSeq > head ? 0 : input.afterSeq;
    const collected: BusMessage[] = [];
    let missed = 0;
    let waited = false;
    const take = async (batch: BusMessage[]) => {
      for (const m of batch) {
        if (collected.length === 0 && m.seq > cursor + 1) missed = m.seq - cursor - 1;
        collected.push(m);
        cursor = m.seq;
        await input.onMessage?.(m);
      }
    };
    await take(await read(principal, topic, cursor, limit));
    if (collected.length === 0 && waitMs > 0 && !input.signal?.aborted) {
      if (waiting >= limits.maxWaiting) {
        throw new BusError("busy", "Cannot wait: too many subscriptions are waiting; try again");
      }
      if ((waitingBy.get(principal) ?? 0) >= limits.maxWaitingPerPrincipal) {
        throw new BusError(
          "busy",
          `Cannot wait: this principal already has ${limits.maxWaitingPerPrincipal} ` +
            "subscriptions waiting",
        );
      }
      waiting++;
      waitingBy.set(principal, (waitingBy.get(principal) ?? 0) + 1);
      waited = true;
      try {
        const deadline = performance.now() + waitMs;
        while (collected.length === 0 && !input.signal?.aborted) {
          const left = deadline - performance.now();
          if (left <= 0) break;
          await waitForHead(headKey, cursor, left, input.signal);
          await take(await read(principal, topic, cursor, limit));
        }
      } finally {
        waiting--;
        const n = (waitingBy.get(principal) ?? 1) - 1;
        if (n <= 0) waitingBy.delete(principal);
        else waitingBy.set(principal, n);
      }
    }
    return {
      topic,
      messages: collected,
      next_after_seq: cursor,
      head: Math.max(cursor, await headNow()),
      missed,
      waited,
    };
  }

  return {
    limits,
    publish,
    subscribe,
    get waiting() {
      return waiting;
    },
  };
}

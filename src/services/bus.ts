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
import { encodeJsonValue } from "./_json_value.ts";

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
  /** Follows (`subscriptions/listen` streams) open at once in this process, and per principal. */
  readonly maxFollowing: number;
  readonly maxFollowingPerPrincipal: number;
  /** Topics one follow may name (one `kv.watch` of their heads: at most 10). */
  readonly maxTopicsPerFollow: number;
  /**
   * How often a waiting subscription or a follow also reads its heads, in ms: on a local KV
   * file a watch sees only its own process's writes, so another process's publish is seen
   * within this. 0: never (Deno Deploy, where the watch sees every isolate's writes).
   */
  readonly pollMs: number;
}

/** The defaults. */
export const DEFAULT_BUS_LIMITS: BusLimits = Object.freeze({
  maxMessageBytes: 16_384,
  maxRetained: 100,
  retentionSeconds: 3600,
  maxTopicsPerPrincipal: 100,
  maxWaiting: 256,
  maxWaitingPerPrincipal: 8,
  maxFollowing: 256,
  maxFollowingPerPrincipal: 4,
  maxTopicsPerFollow: 10,
  pollMs: 250,
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
  /**
   * Delivers every message published to `topics` of `principal` from now on, in order per
   * topic, to `onMessage` until `signal` aborts (a `subscriptions/listen` stream). Refused
   * (`BusError` "busy" or "bad_topic") before anything starts: too many follows, too many topics,
   * a bad name. A message that fell out of the kept window before it was read is counted in the
   * next one's `missed`.
   */
  follow(
    principal: string,
    topics: readonly string[],
    onMessage: (topic: string, m: BusMessage & { readonly missed: number }) => void,
    signal: AbortSignal,
    after?: readonly number[],
  ): void;
  /**
   * The topics' last sequence numbers (0 for a topic with none), e.g. read before a stream is
   * acknowledged and passed to {@link BusService.follow} as `after`, so nothing published after
   * the acknowledgement is missed.
   */
  heads(principal: string, topics: readonly string[]): Promise<number[]>;
  /** Subscriptions waiting now in this process. */
  readonly waiting: number;
  /** Follows open now in this process. */
  readonly following: number;
}

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

/** What a follow shares with its bus: the KV, the limits, the read, and the open follows. */
interface FollowContext {
  readonly kv: Deno.Kv;
  readonly limits: BusLimits;
  readonly read: (
    principal: string,
    topic: string,
    after: number,
    limit: number,
  ) => Promise<BusMessage[]>;
  readonly open: { count: number; readonly by: Map<string, number> };
}

/** {@link BusService.follow} over `ctx` (see there). */
function followTopics(
  ctx: FollowContext,
  principal: string,
  topics: readonly string[],
  onMessage: (topic: string, m: BusMessage & { readonly missed: number }) => void,
  signal: AbortSignal,
  after?: readonly number[],
): void {
  const { kv, limits, read, open } = ctx;
  const names = [...topics];
  if (new Set(names).size !== names.length) {
    throw new BusError("bad_topic", "Cannot follow a topic twice on one stream");
  }
  if (names.length === 0) throw new BusError("bad_topic", "Cannot follow no topic");
  if (names.length > limits.maxTopicsPerFollow) {
    throw new BusError(
      "busy",
      `Cannot follow ${names.length} topics on one stream: at most ${limits.maxTopicsPerFollow}`,
    );
  }
  for (const t of names) checkTopic(t);
  if (open.count >= limits.maxFollowing) {
    throw new BusError("busy", "Cannot follow: too many bus streams are open; try again");
  }
  if ((open.by.get(principal) ?? 0) >= limits.maxFollowingPerPrincipal) {
    throw new BusError(
      "busy",
      `Cannot follow: this principal already has ${limits.maxFollowingPerPrincipal} bus ` +
        "streams open",
    );
  }
  if (signal.aborted) return;
  open.count++;
  open.by.set(principal, (open.by.get(principal) ?? 0) + 1);
  const keys = names.map((t) => busHeadKey(principal, t));
  const cursors = new Map<string, number>();
  if (after !== undefined) names.forEach((t, i) => cursors.set(t, after[i] ?? 0));
  let reading: Promise<void> = Promise.resolve();
  let poller: ReturnType<typeof setInterval> | undefined;
  const stream = kv.watch<StoredHead[]>(keys);
  const reader = stream.getReader();

  /** Reads what each topic has past its cursor (heads as seen by the watch or a poll). */
  const catchUp = (heads: (number | undefined)[]) =>
    reading = reading.then(async () => {
      for (const [i, topic] of names.entries()) {
        const head = heads[i];
        if (signal.aborted) return;
        const cursor = cursors.get(topic);
        if (cursor === undefined) {
          // The first sight: only what is published from now on.
          cursors.set(topic, head ?? 0);
          continue;
        }
        if (head === undefined || head === cursor) continue;
        // A head below the cursor: the topic lapsed and started again.
        let at = head < cursor ? 0 : cursor;
        while (!signal.aborted) {
          const batch = await read(principal, topic, at, limits.maxRetained);
          if (batch.length === 0) break;
          for (const m of batch) {
            if (signal.aborted) return;
            onMessage(topic, { ...m, missed: Math.max(0, m.seq - at - 1) });
            at = m.seq;
          }
          if (at >= head) break;
        }
        cursors.set(topic, Math.max(at, head));
      }
    }).catch(() => {});

  const done = (async () => {
    try {
      while (!signal.aborted) {
        const next = await reader.read();
        if (next.done) break;
        await catchUp(next.value.map((e) => e.value?.seq ?? 0));
      }
    } catch {
      // The KV closed or the watch failed: the stream ends.
    }
  })();
  if (limits.pollMs > 0) {
    poller = setInterval(() => {
      if (cursors.size < names.length) return; // the watch's first sight is not in yet
      kv.getMany<StoredHead[]>(keys).then((es) => catchUp(es.map((e) => e.value?.seq ?? 0)))
        .catch(() => {});
    }, limits.pollMs);
  }
  signal.addEventListener("abort", () => {
    clearInterval(poller);
    reader.cancel().catch(() => {});
    void done;
    open.count--;
    const n = (open.by.get(principal) ?? 1) - 1;
    if (n <= 0) open.by.delete(principal);
    else open.by.set(principal, n);
  }, { once: true });
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
    const { json, bytes, sha256 } = encodeJsonValue(message, limits.maxMessageBytes, {
      missing: () => new BusError("bad_message", "Cannot publish no message"),
      notJson: () => new BusError("bad_message", "Cannot publish a message that is not JSON"),
      tooLarge: (bytes) =>
        new BusError(
          "too_large",
          `Cannot publish ${bytes} bytes: messages are at most ${limits.maxMessageBytes} bytes of JSON`,
        ),
    });
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
    let poller: ReturnType<typeof setInterval> | undefined;
    const stop = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, waitMs);
      signal?.addEventListener("abort", () => resolve(), { once: true });
      // Another process's publish on a local file wakes no watch here: read the head as well.
      if (limits.pollMs > 0) {
        poller = setInterval(() => {
          kv.get<StoredHead>(key).then((h) => {
            if ((h.value?.seq ?? 0) > after) resolve();
          }).catch(() => {});
        }, limits.pollMs);
      }
    });
    try {
      while (true) {
        const next = await Promise.race([reader.read(), stop.then(() => undefined)]);
        if (next === undefined || next.done) return;
        if ((next.value[0].value?.seq ?? 0) > after) return;
      }
    } finally {
      clearTimeout(timer);
      clearInterval(poller);
      await reader.cancel().catch(() => {});
    }
  }

  const open = { count: 0, by: new Map<string, number>() };
  const follow: BusService["follow"] = (principal, topics, onMessage, signal, after) =>
    followTopics({ kv, limits, read, open }, principal, topics, onMessage, signal, after);

  async function heads(principal: string, topics: readonly string[]): Promise<number[]> {
    for (const t of topics) checkTopic(t);
    const out: number[] = [];
    // getMany takes at most 10 keys.
    for (let i = 0; i < topics.length; i += 10) {
      const es = await kv.getMany<StoredHead[]>(
        topics.slice(i, i + 10).map((t) => busHeadKey(principal, t)),
      );
      for (const e of es) out.push(e.value?.seq ?? 0);
    }
    return out;
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
    follow,
    heads,
    get waiting() {
      return waiting;
    },
    get following() {
      return open.count;
    },
  };
}

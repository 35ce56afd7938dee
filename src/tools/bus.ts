/**
 * The bus tools: `bus_publish` and `bus_subscribe` — thin adapters over
 * `src/services/bus.ts`. Topics are the caller's own (per principal). A
 * subscription call streams each message to the client as it is taken
 * (`notifications/message`, and `notifications/progress` when the call has a
 * progress token) — on the 2025 path over the call's SSE stream — and returns
 * them all with the cursor to continue from. The vault records a message's
 * digest and size, never the message.
 *
 * @module
 */
import { z } from "zod";
import { BusError, type BusService, TOPIC_PATTERN } from "../services/mod.ts";
import { digestJson } from "../lib/mod.ts";
import { defineTool } from "../calls/mod.ts";
import { WRITE } from "./_annotations.ts";
import { toolFamily } from "./_services.ts";

/** Longest wait of one bus_subscribe call (below the default 25 s tool timeout). */
export const MAX_SUBSCRIBE_WAIT_S = 20;

const topic = z.string().regex(TOPIC_PATTERN).describe(
  "The topic: 1-128 letters, digits or . _ : - /. Topics are private to the caller.",
);

const message = z.object({
  seq: z.number().int(),
  message: z.unknown(),
  sha256: z.string(),
  published_at: z.string(),
});

/** The `bus_publish` tool. */
function busPublishTool({ bus }: BusToolServices) {
  return defineTool({
    name: "bus_publish",
    title: "Publish a message",
    description: "Publish a JSON message to one of the caller's own bus topics. Every instance " +
      "sharing the KV sees it; subscribers waiting on the topic are woken. A topic keeps its last " +
      "100 messages for an hour. The vault records the message's SHA-256 and size, not the message.",
    inputSchema: z.object({
      topic,
      message: z.unknown().refine((v) => v !== undefined, "a message is required").describe(
        "Any JSON value, at most 16384 bytes as JSON.",
      ),
    }),
    outputSchema: z.object({
      topic: z.string(),
      seq: z.number().int().describe("The message's sequence number in the topic (1, 2, …)."),
      sha256: z.string(),
      bytes: z.number().int(),
      published_at: z.string(),
    }),
    annotations: WRITE,
    recordArguments: ({ topic, message }) => {
      let sha256: string | null = null;
      try {
        sha256 = digestJson(message);
      } catch {
        // Not JSON: the call is refused anyway.
      }
      return { topic, message_sha256: sha256 };
    },
    expectedErrors: [BusError],
    handler: async ({ topic, message }, ctx) => {
      const data = await bus.publish(ctx.principal, topic, message);
      return { data, text: `Published #${data.seq} to "${topic}" (${data.bytes} bytes)` };
    },
  });
}

/** The `bus_subscribe` tool. */
function busSubscribeTool({ bus }: BusToolServices) {
  return defineTool({
    name: "bus_subscribe",
    title: "Subscribe to a topic",
    description:
      "Read the messages of one of the caller's own bus topics after after_seq (absent: " +
      "only messages published from now on; 0: every kept message). When there are none yet, " +
      `waits up to wait_s seconds (at most ${MAX_SUBSCRIBE_WAIT_S}) for a publish from any ` +
      "instance. Each message is also streamed to the client as a notifications/message while " +
      "the call runs. Call again with next_after_seq to carry on.",
    inputSchema: z.object({
      topic,
      after_seq: z.number().int().min(0).optional().describe(
        "Return messages after this sequence number.",
      ),
      wait_s: z.number().min(0).max(MAX_SUBSCRIBE_WAIT_S).default(10).describe(
        "Seconds to wait when nothing is there yet (keep it below --tool-timeout).",
      ),
      limit: z.number().int().min(1).max(100).default(20).describe("Most messages, 1-100."),
    }),
    outputSchema: z.object({
      topic: z.string(),
      messages: z.array(message),
      next_after_seq: z.number().int(),
      head: z.number().int(),
      missed: z.number().int().describe(
        "Messages after the cursor no longer kept (the topic moved past them).",
      ),
      waited: z.boolean(),
    }),
    annotations: {
      readOnlyHint: true,
      destructiveHint: false,
      idempotentHint: false,
      openWorldHint: false,
    },
    recordResult: (data) => ({
      topic: data.topic,
      seqs: data.messages.map((m) => m.seq),
      messages_sha256: data.messages.map((m) => m.sha256),
      next_after_seq: data.next_after_seq,
    }),
    expectedErrors: [BusError],
    handler: async ({ topic, after_seq, wait_s, limit }, ctx) => {
      let n = 0;
      const data = await bus.subscribe(ctx.principal, {
        topic,
        ...(after_seq !== undefined ? { afterSeq: after_seq } : {}),
        limit,
        waitMs: Math.round(wait_s * 1000),
        signal: ctx.signal,
        onMessage: async (m) => {
          n++;
          await ctx.client?.log("info", { bus: { topic, ...m } }).catch(() => {});
          await ctx.client?.progress(n, { total: limit, message: `${topic} #${m.seq}` })
            .catch(() => {});
        },
      });
      return {
        data,
        text: data.messages.length === 0
          ? `No new messages on "${topic}" (head ${data.head})`
          : `${data.messages.length} message(s) on "${topic}", up to #${data.next_after_seq}`,
      };
    },
  });
}

/** The services the bus tools use: the per-principal topics of JSON messages, and nothing else. */
export interface BusToolServices {
  readonly bus: BusService;
}

/**
 * bus_publish and bus_subscribe, given the bus (checked here, when the tools are made).
 */
export const createBusTools = toolFamily<BusToolServices>(
  "bus",
  ["bus"],
  [busPublishTool, busSubscribeTool],
);

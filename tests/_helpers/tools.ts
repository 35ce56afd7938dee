/** Tools that exist only in tests: deliberately faulty or slow. */
import { z } from "zod";
import { defineTool } from "../../src/calls/mod.ts";

const annotations = {
  readOnlyHint: true,
  destructiveHint: false,
  idempotentHint: true,
  openWorldHint: false,
};
const Out = z.object({ ok: z.boolean() });

/** Throws synchronously from its handler. */
export const crashTool = defineTool({
  name: "test_crash",
  title: "Crash",
  description: "Throws an exception on every call (fault-containment tests only).",
  inputSchema: z.object({
    mode: z.enum(["throw", "reject", "type_error", "bad_output"]).default("throw"),
  }),
  outputSchema: Out,
  annotations,
  handler(args) {
    if (args.mode === "reject") return Promise.reject(new Error("async boom"));
    if (args.mode === "type_error") {
      const nothing = null as unknown as { field: string };
      return { data: { ok: nothing.field === "x" }, text: "unreachable" };
    }
    if (args.mode === "bad_output") {
      return { data: { ok: "yes" as unknown as boolean }, text: "wrong shape" };
    }
    throw new Error("boom: deliberate crash");
  },
});

/** Leaves a rejected promise nobody awaits, then answers normally. */
export const strayRejectionTool = defineTool({
  name: "test_stray_rejection",
  title: "Stray rejection",
  description:
    "Starts a promise that rejects later and is never awaited (fault-containment tests).",
  inputSchema: z.object({}),
  outputSchema: Out,
  annotations,
  handler() {
    setTimeout(() => {
      Promise.reject(new Error("stray rejection nobody handles"));
    }, 5);
    return { data: { ok: true }, text: "started a stray rejection" };
  },
});

/** Sleeps for `ms` (honouring cancellation) and then answers. */
export const sleepTool = defineTool({
  name: "test_sleep",
  title: "Sleep",
  description:
    "Waits the given number of milliseconds, then answers (timeout and resumability tests).",
  inputSchema: z.object({
    ms: z.number().int().min(0).max(600_000),
    // Sends one progress notification (with the call's progress token) before sleeping.
    progress_first: z.boolean().optional(),
  }),
  outputSchema: z.object({ slept_ms: z.number() }),
  annotations,
  async handler(args, ctx) {
    if (args.progress_first) await ctx.client?.progress(1, { message: "started" });
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, args.ms);
      ctx.signal.addEventListener("abort", () => {
        clearTimeout(t);
        resolve();
      });
    });
    return { data: { slept_ms: args.ms }, text: `slept ${args.ms} ms` };
  },
});

export const testTools = [crashTool, strayRejectionTool, sleepTool];

/** Counts its executions, so a test can prove whether the pipeline let a call run. */
export function createCounterTool(
  name = "test_counter",
  annotations: Partial<typeof counterAnnotations> = {},
) {
  let runs = 0;
  const tool = defineTool({
    name,
    title: "Counter",
    description: "Increments a counter and echoes its note (governance tests only).",
    inputSchema: z.object({ note: z.string().max(10_000).default("") }),
    outputSchema: z.object({ runs: z.number(), note: z.string() }),
    annotations: { ...counterAnnotations, ...annotations },
    handler(args) {
      runs++;
      return { data: { runs, note: args.note }, text: `run ${runs}: ${args.note}` };
    },
  });
  return { tool, runs: () => runs };
}

const counterAnnotations = {
  readOnlyHint: false,
  destructiveHint: false,
  idempotentHint: false,
  openWorldHint: false,
};

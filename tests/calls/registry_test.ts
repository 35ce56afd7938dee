// The call path without MCP: a real registry (createApp's, over real governance, KV and
// ledger) called directly, as every adapter calls it.
import assert from "node:assert/strict";
import { z } from "zod";
import { createApp } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";
import { silentLogger } from "../../src/lib/mod.ts";
import {
  createCatalogue,
  defineTool,
  holdMessage,
  type NestedCalls,
  type ToolDefinition,
  ToolError,
} from "../../src/calls/mod.ts";

const annotations = {
  readOnlyHint: true,
  destructiveHint: false,
  idempotentHint: true,
  openWorldHint: false,
};

const echo = defineTool({
  name: "t_echo",
  title: "Echo",
  description: "Echoes its text.",
  inputSchema: z.object({ text: z.string().max(100) }),
  outputSchema: z.object({ text: z.string() }),
  annotations,
  handler: ({ text }) => ({ data: { text }, text: `echo ${text}` }),
});

let slowSignal: AbortSignal | undefined;
const slow = defineTool({
  name: "t_slow",
  title: "Slow",
  description: "Answers only when its signal aborts.",
  inputSchema: z.object({}),
  annotations,
  handler: (_args, ctx) => {
    slowSignal = ctx.signal;
    return new Promise<{ data: Record<string, never>; text: string }>((resolve) =>
      ctx.signal.addEventListener("abort", () => resolve({ data: {}, text: "late" }))
    );
  },
});

const failing = defineTool({
  name: "t_fail",
  title: "Fail",
  description: "Fails as asked.",
  inputSchema: z.object({ how: z.enum(["tool_error", "type_error", "bad_output"]) }),
  outputSchema: z.object({ n: z.number() }),
  annotations,
  handler: ({ how }) => {
    if (how === "tool_error") throw new ToolError("cannot divide by zero");
    if (how === "type_error") {
      const none = null as unknown as { n: number };
      return { data: { n: none.n }, text: "unreachable" };
    }
    return { data: { n: "one" as unknown as number }, text: "wrong shape" };
  },
});

class QuotaError extends Error {}
class OtherDomainError extends Error {}

const storing = defineTool({
  name: "t_store",
  title: "Store",
  description: "Fails with a domain error as asked.",
  inputSchema: z.object({ how: z.enum(["quota", "range", "other"]) }),
  annotations,
  expectedErrors: [{ error: QuotaError, prefix: "Cannot store: " }, RangeError],
  handler: ({ how }) => {
    if (how === "quota") throw new QuotaError("quota of 10 values reached");
    if (how === "range") throw new RangeError("ttl out of range");
    throw new OtherDomainError("not listed");
  },
});

/** Calls t_echo through the registry's nested calls, which it is given when made. */
const nesting = ({ callTool }: NestedCalls) =>
  defineTool({
    name: "t_nest",
    title: "Nest",
    description: "Calls t_echo through the full pipeline.",
    inputSchema: z.object({}),
    annotations,
    handler: async (_args, ctx) => {
      const inner = await callTool("t_echo", { text: "inner" }, ctx);
      return { data: { inner: inner.text }, text: inner.text };
    },
  });

async function withRegistry(
  fn: (app: Awaited<ReturnType<typeof createApp>>) => Promise<void>,
): Promise<void> {
  const kv = await Deno.openKv(":memory:");
  const app = await createApp(
    loadConfig(["--kv", ":memory:", "--tool-timeout", "100"], () => undefined),
    {
      kv,
      logger: silentLogger,
      extraTools: (nested) =>
        [echo, slow, failing, storing, nesting(nested)] as unknown as ToolDefinition[],
    },
  );
  try {
    await fn(app);
  } finally {
    await app.close();
    kv.close();
  }
}

const caller = { principal: "anonymous", transport: "test" };

Deno.test("calls: an own tool runs through governance, is sealed and enveloped", async () => {
  await withRegistry(async ({ registry, ledger }) => {
    const before = (await ledger.head()).size;
    const outcome = await registry.call("t_echo", { text: "hi" }, caller);
    assert.equal(outcome.isError, false, outcome.text);
    assert.equal(outcome.verdict, "SEAL");
    assert.equal(outcome.envelope?.status, "OK");
    assert.deepEqual(outcome.envelope?.data, { text: "hi" });
    assert.equal(outcome.vault?.index, before);
    assert.equal((await ledger.head()).size, before + 1);
  });
});

Deno.test("calls: an unknown tool and bad arguments are told apart, and facts() says why", async () => {
  await withRegistry(async ({ registry }) => {
    const unknown = await registry.call("t_missing", {}, caller);
    assert.equal(unknown.errorKind, "unknown_tool");
    assert.equal(unknown.text, "Unknown tool: t_missing");
    assert.equal(unknown.envelope, undefined);
    assert.equal(registry.facts("t_missing", {}, caller).request.tool.registered, false);

    const bad = await registry.call("t_echo", { text: 5 }, caller);
    assert.equal(bad.errorKind, "invalid_arguments");
    assert.equal(bad.envelope?.status, "BLOCKED");
    const facts = registry.facts("t_echo", { text: 5 }, caller);
    assert.equal(facts.parsed, undefined);
    assert.match(facts.request.call.schemaIssues.join(), /^`text`: /);
    assert.deepEqual(registry.facts("t_echo", { text: "ok" }, caller).parsed, { text: "ok" });
  });
});

Deno.test("calls: the deadline ends a slow handler as a timeout and aborts its signal", async () => {
  await withRegistry(async ({ registry }) => {
    const started = performance.now();
    const outcome = await registry.call("t_slow", {}, caller);
    assert.equal(outcome.errorKind, "timeout");
    assert.match(outcome.text, /timed out after 100 ms/);
    assert.ok(performance.now() - started < 5_000);
    assert.equal(slowSignal?.aborted, true);
    assert.equal((slowSignal?.reason as DOMException).name, "TimeoutError");
  });
});

Deno.test("calls: a ToolError is the tool's answer; a TypeError is a contained fault; bad output is caught", async () => {
  await withRegistry(async ({ registry }) => {
    const told = await registry.call("t_fail", { how: "tool_error" }, caller);
    assert.equal(told.errorKind, "tool_error");
    assert.match(told.text, /^ERROR · .*cannot divide by zero/);

    const fault = await registry.call("t_fail", { how: "type_error" }, caller);
    assert.equal(fault.errorKind, "fault");
    assert.match(fault.text, /t_fail failed with an internal error; other tools are unaffected/);
    assert.doesNotMatch(fault.text, /null/); // the fault's message stays in the log

    const shape = await registry.call("t_fail", { how: "bad_output" }, caller);
    assert.equal(shape.errorKind, "invalid_output");

    // The next call is unaffected.
    assert.equal((await registry.call("t_echo", { text: "after" }, caller)).isError, false);
  });
});

Deno.test("calls: expectedErrors are the tool's answer (with their prefix); anything unlisted is a fault", async () => {
  await withRegistry(async ({ registry }) => {
    const quota = await registry.call("t_store", { how: "quota" }, caller);
    assert.equal(quota.errorKind, "tool_error");
    assert.match(quota.text, /Cannot store: quota of 10 values reached/);
    const range = await registry.call("t_store", { how: "range" }, caller);
    assert.equal(range.errorKind, "tool_error");
    assert.match(range.text, /ttl out of range/);
    const other = await registry.call("t_store", { how: "other" }, caller);
    assert.equal(other.errorKind, "fault");
    assert.doesNotMatch(other.text, /not listed/);
  });
});

Deno.test("calls: a nested call takes the same path (governed and sealed on its own)", async () => {
  await withRegistry(async ({ registry, ledger }) => {
    const before = (await ledger.head()).size;
    const outcome = await registry.call("t_nest", {}, caller);
    assert.equal(outcome.isError, false, outcome.text);
    assert.match(String((outcome.envelope?.data as { inner?: string } | null)?.inner), /^SEAL · /);
    assert.equal((await ledger.head()).size, before + 2);
    const tools: string[] = [];
    for await (const e of ledger.entries(before, before + 2)) {
      tools.push(JSON.parse(new TextDecoder().decode(e.bytes)).tool);
    }
    assert.deepEqual(tools.sort(), ["t_echo", "t_nest"]);
  });
});

Deno.test("calls: the catalogue refuses bad and duplicate names, and hashes each definition", () => {
  assert.throws(
    () => createCatalogue([{ ...echo, name: "bad name" }] as never),
    /invalid tool name/,
  );
  assert.throws(() => createCatalogue([echo, echo] as never), /already registered/);
  const one = createCatalogue([echo] as never);
  const other = createCatalogue([{ ...echo, description: "Changed." }] as never);
  assert.match(one.hashOf("t_echo")!, /^[0-9a-f]{64}$/);
  assert.notEqual(one.hashOf("t_echo"), other.hashOf("t_echo")); // F10 sees a changed definition
  assert.deepEqual(one.names, ["t_echo"]);
  assert.equal(one.upstream("t_echo"), undefined);
  const [descriptor] = one.list();
  assert.equal(
    (descriptor.outputSchema?.properties as Record<string, unknown>).status !== undefined,
    true,
  );
});

Deno.test("calls: the hold prompt names the tool, the hold, the reasons and how to approve", () => {
  const text = holdMessage({ id: "h-1", tool: "rm_rf", reasons: ["destructive", "kill switch"] });
  assert.match(text, /"rm_rf"/);
  assert.match(text, /Reasons: destructive; kill switch\./);
  assert.match(text, /warden approve h-1/);
});

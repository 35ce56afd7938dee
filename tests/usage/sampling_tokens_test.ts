// deno-lint-ignore-file no-explicit-any -- results are probed field by field
// Tokens from sampling (issue 14 §2): when a tool uses the client's model
// (critique_thought, secure_execute's prompt without an endpoint), the tokens
// and model the client reports are recorded in usage, priced, and counted
// against the token budget — on 2025 (a server→client request) and on
// 2026-07-28 (an input_required round), with the SDKs' own clients.
import assert from "node:assert/strict";
import {
  Client as V2Client,
  StreamableHTTPClientTransport as V2Transport,
} from "@modelcontextprotocol/client";
// @ts-types="@modelcontextprotocol/sdk/types"
import { CreateMessageRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { Client, StreamableHTTPClientTransport } from "../_helpers/client.ts";
import { startServer } from "../_helpers/server.ts";

/** An answer with the token counts the client reports (MCP's result has no field for them). */
const reply = (inputTokens: number, outputTokens: number, where: "result" | "meta") => ({
  role: "assistant",
  content: { type: "text", text: "- The plan overclaims." },
  model: "client-model",
  stopReason: "endTurn",
  ...(where === "result"
    ? { usage: { inputTokens, outputTokens } }
    : { _meta: { usage: { input_tokens: inputTokens, output_tokens: outputTokens } } }),
});

Deno.test("sampling tokens: recorded per tool with the model, priced, and counted against the token budget, on 2025 and 2026-07-28", async () => {
  await using server = await startServer({
    policy: {
      execution: { prompt: { models: ["client-model"] } },
      prices: {
        secure_execute: { per_1k_input_tokens: 1000, per_1k_output_tokens: 2000 },
        critique_thought: { per_call: 5, per_1k_input_tokens: 1000 },
      },
      // 4 calls × (100 + 20) tokens = 480: the fifth is admitted (480 < 500), the sixth refused.
      budgets: { tokens_per_day: 500 },
    },
  });
  const from = Date.now() - 1000;
  const env = (r: any) => r.structuredContent;

  // 2025: server→client requests; the report on the result.
  const v1 = new Client({ name: "v1-model", version: "1" }, { capabilities: { sampling: {} } });
  v1.setRequestHandler(CreateMessageRequestSchema, () => reply(100, 20, "result") as never);
  await v1.connect(new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`)));
  const a = env(await v1.callTool({ name: "secure_execute", arguments: { prompt: "hi" } }));
  assert.equal(a.status, "OK", JSON.stringify(a));
  assert.deepEqual(a.data.usage, { input_tokens: 100, output_tokens: 20 });
  assert.equal(a.data.model, "client-model");
  const sid = env(
    await v1.callTool({ name: "anchor_session", arguments: { query: "ship the notes" } }),
  ).data.session_id;
  const c1 = env(
    await v1.callTool({
      name: "critique_thought",
      arguments: { session_id: sid, plan: { steps: ["always ship"] } },
    }),
  );
  assert.equal(c1.data.sampling.used, true, JSON.stringify(c1.data));
  assert.equal(c1.data.sampling.model, "client-model");
  assert.deepEqual(c1.data.usage, { input_tokens: 100, output_tokens: 20 });
  await v1.close();

  // 2026-07-28: input_required rounds; the report in the result's _meta.
  const v2 = new V2Client({ name: "v2-model", version: "1" }, {
    capabilities: { sampling: {} },
    versionNegotiation: { mode: { pin: "2026-07-28" } },
  });
  v2.setRequestHandler("sampling/createMessage", () => reply(100, 20, "meta") as never);
  await v2.connect(new V2Transport(new URL(`${server.url}/mcp`)));
  const b = env(await v2.callTool({ name: "secure_execute", arguments: { prompt: "hi" } }));
  assert.equal(b.status, "OK", JSON.stringify(b));
  assert.deepEqual(b.data.usage, { input_tokens: 100, output_tokens: 20 });
  const sid2 = env(
    await v2.callTool({ name: "anchor_session", arguments: { query: "ship the notes" } }),
  ).data.session_id;
  const c2 = env(
    await v2.callTool({
      name: "critique_thought",
      arguments: { session_id: sid2, plan: { steps: ["always ship"] } },
    }),
  );
  assert.deepEqual(c2.data.usage, { input_tokens: 100, output_tokens: 20 }, JSON.stringify(c2));

  // The token budget: 480 used, so one more call runs (600 then), and the next is refused.
  const fifth = env(await v2.callTool({ name: "secure_execute", arguments: { prompt: "hi" } }));
  assert.equal(fifth.status, "OK", JSON.stringify(fifth));
  const sixth = env(await v2.callTool({ name: "secure_execute", arguments: { prompt: "hi" } }));
  assert.equal(sixth.policy_verdict, "SABAR", JSON.stringify(sixth));
  assert.ok(sixth._constitutional.retry_after_s > 0);
  assert.match(JSON.stringify(sixth._constitutional.reasons), /used 600 model tokens today/);
  await v2.close();

  const res = await fetch(`${server.url}/api/usage?from=${from}&group_by=tool`);
  assert.equal(res.status, 200);
  const rows = (await res.json()).rows as any[];
  const row = (tool: string) => rows.find((r) => r.tool === tool);
  // secure_execute: 3 ran with 120 tokens each (100 × 1 + 20 × 2 = 140 units each); the refused
  // one is free. Calls: 1 on 2025, 2 × 2 on 2026 (the asking round and its retry), the refused one.
  assert.equal(row("secure_execute").tokens, 360);
  assert.equal(row("secure_execute").cost, 3 * 140);
  assert.equal(row("secure_execute").calls, 6);
  // critique_thought: 2 × (5 + 100 × 1) units.
  assert.equal(row("critique_thought").tokens, 240);
  assert.equal(row("critique_thought").cost, 2 * 105);
});

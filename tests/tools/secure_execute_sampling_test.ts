// deno-lint-ignore-file no-explicit-any -- results are probed field by field
// secure_execute kind prompt without a configured endpoint goes to the
// caller's own model through MCP sampling: a server→client request on a 2025
// session, an input_required round on 2026-07-28. PII is redacted before it
// leaves even then; without sampling the call is refused saying so; fortress
// needs an allowlist and checks the model that answered.
import assert from "node:assert/strict";
import {
  Client as V2Client,
  StreamableHTTPClientTransport as V2Transport,
} from "@modelcontextprotocol/client";
// @ts-types="@modelcontextprotocol/sdk/types"
import { CreateMessageRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { Client, StreamableHTTPClientTransport } from "../_helpers/client.ts";
import { startServer } from "../_helpers/server.ts";

const REPLY = (model: string) => ({
  role: "assistant",
  content: { type: "text", text: "The note is about a payment." },
  model,
  stopReason: "endTurn",
});

Deno.test("secure_execute prompt through the client's model: 2025 sampling and 2026 input_required, redacted", async () => {
  await using server = await startServer({
    policy: { execution: { prompt: { models: ["client-model"] } } },
  });
  const env = (r: any) => r.structuredContent;
  const prompt = "Summarise: alice@example.com owes 5 EUR";

  // 2025 session: a server→client sampling request.
  const seen: string[] = [];
  const v1 = new Client({ name: "v1-model", version: "1" }, { capabilities: { sampling: {} } });
  v1.setRequestHandler(CreateMessageRequestSchema, (req: any) => {
    seen.push(req.params.messages[0].content.text);
    return REPLY("client-model") as never;
  });
  await v1.connect(new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`)));
  const a = env(await v1.callTool({ name: "secure_execute", arguments: { prompt } }));
  assert.equal(a.status, "OK", JSON.stringify(a));
  assert.equal(a.data.response, "The note is about a payment.");
  assert.equal(a.data.runtime.endpoint, "mcp-sampling");
  assert.equal(a.data.model, "client-model");
  assert.equal(seen.length, 1);
  assert.doesNotMatch(seen[0], /alice@example\.com/, "PII never leaves, not even to the caller");
  assert.ok((a.data.prompt_redactions.email ?? 0) >= 1, JSON.stringify(a.data.prompt_redactions));

  // fortress: the allowlist is checked against the model that answered.
  const v1Other = new Client({ name: "v1-other", version: "1" }, {
    capabilities: { sampling: {} },
  });
  v1Other.setRequestHandler(CreateMessageRequestSchema, () => REPLY("another-model") as never);
  await v1Other.connect(new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`)));
  const f = env(
    await v1Other.callTool({
      name: "secure_execute",
      arguments: { prompt: "hello", security_level: "fortress" },
    }),
  );
  assert.notEqual(f.status, "OK");
  assert.match(f.message, /another-model.*not in policy execution\.prompt\.models/);
  await v1Other.close();
  await v1.close();

  // 2026-07-28: the same through an input_required round.
  const asked: string[] = [];
  const v2 = new V2Client({ name: "v2-model", version: "1" }, {
    capabilities: { sampling: {} },
    versionNegotiation: { mode: { pin: "2026-07-28" } },
  });
  v2.setRequestHandler("sampling/createMessage", (req: any) => {
    asked.push(req.params.messages[0].content.text);
    return REPLY("client-model") as never;
  });
  await v2.connect(new V2Transport(new URL(`${server.url}/mcp`)));
  const b = env(await v2.callTool({ name: "secure_execute", arguments: { prompt } }));
  assert.equal(b.status, "OK", JSON.stringify(b));
  assert.equal(b.data.response, "The note is about a payment.");
  assert.equal(asked.length, 1);
  assert.doesNotMatch(asked[0], /alice@example\.com/);
  await v2.close();

  // No endpoint and no sampling: refused, saying both.
  const plain = new Client({ name: "no-sampling", version: "1" });
  await plain.connect(new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`)));
  const c = env(await plain.callTool({ name: "secure_execute", arguments: { prompt: "hi" } }));
  assert.equal(c.policy_verdict, "VOID", JSON.stringify(c));
  assert.match(c.message, /offers no MCP sampling/);
  await plain.close();
});

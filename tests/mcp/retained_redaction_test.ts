/**
 * Secrets stay secret in what Warden keeps (issue 9 §4): the session record's
 * client info, SSE events in the event store, log lines, refused hold
 * decisions and elicitation answers are redacted with the vault's detectors.
 */
// @ts-types="@modelcontextprotocol/sdk/types"
import { ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import assert from "node:assert/strict";
import {
  Client,
  connectStreamable,
  envelopeOf,
  StreamableHTTPClientTransport,
} from "../_helpers/client.ts";
import { startServer, type TestServer } from "../_helpers/server.ts";
import { createCounterTool } from "../_helpers/tools.ts";
import { pollUntil } from "../_helpers/wait.ts";

// Made-up strings of the shapes F6 knows.
const OPENAI = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t";
const GITHUB = "ghp_" + "A1b2C3d4".repeat(5);
const AWS_ID = "AKIAIOSFODNN7EXAMPLE";

const OPERATOR = {
  name: "ops",
  public_key: btoa(String.fromCharCode(...new Uint8Array(32).fill(7))),
};

async function kvText(server: TestServer, prefix: Deno.KvKey): Promise<string[]> {
  const out: string[] = [];
  for await (const e of server.kv.list({ prefix })) out.push(JSON.stringify(e.value));
  return out;
}

async function ledgerText(server: TestServer): Promise<string> {
  const { size } = await server.app.ledger.head();
  let text = "";
  for await (const e of server.app.ledger.entries(0, size)) {
    text += new TextDecoder().decode(e.bytes) + "\n";
  }
  return text;
}

Deno.test("retained text: the session record's client info and stored SSE events are redacted", async () => {
  const counter = createCounterTool();
  await using server = await startServer({ extraTools: [counter.tool] });
  const { client, transport } = await connectStreamable(server.url, {
    name: `agent ${OPENAI}`,
  });
  // A `_meta` key only the SDK's path handles: that path stores every event it sends (the
  // direct path stores only a cut-off stream's, through the same redaction: event_store_test).
  const r = await client.callTool({
    name: "test_counter",
    arguments: { note: `deploy with ${GITHUB}` },
    _meta: { "x-test": 1 },
  });
  // The live reply is the caller's own: untouched.
  assert.match(JSON.stringify(r), new RegExp(GITHUB));
  const sessionId = transport.sessionId!;
  const sessions = JSON.stringify((await server.kv.get(["session", sessionId])).value);
  assert.match(sessions, /\[REDACTED:api_key\]/);
  assert.ok(!sessions.includes(OPENAI), "client info kept unredacted in the session record");
  // Events are written behind the reply: wait for the tools/call reply to be stored.
  const events = await pollUntil(
    () => kvText(server, ["mcp_event", sessionId]),
    (texts) => texts.some((e) => e.includes("REDACTED:api_key")),
    { timeoutMs: 2_000, intervalMs: 20 },
  );
  const stored = events.join("\n");
  assert.match(stored, /\[REDACTED:api_key\]/, "the reply event was not stored");
  assert.ok(!stored.includes(GITHUB), "a stored SSE event kept the secret");
  await client.close();
});

Deno.test("retained text: log lines, refused hold decisions and elicitation answers are redacted", async () => {
  const lines: string[] = [];
  const counter = createCounterTool("test_held");
  await using server = await startServer({
    extraTools: [counter.tool],
    policy: { tools: { test_held: { hold: true } }, operators: [OPERATOR] },
    logLines: (line) => lines.push(line),
  });
  // A client whose elicitation handler fails with a secret in its error: the server logs it.
  const client = new Client({ name: "human", version: "1" }, {
    capabilities: { elicitation: {} },
  });
  client.setRequestHandler(ElicitRequestSchema, () => {
    throw new Error(`cannot ask: token ${OPENAI}`);
  });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`)));
  const env = envelopeOf(
    await client.callTool({ name: "test_held", arguments: { note: "rotate" } }),
  );
  assert.equal(env.policy_verdict, "888_HOLD");
  const holdId = env._constitutional.hold.id as string;
  const failed = lines.find((l) => l.includes("elicitation for a hold failed"));
  assert.ok(failed, `no elicitation failure logged: ${lines.join("\n")}`);
  assert.ok(!lines.join("\n").includes(OPENAI), `a log line kept the secret: ${failed}`);

  // An operator name is caller-chosen text: a refused decision seals it redacted.
  const res = await fetch(`${server.url}/holds/${holdId}/deny`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ operator: AWS_ID, signature: btoa("x".repeat(64)) }),
  });
  assert.equal(res.status, 403);
  await res.body?.cancel();
  const sealed = await ledgerText(server);
  assert.match(sealed, /hold_decision_refused/);
  assert.ok(!sealed.includes(AWS_ID), "a refused decision sealed the operator text as sent");

  // An elicitation answer is one of accept/decline/cancel; free text is a decline, never kept.
  const answered = await server.app.governance.holds.recordHuman(holdId, `ok ${GITHUB}`);
  assert.equal(answered?.human?.action, "decline");
  assert.equal(answered?.status, "denied");
  assert.ok(!JSON.stringify(await server.app.governance.holds.get(holdId)).includes(GITHUB));
  await client.close();
});

Deno.test("retained text: an unknown tool's name is sealed redacted, in its record and its reasons", async () => {
  await using server = await startServer();
  const { client } = await connectStreamable(server.url);
  // The caller is told about its own name (-32602); the vault keeps it redacted.
  await assert.rejects(client.callTool({ name: GITHUB, arguments: {} }), /Unknown tool/);
  const sealed = await ledgerText(server);
  assert.match(sealed, /"tool":"\[REDACTED:api_key\]"/);
  assert.ok(!sealed.includes(GITHUB.slice(0, 16)), "the unknown tool's name was sealed as sent");
  await client.close();
});

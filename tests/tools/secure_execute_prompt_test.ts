// deno-lint-ignore-file no-explicit-any -- envelopes and requests are probed field by field
/**
 * secure_execute kind prompt against a real OpenAI-compatible endpoint on
 * loopback (Deno.serve on an ephemeral port stands in for the model, which
 * cannot run here): what the endpoint received is checked for redaction,
 * the key is sent to it and nowhere else, tokens and cost land in usage,
 * and a slow, oversized or broken endpoint is a clear tool error.
 */
import assert from "node:assert/strict";
import { openReceipt } from "../../src/vault/mod.ts";
import { sha256HexOfText } from "../../src/lib/mod.ts";
import { connectStreamable, envelopeOf } from "../_helpers/client.ts";
import { startServer, type TestServer } from "../_helpers/server.ts";

const API_KEY = `sk-test-${"k".repeat(24)}`;
const EMAIL = "jane.doe@example.com";
const AWS = "AKIAIOSFODNN7EXAMPLE";

interface Received {
  readonly authorization: string | null;
  readonly path: string;
  readonly body: any;
}

function startEndpoint() {
  const received: Received[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const body = await req.json();
    received.push({
      authorization: req.headers.get("authorization"),
      path: new URL(req.url).pathname,
      body,
    });
    const prompt = body.messages?.[0]?.content ?? "";
    if (body.model === "slow") {
      await new Promise((r) => setTimeout(r, 1500));
    }
    if (body.model === "huge") return new Response("x".repeat(100_000));
    if (body.model === "broken") return new Response("<html>oops</html>");
    const content = body.model === "leaky"
      ? `write to ${EMAIL.replace("jane", "john")}`
      : `echo: ${prompt}`;
    return Response.json({
      id: "chatcmpl-1",
      model: body.model,
      choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
      usage: { prompt_tokens: 1500, completion_tokens: 500, total_tokens: 2000 },
    });
  });
  return { received, server, port: server.addr.port };
}

function policyFor(port: number) {
  return {
    rate_limits: { per_principal_per_minute: 0, per_ip_per_minute: 0 },
    execution: {
      prompt: {
        endpoint_url: `http://127.0.0.1:${port}/v1`,
        model: "tiny-1",
        models: ["tiny-1", "leaky", "slow", "huge", "broken"],
        timeout_ms: 500,
        max_response_bytes: 4096,
      },
    },
    prices: { secure_execute: { per_1k_input_tokens: 2000, per_1k_output_tokens: 6000 } },
    store_bodies: true,
  };
}

async function vaultText(server: TestServer): Promise<string> {
  const head = await server.app.ledger.head();
  let out = "";
  for await (const e of server.app.ledger.entries(0, head.size)) {
    out += new TextDecoder().decode(e.bytes) + "\n";
  }
  return out;
}

Deno.test({
  name:
    "secure_execute prompt: redacted before it leaves, key sent only to the endpoint, tokens in usage",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const endpoint = startEndpoint();
    const server = await startServer({
      policy: policyFor(endpoint.port),
      env: { WARDEN_CHAT_API_KEY: API_KEY },
    });
    try {
      const { client } = await connectStreamable(server.url);
      const call = async (args: Record<string, unknown>) =>
        envelopeOf(await client.callTool({ name: "secure_execute", arguments: args }));
      const from = Date.now() - 1000;
      const prompt = `Summarise the account of ${EMAIL}, key ${AWS}`;
      const env = await call({ prompt, security_level: "verified" });
      // F6 saw PII in the arguments: the call runs, its vault record redacted.
      assert.equal(env.policy_verdict, "PARTIAL", env.message);
      assert.equal(endpoint.received.length, 1);
      const got = endpoint.received[0];
      assert.equal(got.path, "/v1/chat/completions");
      assert.equal(got.authorization, `Bearer ${API_KEY}`);
      assert.equal(got.body.model, "tiny-1");
      const sent = got.body.messages[0].content;
      assert.doesNotMatch(sent, /jane\.doe|AKIA/);
      assert.equal(sent, "Summarise the account of [REDACTED:email], key [REDACTED:api_key]");
      assert.deepEqual(env.data.prompt_redactions, { email: 1, api_key: 1 });
      assert.equal(env.data.response, `echo: ${sent}`);
      assert.deepEqual(env.data.usage, { input_tokens: 1500, output_tokens: 500 });
      // The receipt signs the digest of exactly what the endpoint received.
      const receipt = await openReceipt(env.data.receipt.note, server.app.identity.signer.vkey);
      assert.equal(receipt.input_sha256, sha256HexOfText(sent));
      assert.equal(receipt.runtime.endpoint, `http://127.0.0.1:${endpoint.port}`);
      assert.equal(receipt.runtime.model, "tiny-1");

      // Tokens and cost per principal and tool: 1.5k × 2000 + 0.5k × 6000.
      const res = await fetch(`${server.url}/api/usage?from=${from}&group_by=tool`);
      const row = (await res.json()).rows.find((r: any) => r.tool === "secure_execute");
      assert.equal(row.tokens, 2000);
      assert.equal(row.cost, 6000);

      // Fortress: allowlisted models only; the answer is redacted too.
      const refused = await call({ prompt: "hi", model: "gpt-x", security_level: "fortress" });
      assert.equal(refused.policy_verdict, "VOID");
      assert.match(refused.message, /model "gpt-x" is not in policy execution\.prompt\.models/);
      const leaky = await call({ prompt: "who?", model: "leaky", security_level: "fortress" });
      assert.equal(leaky.data.response, "write to [REDACTED:email]");
      assert.deepEqual(leaky.data.redactions, { email: 1 });

      // A slow, oversized or broken endpoint is a clear error; the server keeps answering.
      for (
        const [model, message] of [
          ["slow", /did not (answer|finish answering) within 500 ms/],
          ["huge", /over 4096 bytes/],
          ["broken", /not JSON/],
        ] as const
      ) {
        const r = await client.callTool({
          name: "secure_execute",
          arguments: { prompt: "hi", model },
        });
        assert.equal(r.isError, true, model);
        assert.match((r.content as any)[0].text, message, model);
        const after = envelopeOf(
          await client.callTool({ name: "calculate", arguments: { expression: "1+1" } }),
        );
        assert.equal(after.data.result, 2);
      }
      // Neither the PII nor the key reached the vault.
      const vault = await vaultText(server);
      assert.doesNotMatch(vault, /jane\.doe|AKIAIOSF|sk-test-/);
      await client.close();
    } finally {
      await server.close();
      await endpoint.server.shutdown();
    }
  },
});

Deno.test({
  name:
    "secure_execute prompt without a configured endpoint is refused (VOID) naming the policy field",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const server = await startServer();
    try {
      const res = await server.app.registry.call("secure_execute", { prompt: "hello" }, {
        principal: "anonymous",
        transport: "test",
      });
      assert.equal(res.verdict, "VOID");
      assert.match(
        res.text,
        /no chat endpoint is configured \(policy execution\.prompt\.endpoint_url\)/,
      );
    } finally {
      await server.close();
    }
  },
});

// deno-lint-ignore-file no-explicit-any -- results are probed field by field
// critique_thought on the 2026-07-28 path asks the client's model through an
// input_required result (there are no server→client requests there): the v2
// client answers with its sampling handler and retries, and the retry's
// result carries the model's critique. The first round is sealed as
// input_required, not as a fault. Without the sampling capability the tool
// runs without it and says so.
import assert from "node:assert/strict";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { startServer } from "../_helpers/server.ts";

Deno.test("modern: critique_thought samples the client's model via input_required", async () => {
  await using server = await startServer();
  const connect = async (sampling: boolean) => {
    const client = new Client({ name: "model-owner", version: "1.0.0" }, {
      capabilities: sampling ? { sampling: {} } : {},
      versionNegotiation: { mode: { pin: "2026-07-28" } },
    });
    const asked: any[] = [];
    if (sampling) {
      client.setRequestHandler("sampling/createMessage", (req: any) => {
        asked.push(req.params);
        return {
          role: "assistant",
          content: { type: "text", text: "- The plan overclaims 'always'." },
          model: "test-model",
          stopReason: "endTurn",
        } as never;
      });
    }
    await client.connect(new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`)));
    return { client, asked };
  };
  for (const sampling of [true, false]) {
    const { client, asked } = await connect(sampling);
    const anchor: any = await client.callTool({
      name: "anchor_session",
      arguments: { query: "publish the release notes" },
    });
    const sid = anchor.structuredContent.data.session_id;
    const r: any = await client.callTool({
      name: "critique_thought",
      arguments: { session_id: sid, plan: { steps: ["always publish on Friday"] } },
    });
    const env = r.structuredContent;
    assert.equal(env.status, "OK", JSON.stringify(env));
    if (sampling) {
      assert.equal(asked.length, 1);
      assert.match(asked[0].messages[0].content.text, /always publish on Friday/);
      assert.equal(env.data.sampling.used, true, JSON.stringify(env.data.sampling));
      assert.match(env.data.sampling.critique, /overclaims/);
    } else {
      assert.equal(env.data.sampling.used, false);
      assert.match(env.data.sampling.reason, /does not offer MCP sampling/);
    }
    await client.close();
  }
  // The asking round is in the vault as input_required, never as a fault.
  const size = (await server.app.ledger.head()).size;
  const kinds: string[] = [];
  for (let i = 0; i < size; i++) {
    const e = await server.app.ledger.entry(i);
    const rec = JSON.parse(new TextDecoder().decode(e!.bytes));
    if (rec.tool === "critique_thought") kinds.push(rec.error_kind ?? rec.outcome ?? "ok");
  }
  assert.deepEqual(kinds, ["input_required", "ok", "ok"]);
});

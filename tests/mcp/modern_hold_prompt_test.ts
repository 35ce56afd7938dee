// deno-lint-ignore-file no-explicit-any -- results are probed field by field
// 888_HOLD on the 2026-07-28 path: a client that declares elicitation is asked
// in-band through an input_required result; the requestState is sealed with a
// key both processes share (the rounds reach different instances here), a
// decline denies the hold, an accept is recorded, and only the operator's
// signature releases the call, exactly once. A tampered or foreign state is
// refused with -32602.
import assert from "node:assert/strict";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { runCli as cli } from "../_helpers/cli.ts";
import { spawnServer } from "../_helpers/server.ts";

const TOKEN = "a-test-token-of-24-chars";

Deno.test("modern: a held call asks the human via input_required; decline denies, accept still needs a signature", async () => {
  const dir = await Deno.makeTempDir();
  const keygen = await cli(["keygen", "--out", `${dir}/op`, "--name", "alice"]);
  assert.equal(keygen.code, 0, keygen.stderr);
  const pub = (await Deno.readTextFile(`${dir}/op/operator.pub`)).trim();
  await Deno.writeTextFile(
    `${dir}/policy.json`,
    JSON.stringify({
      tools: { calculate: { hold: true } },
      operators: [{ name: "alice", public_key: pub }],
      rate_limits: { per_principal_per_minute: 0, max_concurrent_per_principal: 0 },
    }),
  );
  const common = ["--kv", `${dir}/shared.db`, "--policy", `${dir}/policy.json`, "--token", TOKEN];
  const a = await spawnServer(common);
  const b = await spawnServer(common);
  try {
    const bases = [new URL(a.url), new URL(b.url)];
    let turn = 0;
    const bodies: any[] = [];
    const alternate = async (input: string | URL | Request, init?: RequestInit) => {
      const url = new URL(input instanceof Request ? input.url : input);
      url.host = bases[turn++ % 2].host;
      if (typeof init?.body === "string") bodies.push(JSON.parse(init.body));
      return await fetch(url, init);
    };
    const connect = async (answer: () => Record<string, unknown>) => {
      const asked: string[] = [];
      const client = new Client({ name: "human", version: "1.0.0" }, {
        capabilities: { elicitation: { form: {} } },
        versionNegotiation: { mode: { pin: "2026-07-28" } },
      });
      client.setRequestHandler("elicitation/create", (req: any) => {
        asked.push(req.params.message);
        return answer() as never;
      });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`${a.url}/mcp`), {
          fetch: alternate,
          requestInit: { headers: { authorization: `Bearer ${TOKEN}` } },
        }),
      );
      return { client, asked };
    };
    const env = (r: any) => r.structuredContent;

    // Decline: the hold is denied, the call never runs.
    const declining = await connect(() => ({ action: "decline" }));
    const denied = env(
      await declining.client.callTool({ name: "calculate", arguments: { expression: "1+1" } }),
    );
    assert.equal(declining.asked.length, 1);
    assert.match(declining.asked[0], /operator approval \(hold [0-9a-f-]{36}\)/);
    assert.equal(denied.status, "BLOCKED", JSON.stringify(denied));
    assert.match(denied.message, /denied|declined/i);
    const deniedId = /hold ([0-9a-f-]{36})/.exec(declining.asked[0])![1];
    const deniedView = await (await fetch(`${b.url}/holds/${deniedId}`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    })).json();
    assert.equal(deniedView.status, "denied", JSON.stringify(deniedView));
    await declining.client.close();

    // Accept: recorded, but the call waits for the operator; then it runs exactly once.
    const accepting = await connect(() => ({ action: "accept", content: { confirm: true } }));
    const args = { expression: "6*7" };
    const pending = env(await accepting.client.callTool({ name: "calculate", arguments: args }));
    assert.equal(accepting.asked.length, 1);
    const holdId = /hold ([0-9a-f-]{36})/.exec(accepting.asked[0])![1];
    assert.notEqual(pending.status, "OK", JSON.stringify(pending));
    assert.match(pending.message, /waiting for approval|888_HOLD/, JSON.stringify(pending));
    const retried = bodies.filter((x) => x.method === "tools/call" && x.params.requestState);
    assert.ok(retried.length >= 2, "both flows were retried with a requestState");
    assert.ok(retried.every((x) => x.params.inputResponses?.warden_hold_confirm));
    const view = await (await fetch(`${a.url}/holds/${holdId}`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    })).json();
    assert.equal(view.status, "open");
    const approved = await cli([
      "approve",
      holdId,
      "--key",
      `${dir}/op/operator.key`,
      "--url",
      b.url,
      "--token",
      TOKEN,
    ]);
    assert.equal(approved.code, 0, approved.stderr);
    const ran = env(
      await accepting.client.callTool({
        name: "calculate",
        arguments: args,
        _meta: { "warden/hold": holdId },
      }),
    );
    assert.equal(ran.status, "OK", ran.message);
    assert.equal(ran.data.result, 42);
    const twice = env(
      await accepting.client.callTool({
        name: "calculate",
        arguments: args,
        _meta: { "warden/hold": holdId },
      }),
    );
    assert.notEqual(twice.status, "OK");
    assert.match(twice.message, /already used/);
    // Both answers are sealed.
    const entries = await (await fetch(`${a.url}/vault/entries?start=0&limit=500`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    })).json();
    const sealed = entries.entries.map((e: any) => JSON.parse(atob(e.data)));
    const answers = sealed.filter((e: any) => e.type === "hold_human_response");
    assert.deepEqual(
      answers.map((e: any) => [e.hold_id, e.action, e.via]),
      [[deniedId, "decline", "input_required"], [holdId, "accept", "input_required"]],
    );
    await accepting.client.close();

    // A tampered state, and a state replayed for another tool, are refused with -32602.
    const state = retried[0].params.requestState as string;
    const raw = async (params: Record<string, unknown>) => {
      const res = await fetch(`${a.url}/mcp`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${TOKEN}`,
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          "mcp-protocol-version": "2026-07-28",
          "mcp-method": "tools/call",
          "mcp-name": String(params.name),
        },
        body: JSON.stringify({
          jsonrpc: "2.0",
          id: 9,
          method: "tools/call",
          params: {
            ...params,
            _meta: {
              "io.modelcontextprotocol/protocolVersion": "2026-07-28",
              "io.modelcontextprotocol/clientInfo": { name: "raw", version: "1" },
              "io.modelcontextprotocol/clientCapabilities": { elicitation: { form: {} } },
            },
          },
        }),
      });
      const text = await res.text();
      const line = text.split("\n").find((l) => l.startsWith("data:"));
      return JSON.parse(line ? line.slice(5) : text);
    };
    // Flip one character in the middle: the last characters of a base64 text
    // can carry only unused padding bits, so changing them may change nothing.
    const tamper = (s: string): string => {
      let i = Math.floor(s.length / 2);
      while (i < s.length && !/[A-Za-z0-9]/.test(s[i])) i++;
      return s.slice(0, i) + (s[i] === "A" ? "g" : "A") + s.slice(i + 1);
    };
    const answer = { warden_hold_confirm: { action: "accept", content: { confirm: true } } };
    const tampered = await raw({
      name: "calculate",
      arguments: args,
      requestState: tamper(state),
      inputResponses: answer,
    });
    assert.equal(tampered.error?.code, -32602, JSON.stringify(tampered));
    const otherTool = await raw({
      name: "generate_uuid",
      arguments: {},
      requestState: state,
      inputResponses: answer,
    });
    assert.equal(otherTool.error?.code, -32602, JSON.stringify(otherTool));
  } finally {
    await a.stop();
    await b.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

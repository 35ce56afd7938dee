// deno-lint-ignore-file no-explicit-any -- results are probed field by field
// 888_HOLD on the 2026-07-28 path: a client that declares elicitation is asked
// in-band through an input_required result; the requestState is sealed with a
// key both processes share (the rounds reach different instances here), a
// decline denies the hold, an accept is recorded, and only the operator's
// signature releases the call, exactly once. A tampered or foreign state is
// refused with -32602.
import assert from "node:assert/strict";
import {
  alternatingFetch,
  callHeld,
  connectModern,
  getJson,
  vaultEntriesOver,
} from "../_helpers/client.ts";
import { decidedByCli, keygenOperator, writeHeldCalculatePolicy } from "../_helpers/operator.ts";
import { modernMeta, postModern } from "../_helpers/raw.ts";
import { spawnServer } from "../_helpers/server.ts";
import { tempDir } from "../_helpers/tmp.ts";

const TOKEN = "a-test-token-of-24-chars";

Deno.test("modern: a held call asks the human via input_required; decline denies, accept still needs a signature", async () => {
  await using tmp = await tempDir();
  const dir = tmp.path;
  const operator = await keygenOperator(dir);
  const policy = await writeHeldCalculatePolicy(dir, operator);
  const common = ["--kv", `${dir}/shared.db`, "--policy", policy, "--token", TOKEN];
  await using a = await spawnServer(common);
  await using b = await spawnServer(common);
  const bodies: any[] = [];
  const alternate = alternatingFetch([a.url, b.url], {
    onRequest: (_i, init) => {
      if (typeof init?.body === "string") bodies.push(JSON.parse(init.body));
    },
  });
  const connect = async (answer: () => Record<string, unknown>) => {
    const asked: string[] = [];
    const client = await connectModern(a.url, {
      name: "human",
      token: TOKEN,
      capabilities: { elicitation: { form: {} } },
      fetch: alternate,
      setup: (c) =>
        c.setRequestHandler("elicitation/create", (req: any) => {
          asked.push(req.params.message);
          return answer() as never;
        }),
    });
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
  const deniedView = await getJson(b.url, `/holds/${deniedId}`, TOKEN);
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
  const view = await getJson(a.url, `/holds/${holdId}`, TOKEN);
  assert.equal(view.status, "open");
  await decidedByCli("approve", holdId, { keyFile: operator.keyFile, url: b.url, token: TOKEN });
  const ran = await callHeld(accepting.client, "calculate", args, holdId);
  assert.equal(ran.status, "OK", ran.message);
  assert.equal(ran.data.result, 42);
  const twice = await callHeld(accepting.client, "calculate", args, holdId);
  assert.notEqual(twice.status, "OK");
  assert.match(twice.message, /already used/);
  // Both answers are sealed.
  const sealed = await vaultEntriesOver(a.url, TOKEN, 500);
  const answers = sealed.filter((e: any) => e.type === "hold_human_response");
  assert.deepEqual(
    answers.map((e: any) => [e.hold_id, e.action, e.via]),
    [[deniedId, "decline", "input_required"], [holdId, "accept", "input_required"]],
  );
  await accepting.client.close();

  // A tampered state, and a state replayed for another tool, are refused with -32602.
  const state = retried[0].params.requestState as string;
  const raw = async (params: Record<string, unknown>) =>
    (await postModern(a.url, "tools/call", params, {
      id: 9,
      headers: { authorization: `Bearer ${TOKEN}`, "mcp-name": String(params.name) },
      meta: modernMeta({ elicitation: { form: {} } }),
    })).json;
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
});

// deno-lint-ignore-file no-explicit-any -- envelopes are probed field by field
/**
 * Issue 9 §3, through a real server and the SDK client: every SABAR says which argument to
 * change (or that none is to change, for a rate limit), and `next_tool` never points at a tool
 * this caller would be refused.
 */
import assert from "node:assert/strict";
import { type Client, connectStreamable, envelopeOf } from "../_helpers/client.ts";
import { startServer } from "../_helpers/server.ts";

/** The argument names a SABAR text quotes in backticks. */
function quoted(text: string): string[] {
  return [...text.matchAll(/`([^`]+)`/g)].map((m) => m[1]);
}

/** Asserts the refusal names an argument of `tool` (by its input schema), or says none is to change. */
async function assertNamesArgument(client: Client, tool: string, text: string) {
  if (/no argument to change: repeat the same call after \d+ s/.test(text)) return;
  const { tools } = await client.listTools();
  const props = Object.keys(
    (tools.find((t) => t.name === tool)!.inputSchema as any).properties ?? {},
  );
  const named = quoted(text).map((q) => q.split(/[.[]/)[0]);
  assert.ok(
    named.some((n) => props.includes(n)),
    `${tool}: "${text}" names none of ${props.join(", ")}`,
  );
}

Deno.test("every SABAR names the argument to change: schema, size, grounding, rate limit, and apex_judge's findings", async () => {
  await using server = await startServer({
    policy: {
      limits: { max_argument_bytes: 400 },
      rate_limits: { per_tool_per_minute: 5, per_principal_per_minute: 0 },
    },
  });
  const { client } = await connectStreamable(server.url);
  const sabar: [string, string][] = [];
  const call = async (name: string, args: Record<string, unknown>) => {
    const env = envelopeOf(await client.callTool({ name, arguments: args }));
    if (env.policy_verdict === "SABAR") sabar.push([name, env.message]);
    return env;
  };
  // F4: wrong type, missing, too large (the largest argument is named).
  assert.match((await call("calculate", { expression: 5 })).message, /`expression`/);
  assert.match((await call("transform_string", { text: "x" })).message, /`operation`/);
  const big = await call("transform_string", { text: "a".repeat(500), operation: "upper" });
  assert.match(big.message, /shorten `text` \(502 bytes\)/);
  // F5: five calls of one tool a minute; the sixth is told to wait, with nothing to change.
  for (let i = 0; i < 4; i++) await call("calculate", { expression: "1+1" });
  const limited = await call("calculate", { expression: "1+1" });
  assert.equal(limited.policy_verdict, "SABAR");
  assert.match(limited.message, /no argument to change: repeat the same call after \d+ s/);

  // F2 on reason_mind, and apex_judge repeating what that refusal said to change.
  const sid = (await call("anchor_session", { query: "Publish the release notes" })).data
    .session_id;
  const ungrounded = await call("reason_mind", {
    session_id: sid,
    query: "The notes were reviewed",
    grounding: ["vault:999999"],
  });
  assert.equal(ungrounded.policy_verdict, "SABAR");
  assert.match(ungrounded.message, /`grounding`/);
  const judged = await call("apex_judge", { session_id: sid, query: "ready?" });
  assert.equal(judged.data.verdict, "SABAR");
  for (const fix of judged.data.fixes) {
    assert.ok(quoted(fix).length > 0, `apex_judge fix names no argument: ${fix}`);
  }
  assert.ok(
    judged.data.fixes.some((f: string) =>
      /retry reason_mind after this change: .*`grounding`/.test(f)
    ),
    judged.data.fixes.join("\n"),
  );
  // The dry run of a proposed action names `action`.
  const dry = await call("apex_judge", {
    session_id: sid,
    action: { tool: "calculate", arguments: { expression: 5 } },
  });
  assert.ok(dry.data.fixes.some((f: string) => f.includes("`action`")), dry.data.fixes.join("\n"));

  assert.ok(sabar.length >= 5, sabar.map(([t, m]) => `${t}: ${m}`).join("\n"));
  for (const [tool, message] of sabar) await assertNamesArgument(client, tool, message);
  await client.close();
});

Deno.test("next_tool skips what this caller is refused: a denied or role-denied optional step, a kill-switched seal", async () => {
  await using server = await startServer({
    policy: {
      tools: { recall_memory: { deny: true } },
      roles: { user: { tools: ["*"], deny: ["eureka_forge"] } },
      kill_switch: { tools: ["seal_vault"] },
    },
  });
  const { client } = await connectStreamable(server.url);
  const sid = (envelopeOf(
    await client.callTool({ name: "anchor_session", arguments: { query: "Publish the notes" } }),
  )).data.session_id;
  const args: Record<string, Record<string, unknown>> = {
    reason_mind: { session_id: sid, query: "The notes were published", grounding: [sid] },
    simulate_heart: { session_id: sid, query: "publish the notes" },
    critique_thought: { session_id: sid, plan: { steps: ["publish the notes"] } },
    apex_judge: { session_id: sid, query: "ready?" },
  };
  // Follow next_tool: every suggestion is a call this caller may make.
  const visited: string[] = [];
  let next: string | null = "reason_mind";
  while (next !== null) {
    assert.ok(args[next], `next_tool suggested ${next}, which this caller is refused`);
    const env = envelopeOf(await client.callTool({ name: next, arguments: args[next] }));
    assert.equal(env.status, "OK", `${next}: ${env.message}`);
    visited.push(next);
    next = env.next_tool;
  }
  assert.deepEqual(visited, ["reason_mind", "simulate_heart", "critique_thought", "apex_judge"]);
  // What was skipped is indeed refused.
  for (const tool of ["recall_memory", "eureka_forge"]) {
    const env = envelopeOf(await client.callTool({ name: tool, arguments: { session_id: sid } }));
    assert.equal(env.policy_verdict, "VOID", `${tool}: ${env.message}`);
  }
  await client.close();
});

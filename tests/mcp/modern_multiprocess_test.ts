/**
 * Two Warden processes sharing one KV file answer one 2026-07-28 client's
 * alternating requests with consistent results: a hold created through one is
 * seen, released and used up through the other, and a per-principal rate
 * limit is one budget across both. (Governed sessions across two processes:
 * tests/mcp/modern_test.ts.)
 */
// deno-lint-ignore-file no-explicit-any -- envelopes are probed field by field
import assert from "node:assert/strict";
import { alternatingFetch, callHeld, connectModern } from "../_helpers/client.ts";
import { decidedByCli, keygenOperator, writeHeldCalculatePolicy } from "../_helpers/operator.ts";
import { spawnServer } from "../_helpers/server.ts";
import { tempDir } from "../_helpers/tmp.ts";

const TOKEN = "a-test-token-of-24-chars";
const LIMIT = 8;

Deno.test("modern: holds and rate limits are consistent across two processes on one KV", async () => {
  await using tmp = await tempDir();
  const dir = tmp.path;
  const operator = await keygenOperator(dir);
  const policy = await writeHeldCalculatePolicy(dir, operator, LIMIT);
  const common = ["--kv", `${dir}/shared.db`, "--policy", policy, "--token", TOKEN];
  await using a = await spawnServer(common);
  await using b = await spawnServer(common);
  const served = [0, 0];
  const client = await connectModern(a.url, {
    name: "alternating",
    token: TOKEN,
    fetch: alternatingFetch([a.url, b.url], {
      onResponse: (i, res) => {
        if (res.status !== 429) served[i]++;
      },
    }),
  });
  const env = (r: any) => r.structuredContent;
  const args = { expression: "6*7" };
  const held = env(await client.callTool({ name: "calculate", arguments: args }));
  assert.equal(held.policy_verdict, "888_HOLD", JSON.stringify(held));
  const holdId = held._constitutional.hold.id;
  // The other process knows the hold and that it waits for a signature.
  const early = await callHeld(client, "calculate", args, holdId);
  assert.equal(early.policy_verdict, "888_HOLD", JSON.stringify(early));
  assert.equal(early.status, "PENDING");
  assert.equal(early._constitutional.hold.id, holdId);
  assert.match(early.message, /still waiting for approval/);
  // Approved through process B; used through whichever answers next, exactly once.
  await decidedByCli("approve", holdId, { keyFile: operator.keyFile, url: b.url, token: TOKEN });
  const ran = await callHeld(client, "calculate", args, holdId);
  assert.equal(ran.status, "OK", ran.message);
  assert.equal(ran.data.result, 42);
  const twice = await callHeld(client, "calculate", args, holdId);
  assert.equal(twice.policy_verdict, "VOID");
  assert.match(twice.message, /already used/);

  // One per-principal budget across both processes (the hold calls above may count too):
  // refused in-band as SABAR (F5). Two separate budgets would let about 2×LIMIT through.
  const texts: string[] = [];
  for (let i = 0; i < 14; i++) {
    const r: any = await client.callTool({ name: "generate_uuid", arguments: {} });
    texts.push(r.content[0].text);
  }
  const executed = texts.filter((t) => !t.startsWith("SABAR")).length;
  const refused = texts.filter((t) => /F5 .*principal bearer made \d+ calls/.test(t)).length;
  assert.ok(executed >= 1 && executed <= LIMIT, `executed ${executed}: ${texts.join(" | ")}`);
  assert.equal(executed + refused, texts.length, texts.join(" | "));
  assert.ok(served[0] >= 8 && served[1] >= 8, `both processes answered: ${served}`);
  await client.close();
});

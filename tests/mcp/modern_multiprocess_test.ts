/**
 * Two Warden processes sharing one KV file answer one 2026-07-28 client's
 * alternating requests with consistent results: a hold created through one is
 * seen, released and used up through the other, and a per-principal rate
 * limit is one budget across both. (Governed sessions across two processes:
 * tests/mcp/modern_test.ts.)
 */
// deno-lint-ignore-file no-explicit-any -- envelopes are probed field by field
import assert from "node:assert/strict";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { runCli as cli } from "../_helpers/cli.ts";
import { spawnServer } from "../_helpers/server.ts";

const TOKEN = "a-test-token-of-24-chars";
const LIMIT = 8;

Deno.test("modern: holds and rate limits are consistent across two processes on one KV", async () => {
  const dir = await Deno.makeTempDir();
  const keygen = await cli(["keygen", "--out", `${dir}/op`, "--name", "alice"]);
  assert.equal(keygen.code, 0, keygen.stderr);
  const pub = (await Deno.readTextFile(`${dir}/op/operator.pub`)).trim();
  await Deno.writeTextFile(
    `${dir}/policy.json`,
    JSON.stringify({
      tools: { calculate: { hold: true } },
      operators: [{ name: "alice", public_key: pub }],
      rate_limits: { per_principal_per_minute: LIMIT, max_concurrent_per_principal: 0 },
    }),
  );
  const common = ["--kv", `${dir}/shared.db`, "--policy", `${dir}/policy.json`, "--token", TOKEN];
  const a = await spawnServer(common);
  const b = await spawnServer(common);
  try {
    const bases = [new URL(a.url), new URL(b.url)];
    const served = [0, 0];
    let turn = 0;
    const alternate = async (input: string | URL | Request, init?: RequestInit) => {
      const i = turn++ % 2;
      const url = new URL(input instanceof Request ? input.url : input);
      url.host = bases[i].host;
      const res = await fetch(url, init);
      if (res.status !== 429) served[i]++;
      return res;
    };
    const client = new Client({ name: "alternating", version: "1.0.0" }, {
      versionNegotiation: { mode: { pin: "2026-07-28" } },
    });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${a.url}/mcp`), {
        fetch: alternate,
        requestInit: { headers: { authorization: `Bearer ${TOKEN}` } },
      }),
    );
    const env = (r: any) => r.structuredContent;
    const args = { expression: "6*7" };
    const held = env(await client.callTool({ name: "calculate", arguments: args }));
    assert.equal(held.policy_verdict, "888_HOLD", JSON.stringify(held));
    const holdId = held._constitutional.hold.id;
    // The other process knows the hold and that it waits for a signature.
    const early = env(
      await client.callTool({
        name: "calculate",
        arguments: args,
        _meta: { "warden/hold": holdId },
      }),
    );
    assert.equal(early.policy_verdict, "888_HOLD", JSON.stringify(early));
    assert.equal(early.status, "PENDING");
    assert.equal(early._constitutional.hold.id, holdId);
    assert.match(early.message, /still waiting for approval/);
    // Approved through process B; used through whichever answers next, exactly once.
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
      await client.callTool({
        name: "calculate",
        arguments: args,
        _meta: { "warden/hold": holdId },
      }),
    );
    assert.equal(ran.status, "OK", ran.message);
    assert.equal(ran.data.result, 42);
    const twice = env(
      await client.callTool({
        name: "calculate",
        arguments: args,
        _meta: { "warden/hold": holdId },
      }),
    );
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
  } finally {
    await a.stop();
    await b.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

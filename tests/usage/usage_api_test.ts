import assert from "node:assert/strict";
import { z } from "zod";
import { defineTool } from "../../src/calls/mod.ts";
import { startServer } from "../_helpers/server.ts";
import { startEverything } from "../_helpers/upstreams.ts";

/** Stands in for a model-backed call: reports a known token count, as a prompt call would. */
const promptTool = defineTool({
  name: "test_prompt",
  title: "Prompt",
  description: "Answers with fixed token usage (usage accounting tests only).",
  inputSchema: z.object({ prompt: z.string() }),
  outputSchema: z.object({
    answer: z.string(),
    usage: z.object({ input_tokens: z.number(), output_tokens: z.number() }),
  }),
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true },
  handler() {
    return {
      data: { answer: "42", usage: { input_tokens: 1500, output_tokens: 500 } },
      text: "42",
    };
  },
});

const utf8 = (s: string) => new TextEncoder().encode(s).byteLength;

Deno.test("GET /api/usage: exact figures for a known workload, including the cost of a prompt call, and its cost budget", async () => {
  const server = await startServer({
    extraTools: [promptTool],
    policy: {
      prices: {
        test_prompt: { per_call: 10, per_1k_input_tokens: 2000, per_1k_output_tokens: 6000 },
      },
      // Two prompt calls cost 2 × 6010: the budget is then spent.
      budgets: { cost_per_day: 12020 },
    },
  });
  const invoke = async (tool: string, args: unknown) => {
    const res = await fetch(`${server.url}/invoke`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ tool, arguments: args }),
    });
    const body = await res.json();
    return {
      status: res.status,
      body,
      bytesIn: utf8(JSON.stringify(args)),
      bytesOut: utf8(body.text),
    };
  };
  try {
    const from = Date.now() - 1000;
    const calcs = [];
    for (const e of ["1+1", "2*3", "10/4"]) {
      calcs.push(await invoke("calculate", { expression: e }));
    }
    calcs.push(await invoke("calculate", { expression: 7 }));
    assert.deepEqual(calcs.map((c) => c.status), [200, 200, 200, 422]);
    const prompts = [
      await invoke("test_prompt", { prompt: "q" }),
      await invoke("test_prompt", { prompt: "q2" }),
    ];
    assert.deepEqual(prompts.map((p) => p.status), [200, 200]);
    const over = await invoke("test_prompt", { prompt: "q3" });
    assert.equal(over.status, 429);
    assert.match(JSON.stringify(over.body._constitutional.reasons), /spent 12020 cost units today/);

    const get = async (query: string) => {
      const res = await fetch(`${server.url}/api/usage?${query}`);
      assert.equal(res.status, 200);
      return (await res.json()).rows as Record<string, unknown>[];
    };
    const byTool = await get(`from=${from}&group_by=tool`);
    const sum = (xs: { bytesIn: number; bytesOut: number }[], k: "bytesIn" | "bytesOut") =>
      xs.reduce((n, x) => n + x[k], 0);
    const calc = byTool.find((r) => r.tool === "calculate")!;
    assert.deepEqual({ ...calc, latency_ms_p50: undefined }, {
      principal: null,
      tool: "calculate",
      upstream: null,
      calls: 4,
      by_verdict: { SEAL: 3, SABAR: 1 },
      latency_ms_p50: undefined,
      bytes_in: sum(calcs, "bytesIn"),
      bytes_out: sum(calcs, "bytesOut"),
      tokens: 0,
      cost: 0,
    });
    assert.ok((calc.latency_ms_p50 as number) > 0);
    const prompt = byTool.find((r) => r.tool === "test_prompt")!;
    assert.equal(prompt.calls, 3);
    assert.deepEqual(prompt.by_verdict, { SEAL: 2, SABAR: 1 });
    // The refused third call ran nothing: no tokens, no cost.
    assert.equal(prompt.tokens, 2 * 2000);
    assert.equal(prompt.cost, 2 * (10 + 3000 + 3000));
    assert.equal(prompt.bytes_in, sum([...prompts, over], "bytesIn"));

    const byPrincipal = await get(`from=${from}&group_by=principal`);
    assert.equal(byPrincipal.length, 1);
    assert.equal(byPrincipal[0].principal, "anonymous");
    assert.equal(byPrincipal[0].calls, 7);
    assert.equal(byPrincipal[0].cost, 12020);
    assert.deepEqual(await get(`principal=nobody&from=${from}`), []);
    assert.deepEqual(await get(`from=${Date.now() + 3_600_000}&to=${Date.now() + 7_200_000}`), []);

    const bad = await fetch(`${server.url}/api/usage?group_by=day`);
    assert.equal(bad.status, 400);
    await bad.body?.cancel();
  } finally {
    await server.close();
  }
});

Deno.test({
  name:
    "GET /api/usage and /metrics: a call to a real upstream's tool counts under its own name and upstream, not as unknown",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const upstream = await startEverything("streamableHttp");
    const server = await startServer({
      upstreams: [{ name: "ev", transport: "streamable-http", url: upstream.url }],
    });
    try {
      const from = Date.now() - 1000;
      for (const message of ["one", "two"]) {
        const res = await fetch(`${server.url}/invoke`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ tool: "ev__echo", arguments: { message } }),
        });
        assert.equal(res.status, 200, await res.clone().text());
        await res.body?.cancel();
      }
      const res = await fetch(`${server.url}/api/usage?from=${from}&group_by=upstream`);
      const { rows } = await res.json();
      assert.deepEqual(
        rows.map((r: { upstream: string; calls: number }) => [r.upstream, r.calls]),
        [["ev", 2]],
      );
      const byTool = await (await fetch(`${server.url}/api/usage?from=${from}&group_by=tool`))
        .json();
      assert.deepEqual(byTool.rows.map((r: { tool: string }) => r.tool), ["ev__echo"]);
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      assert.match(
        metrics,
        /warden_tool_calls_total\{[^}]*tool="ev__echo"[^}]*upstream="ev"[^}]*\} 2/,
      );
    } finally {
      await server.close();
      await upstream.stop();
    }
  },
});

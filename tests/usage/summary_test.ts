/**
 * The vault's daily usage summary: one entry per UTC day, however many
 * instances share the KV, with the day's usage rows; its figures match a
 * known workload.
 */
import assert from "node:assert/strict";
import { startServer } from "../_helpers/server.ts";

Deno.test("usage summary: two instances on one KV seal one entry for the day, with the day's figures", async () => {
  const kv = await Deno.openKv(":memory:");
  const a = await startServer({ kv });
  const b = await startServer({ kv });
  try {
    const invoke = async (url: string, tool: string, args: unknown) => {
      const res = await fetch(`${url}/invoke`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ tool, arguments: args }),
      });
      await res.body?.cancel();
      return res.status;
    };
    const emptyDay = Date.now() - 3 * 86_400_000;
    const sizeBefore = (await a.app.ledger.head()).size;
    assert.equal(await a.app.usageSummary.sealDay(emptyDay), undefined, "no calls, no entry");
    assert.equal((await a.app.ledger.head()).size, sizeBefore);
    assert.equal(await invoke(a.url, "calculate", { expression: "1+1" }), 200);
    assert.equal(await invoke(a.url, "calculate", { expression: "2+2" }), 200);
    assert.equal(await invoke(b.url, "get_time", {}), 200);
    // GET /api/usage writes each instance's pending rows; then both try to seal today at once.
    for (const s of [a, b]) await (await fetch(`${s.url}/api/usage`)).body?.cancel();
    const today = Date.now();
    const [ia, ib] = await Promise.all([
      a.app.usageSummary.sealDay(today),
      b.app.usageSummary.sealDay(today),
    ]);
    const sealed = [ia, ib].filter((i) => i !== undefined);
    assert.equal(sealed.length, 1, `exactly one instance sealed it (${ia}, ${ib})`);
    assert.equal(await a.app.usageSummary.sealDay(today), undefined, "a second try adds nothing");
    const entry = await a.app.ledger.entry(sealed[0]!);
    const fields = JSON.parse(new TextDecoder().decode(entry!.bytes));
    assert.equal(fields.type, "usage_summary");
    assert.equal(fields.day, new Date(today).toISOString().slice(0, 10));
    const calc = fields.by_tool.find((r: { tool: string }) => r.tool === "calculate");
    assert.equal(calc?.calls, 2, JSON.stringify(fields.by_tool));
    assert.deepEqual(calc.by_verdict, { SEAL: 2 });
    assert.ok(Number.isInteger(calc.latency_us_p50) && calc.latency_us_p50 > 0);
    const time = fields.by_tool.find((r: { tool: string }) => r.tool === "get_time");
    assert.equal(time?.calls, 1, "the other instance's rows are in it too");
    assert.equal(fields.by_principal[0].calls, 3);
    assert.deepEqual(fields.omitted_rows, { tool: 0, principal: 0, upstream: 0 });
  } finally {
    await a.close();
    await b.close();
    kv.close();
  }
});

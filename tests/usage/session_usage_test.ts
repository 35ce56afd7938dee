// deno-lint-ignore-file no-explicit-any -- rows are probed field by field
// Per-session usage (issue 14 §2): calls made in an MCP session are also
// accounted under that session, retrievable at /api/usage (group_by=session,
// or session=<id> by tool) and on the dashboard's usage page; each session
// keeps a bounded number of rows, and one instance a bounded number of
// sessions, without ever overwriting what it wrote before.
import assert from "node:assert/strict";
import { parsePolicy } from "../../src/governance/mod.ts";
import { createAccounting, MAX_SESSION_ROWS, MAX_SESSIONS } from "../../src/usage/accounting.ts";
import { connectStreamable } from "../_helpers/client.ts";
import { startServer } from "../_helpers/server.ts";
import { loginCookie, startDashboardServer } from "../_helpers/dashboard.ts";

Deno.test("GET /api/usage: rows per session, exact for a known workload in two sessions", async () => {
  await using server = await startServer();
  const a = await connectStreamable(server.url);
  const b = await connectStreamable(server.url);
  for (const e of ["1+1", "2*3", "4-1"]) {
    await a.client.callTool({ name: "calculate", arguments: { expression: e } });
  }
  await a.client.callTool({ name: "get_time", arguments: {} });
  for (const e of ["5+5", "6+6"]) {
    await b.client.callTool({ name: "calculate", arguments: { expression: e } });
  }
  const idA = a.transport.sessionId!, idB = b.transport.sessionId!;
  assert.ok(idA && idB && idA !== idB);
  // REST has no session: it is accounted, but under no session row.
  await (await fetch(`${server.url}/invoke`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ tool: "calculate", arguments: { expression: "1" } }),
  })).body?.cancel();

  const get = async (query: string) => {
    const res = await fetch(`${server.url}/api/usage?${query}`);
    assert.equal(res.status, 200);
    return (await res.json()).rows as any[];
  };
  const bySession = await get("group_by=session");
  assert.deepEqual(
    bySession.map((r) => [r.session, r.principal, r.calls]),
    [[idA, "anonymous", 4], [idB, "anonymous", 2]],
  );
  assert.deepEqual(bySession[0].by_verdict, { SEAL: 4 });
  const inA = await get(`session=${encodeURIComponent(idA)}`);
  assert.deepEqual(
    inA.map((r) => [r.session, r.tool, r.calls]).sort(),
    [[idA, "calculate", 3], [idA, "get_time", 1]],
  );
  assert.ok(inA.every((r) => r.bytes_in > 0 && r.bytes_out > 0));
  assert.deepEqual(await get("session=no-such-session"), []);
  // The per-tool rows still count every call, the REST one too.
  const byTool = await get(`from=${Date.now() - 60_000}&group_by=tool`);
  assert.equal(byTool.find((r) => r.tool === "calculate").calls, 6);

  await a.client.close();
  await b.client.close();
});

Deno.test("createAccounting(): a session keeps at most MAX_SESSION_ROWS tool rows (the rest count as other), and a forgotten session's rows are never overwritten", async () => {
  const kv = await Deno.openKv(":memory:");
  const accounting = createAccounting(kv, { policy: parsePolicy({}), flushMs: 60_000 });
  try {
    const call = (session: string, tool: string) =>
      accounting.record({
        principal: "alice",
        tool,
        session,
        verdict: "SEAL",
        latencyMs: 1,
        bytesIn: 1,
        bytesOut: 1,
      });
    for (let i = 0; i < MAX_SESSION_ROWS + 8; i++) call("s1", `tool_${i}`);
    call("s1", "tool_0");
    await accounting.flush();
    const rows = await accounting.querySessions({ session: "s1", limit: 1000 });
    assert.equal(rows.length, MAX_SESSION_ROWS + 1);
    assert.equal(rows.find((r) => r.tool === "other")!.calls, 8);
    assert.equal(rows.find((r) => r.tool === "tool_0")!.calls, 2);
    assert.equal(rows.reduce((n, r) => n + r.calls, 0), MAX_SESSION_ROWS + 9);

    // Fill memory past MAX_SESSIONS: s1 is forgotten here, and its next call starts a new row
    // beside the old one, so the session's total still counts every call.
    for (let i = 0; i < MAX_SESSIONS; i++) call(`fill-${i}`, "calculate");
    await accounting.flush();
    call("s1", "tool_0");
    await accounting.flush();
    const again = await accounting.querySessions({ session: "s1", limit: 1000 });
    assert.equal(again.find((r) => r.tool === "tool_0")!.calls, 3);
    const all = await accounting.querySessions({ principal: "alice", limit: 1 });
    assert.deepEqual(all.map((r) => [r.session, r.calls]), [["s1", MAX_SESSION_ROWS + 10]]);
  } finally {
    await accounting.close();
    kv.close();
  }
});

Deno.test("dashboard usage page: a section per session, with the session's calls", async () => {
  const f = await startDashboardServer();
  try {
    const { client, transport } = await connectStreamable(f.server.url);
    for (const e of ["1+1", "2+2"]) {
      await client.callTool({ name: "calculate", arguments: { expression: e } });
    }
    const cookie = await loginCookie(f.server.url, "audrey");
    const page = await (await fetch(`${f.server.url}/dashboard/usage`, { headers: { cookie } }))
      .text();
    const section = page.slice(page.indexOf("<h2>Session</h2>"));
    assert.ok(page.includes("<h2>Session</h2>"), "a session section");
    assert.match(section, new RegExp(`<td>${transport.sessionId}</td>\\s*<td>2</td>`));
    await client.close();
  } finally {
    await f.close();
  }
});

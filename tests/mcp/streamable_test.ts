import assert from "node:assert/strict";
import { connectStreamable, dataOf, StreamableHTTPClientTransport } from "../_helpers/client.ts";
import { startServer } from "../_helpers/server.ts";
import { initializeRaw, rpc } from "../_helpers/raw.ts";

Deno.test("streamable HTTP: SDK client lists the 13 canonical, 6 utility and the state-service tools with schemas and annotations", async () => {
  await using server = await startServer();
  const { client } = await connectStreamable(server.url);
  const { tools } = await client.listTools();
  const names = tools.map((t) => t.name).sort();
  assert.deepEqual(names, [
    "anchor_session",
    "apex_judge",
    "audit_rules",
    "bus_publish",
    "bus_subscribe",
    "calculate",
    "chain_verify",
    "check_vital",
    "context_add",
    "context_delete",
    "context_graph",
    "context_search",
    "convert_time",
    "critique_thought",
    "eureka_forge",
    "evidence_package",
    "fetch_content",
    "file_list",
    "file_lock",
    "file_read",
    "file_unlock",
    "file_versions",
    "file_write",
    "generate_uuid",
    "get_time",
    "inspect_file",
    "memory_expire",
    "memory_retrieve",
    "memory_search",
    "memory_store",
    "reason_mind",
    "recall_memory",
    "seal_vault",
    "search_reality",
    "secure_execute",
    "security_audit",
    "simulate_heart",
    "transform_string",
    "validate_uuid",
  ]);
  for (const tool of tools) {
    assert.equal(tool.inputSchema.type, "object", `${tool.name} inputSchema`);
    assert.equal(tool.outputSchema?.type, "object", `${tool.name} outputSchema`);
    assert.equal(typeof tool.annotations?.readOnlyHint, "boolean", `${tool.name} readOnlyHint`);
    assert.equal(typeof tool.annotations?.destructiveHint, "boolean");
    assert.equal(typeof tool.annotations?.idempotentHint, "boolean");
    assert.equal(typeof tool.annotations?.openWorldHint, "boolean");
    assert.ok(tool.description && tool.description.length > 10);
  }
  await client.close();
});

Deno.test("streamable HTTP: every utility tool answers with structured content over the SDK client", async () => {
  await using server = await startServer();
  const { client } = await connectStreamable(server.url);
  const calc = await client.callTool({
    name: "calculate",
    arguments: { expression: "(2+3)*4^2" },
  });
  assert.equal(calc.isError, undefined);
  assert.deepEqual(dataOf(calc), { expression: "(2+3)*4^2", result: 80 });

  const time = await client.callTool({
    name: "get_time",
    arguments: { timezone: "Asia/Kolkata" },
  });
  assert.equal((dataOf(time) as { utc_offset: string }).utc_offset, "+05:30");

  const conv = await client.callTool({
    name: "convert_time",
    arguments: { source_timezone: "UTC", time: "12:00", target_timezone: "Asia/Kolkata" },
  });
  assert.equal(conv.isError, undefined);
  assert.match(JSON.stringify(dataOf(conv)), /17:30/);

  const uuids = await client.callTool({
    name: "generate_uuid",
    arguments: { version: "v7", count: 3 },
  });
  const list = (dataOf(uuids) as { uuids: string[] }).uuids;
  assert.equal(list.length, 3);
  const valid = await client.callTool({ name: "validate_uuid", arguments: { uuid: list[0] } });
  assert.equal((dataOf(valid) as { valid: boolean; version: number }).version, 7);

  const str = await client.callTool({
    name: "transform_string",
    arguments: { text: "  Hello Warden  ", operation: "trim" },
  });
  assert.equal((dataOf(str) as { result: string }).result, "Hello Warden");

  const bad = await client.callTool({ name: "calculate", arguments: { expression: "1/0" } });
  assert.equal(bad.isError, true);
  assert.match((bad.content as { text: string }[])[0].text, /Division by zero/);

  const garbage = await client.callTool({
    name: "calculate",
    arguments: { expression: "2 +* 3" },
  });
  assert.equal(garbage.isError, true);

  const invalid = await client.callTool({ name: "calculate", arguments: { expression: 42 } });
  assert.equal(invalid.isError, true);
  assert.match((invalid.content as { text: string }[])[0].text, /SABAR.*expression/);

  await assert.rejects(
    client.callTool({ name: "no_such_tool", arguments: {} }),
    /Unknown tool: no_such_tool/,
  );
  await client.close();
});

for (const version of ["2025-11-25", "2025-06-18", "2025-03-26"]) {
  Deno.test(`streamable HTTP: negotiates protocol ${version} and keeps it for the session`, async () => {
    await using server = await startServer();
    const { sessionId, result } = await initializeRaw(server.url, version);
    assert.equal(result.protocolVersion, version);
    const rec = await server.app.sessions.get(sessionId);
    assert.equal(rec?.protocolVersion, version);
    const list = await rpc(server.url, sessionId, "tools/list", {}, { version });
    assert.equal(list.status, 200);
    assert.ok(Array.isArray(list.body.result.tools));
  });
}

Deno.test("streamable HTTP: an unsupported requested version is answered with the latest", async () => {
  await using server = await startServer();
  const { result } = await initializeRaw(server.url, "2024-11-05");
  assert.equal(result.protocolVersion, "2025-11-25");
  const { result: r2 } = await initializeRaw(server.url, "1999-01-01");
  assert.equal(r2.protocolVersion, "2025-11-25");
});

Deno.test("streamable HTTP: DELETE ends a session; the id then gets 404", async () => {
  await using server = await startServer();
  const { client, transport } = await connectStreamable(server.url);
  const id = transport.sessionId!;
  assert.ok(await server.app.sessions.get(id));
  await transport.terminateSession();
  assert.equal(await server.app.sessions.get(id), null);
  const res = await rpc(server.url, id, "tools/list", {});
  assert.equal(res.status, 404);
  assert.equal(res.body.error.code, -32001);
  await client.close();
});

Deno.test("streamable HTTP: a session record holds protocol, client info and capabilities", async () => {
  await using server = await startServer();
  const { client, transport } = await connectStreamable(server.url, { name: "record-check" });
  const rec = await server.app.sessions.get(transport.sessionId!);
  assert.ok(rec);
  assert.equal(rec.clientInfo.name, "record-check");
  assert.equal(rec.transport, "streamable-http");
  assert.equal(rec.principal, "anonymous");
  assert.equal(typeof rec.capabilities, "object");
  assert.ok(Date.parse(rec.createdAt) > 0);
  assert.ok(rec.lastSeenMs > 0);
  await client.close();
});

Deno.test("streamable HTTP: idle sessions expire after the configured TTL", async () => {
  await using server = await startServer({ args: ["--session-ttl", "1"] });
  const { sessionId } = await initializeRaw(server.url, "2025-11-25");
  assert.equal((await rpc(server.url, sessionId, "tools/list", {})).status, 200);
  // Wall time on purpose: the session store's idle TTL runs on Date.now (no clock seam).
  await new Promise((r) => setTimeout(r, 1300));
  const res = await rpc(server.url, sessionId, "tools/list", {});
  assert.equal(res.status, 404);
  assert.equal(await server.app.sessions.get(sessionId), null);
});

Deno.test("streamable HTTP: JSON-response mode keeps no per-call state (typescript-sdk#2559)", async () => {
  await using server = await startServer({ args: ["--response-mode", "json"] });
  const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`));
  const { Client } = await import("../_helpers/client.ts");
  const client = new Client({ name: "leak", version: "1" });
  await client.connect(transport);
  for (let i = 0; i < 300; i++) {
    const r = await client.callTool({ name: "calculate", arguments: { expression: `${i}+1` } });
    assert.equal((dataOf(r) as { result: number }).result, i + 1);
  }
  // Without the fix the SDK keeps one entry per POST: 300+ here.
  assert.equal(server.app.streamable.heldStreams(transport.sessionId!), 0);
  await client.close();
});

import assert from "node:assert/strict";
import { isLegacyRequest, McpServer } from "@modelcontextprotocol/server";
import { createModernHandler } from "../../src/mcp/modern.ts";
import { createLogger } from "../../src/lib/mod.ts";

// /mcp decides each POST's era before anything else. Warden answers plain 2025 messages without
// the SDK's classifier (a zod parse per call); it must agree with the SDK on every shape.
Deno.test("isLegacy() agrees with the SDK's classifier on every message shape and header", async () => {
  const modern = createModernHandler({
    createServer: () => new McpServer({ name: "t", version: "1" }),
    logger: createLogger({ level: "error", write: () => {} }),
    initialServers: 0,
  });
  try {
    const claim = { "io.modelcontextprotocol/protocolVersion": "2026-07-28" };
    const bodies: unknown[] = [
      { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "x", arguments: {} } },
      {
        jsonrpc: "2.0",
        id: 1,
        method: "tools/call",
        params: { name: "x", _meta: { progressToken: 1 } },
      },
      { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "x", _meta: claim } },
      { jsonrpc: "2.0", id: 1, method: "tools/call", params: { _meta: { ...claim, x: 1 } } },
      { jsonrpc: "2.0", id: 1, method: "tools/call", params: { _meta: null } },
      { jsonrpc: "2.0", id: 1, method: "tools/call", params: { _meta: [claim] } },
      { jsonrpc: "2.0", id: 1, method: "tools/call", params: [] },
      { jsonrpc: "2.0", id: 1, method: "tools/list" },
      { jsonrpc: "2.0", method: "notifications/initialized" },
      { jsonrpc: "2.0", method: "notifications/cancelled", params: { _meta: claim } },
      { jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-11-25" } },
      { jsonrpc: "2.0", id: 1, method: "initialize", params: { _meta: claim } },
      { jsonrpc: "2.0", id: 1, result: {} },
      { jsonrpc: "1.0", id: 1, method: "tools/list" },
      { id: 1, method: "tools/list" },
      { jsonrpc: "2.0", id: 1, method: 7 },
      [{ jsonrpc: "2.0", id: 1, method: "tools/list" }],
      "text",
      null,
    ];
    const headers: (string | undefined)[] = [
      undefined,
      "2025-11-25",
      "2025-06-18",
      " 2025-03-26 ",
      "2026-07-28",
      "2027-01-01",
      "garbage",
    ];
    let legacy = 0;
    for (const body of bodies) {
      for (const version of headers) {
        const h: Record<string, string> = { "content-type": "application/json" };
        if (version !== undefined) h["mcp-protocol-version"] = version;
        const req = () =>
          new Request("http://127.0.0.1/mcp", {
            method: "POST",
            headers: h,
            body: JSON.stringify(body),
          });
        const expected = await isLegacyRequest(req(), body);
        const got = await modern.isLegacy(req(), body);
        assert.equal(got, expected, `${JSON.stringify(body)} with ${version}`);
        if (expected) legacy++;
      }
    }
    assert.ok(legacy > 20, `both eras were seen (${legacy} legacy)`);
  } finally {
    await modern.close();
  }
});

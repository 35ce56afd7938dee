import assert from "node:assert/strict";
import { CallToolRequestSchema } from "@modelcontextprotocol/core";
import { screenMessage } from "../../src/mcp/screen.ts";

// screenMessage lets the common tools/call through without walking the request schema; whatever
// it lets through that way, the schema must accept, and whatever the schema refuses it refuses.
Deno.test("screenMessage() agrees with the tools/call request schema on every params shape", () => {
  const shapes: unknown[] = [
    undefined,
    null,
    {},
    { name: "calculate" },
    { name: "calculate", arguments: { expression: "1+1" } },
    { name: "calculate", arguments: {} },
    { name: "calculate", arguments: [] },
    { name: "calculate", arguments: null },
    { name: "calculate", arguments: "x" },
    { name: 7 },
    { name: "calculate", extra: true },
    { name: "calculate", _meta: {} },
    { name: "calculate", _meta: { "warden/hold": "h1", traceparent: "00-abc" } },
    { name: "calculate", _meta: { progressToken: 1 } },
    { name: "calculate", _meta: { progressToken: 1.5 } },
    { name: "calculate", _meta: { progressToken: {} } },
    { name: "calculate", _meta: { "io.modelcontextprotocol/related-task": { taskId: "t" } } },
    { name: "calculate", _meta: { "io.modelcontextprotocol/related-task": 5 } },
    { name: "calculate", _meta: [] },
    { name: "calculate", _meta: null },
    { name: "calculate", task: { ttl: 1000 } },
    { name: "calculate", task: "soon" },
  ];
  let fast = 0;
  for (const params of shapes) {
    const message = { jsonrpc: "2.0", id: 1, method: "tools/call", params };
    const expected = CallToolRequestSchema.safeParse({ method: "tools/call", params }).success;
    const refusal = screenMessage(message);
    assert.equal(refusal === undefined, expected, JSON.stringify(params));
    if (expected) fast++;
  }
  assert.ok(fast >= 5);
});

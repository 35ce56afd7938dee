// The fast failures of src/mcp/sdk_guards.ts give exactly the SDK schemas' own answers: over a
// corpus of message shapes (valid and hostile), each guard says what the schema's Standard Schema
// validation (a separate path through zod, untouched by the install) says, and a failure's error
// carries the same issues as that validation.
import assert from "node:assert/strict";
import {
  isInitializeRequest,
  isJSONRPCErrorResponse,
  isJSONRPCResultResponse,
  specTypeSchemas,
} from "@modelcontextprotocol/server";
import { installFastGuards } from "../../src/mcp/sdk_guards.ts";

const init = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: {
    protocolVersion: "2025-11-25",
    capabilities: {},
    clientInfo: { name: "c", version: "1" },
  },
};
const CORPUS: unknown[] = [
  init,
  { ...init, params: { protocolVersion: "2025-11-25" } },
  { ...init, id: undefined },
  { ...init, method: "Initialize" },
  { ...init, method: "initialize " },
  { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "calculate", arguments: {} } },
  { jsonrpc: "2.0", method: "notifications/initialized" },
  { jsonrpc: "2.0", method: "initialize", params: init.params },
  { jsonrpc: "2.0", id: 3, result: {} },
  { jsonrpc: "2.0", id: "x", result: { content: [], _meta: { "warden/governance": { v: 1 } } } },
  { jsonrpc: "2.0", id: 3, result: null },
  { jsonrpc: "2.0", id: 3, result: [] },
  { jsonrpc: "2.0", id: 3, result: 0 },
  { jsonrpc: "2.0", id: 3, result: false },
  { jsonrpc: "2.0", id: 3, result: {}, extra: 1 },
  { jsonrpc: "2.0", id: 3.5, result: {} },
  { jsonrpc: "1.0", id: 3, result: {} },
  { jsonrpc: "2.0", id: 4, error: { code: -32600, message: "bad" } },
  { jsonrpc: "2.0", error: { code: -32700, message: "parse" } },
  { jsonrpc: "2.0", id: 4, error: { code: "x", message: "bad" } },
  { jsonrpc: "2.0", id: 4, error: null },
  { jsonrpc: "2.0", id: 4, error: 0 },
  { jsonrpc: "2.0", id: 4, error: { code: 1, message: "m" }, result: {} },
  { jsonrpc: "2.0", id: 4, error: undefined, result: {} },
  { method: "initialize", result: {}, error: {} },
  Object.create(null),
  Object.assign(Object.create({ method: "initialize" }), { jsonrpc: "2.0", id: 1 }),
  Object.assign(Object.create({ result: {} }), { jsonrpc: "2.0", id: 1 }),
  [],
  [init],
  null,
  undefined,
  0,
  "initialize",
  true,
  new Date(0),
];

const GUARDS = {
  InitializeRequest: isInitializeRequest,
  JSONRPCResultResponse: isJSONRPCResultResponse,
  JSONRPCErrorResponse: isJSONRPCErrorResponse,
} as const;

type Schema = {
  safeParse(v: unknown): { success: boolean; error?: { issues: unknown[] } };
  "~standard": { validate(v: unknown): { issues?: unknown[] } | Promise<unknown> };
};

Deno.test("SDK guards: fast failures agree with the schemas over every message shape", () => {
  installFastGuards();
  assert.equal(installFastGuards(), 0, "a second install changes nothing");
  const schemas = specTypeSchemas as unknown as Record<string, Schema>;
  let fast = 0;
  for (const [name, guard] of Object.entries(GUARDS)) {
    const schema = schemas[name];
    assert.ok(Object.hasOwn(schema, "safeParse"), `${name} has its fast failure installed`);
    for (const value of CORPUS) {
      const standard = schema["~standard"].validate(value) as { issues?: unknown[] };
      const expected = standard.issues === undefined;
      const label = `${name} on ${Deno.inspect(value, { depth: 4 })}`;
      assert.equal(guard(value), expected, label);
      const got = schema.safeParse(value);
      assert.equal(got.success, expected, label);
      if (!expected) {
        assert.deepEqual(got.error?.issues, standard.issues, label);
        if (Object.getOwnPropertyDescriptor(got, "error")?.get) fast++;
      }
    }
  }
  // The corpus exercises the fast path, not only the fallback.
  assert.ok(fast >= 60, `fast failures taken: ${fast}`);
});

/**
 * Hostile params on the 2026-07-28 path (issue 9 §6): each method is screened like the 2025
 * path — 400 with -32602 and one short reason naming the field — where the SDK answered a bad
 * cursor, URI or prompt argument with -32603 and a multi-line zod dump, and took a retry
 * channel of the wrong type silently. Well-formed requests still pass.
 */
import assert from "node:assert/strict";
import { postModern } from "../_helpers/raw.ts";
import { startServer } from "../_helpers/server.ts";

async function post(base: string, method: string, params: Record<string, unknown>) {
  const { status, json } = await postModern(base, method, params, { id: 7 });
  return { status, json };
}

Deno.test("2026-07-28 params are screened per method: 400 with -32602 and a one-line reason naming the field", async () => {
  await using server = await startServer();
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ["tools/call", { name: 5 }, /params\.name: .*expected string/],
    ["tools/call", {}, /params\.name/],
    ["tools/call", { name: "calculate", arguments: "x" }, /params\.arguments: .*record/],
    ["tools/call", { name: "calculate", arguments: [1] }, /params\.arguments/],
    ["tools/list", { cursor: { a: 1 } }, /params\.cursor: .*expected string/],
    ["tools/list", { cursor: 5 }, /params\.cursor/],
    ["resources/list", { cursor: [] }, /params\.cursor/],
    ["resources/templates/list", { cursor: 1 }, /params\.cursor/],
    ["resources/read", { uri: {} }, /params\.uri: .*expected string/],
    ["resources/read", {}, /params\.uri/],
    ["prompts/list", { cursor: true }, /params\.cursor/],
    ["prompts/get", { name: [] }, /params\.name/],
    [
      "prompts/get",
      { name: "arifos.prompt.aaa_chain", arguments: { a: 5 } },
      /params\.arguments\.a/,
    ],
    ["prompts/get", { name: "arifos.prompt.aaa_chain", arguments: "x" }, /params\.arguments/],
    [
      "tools/call",
      { name: "calculate", arguments: { expression: "1" }, inputResponses: "x" },
      /inputResponses: expected an object/,
    ],
    [
      "tools/call",
      { name: "calculate", arguments: { expression: "1" }, inputResponses: { a: 5 } },
      /inputResponses\.a: expected an object/,
    ],
    [
      "tools/call",
      { name: "calculate", arguments: { expression: "1" }, requestState: 5 },
      /requestState: expected a string/,
    ],
    [
      "tools/call",
      { name: "calculate", arguments: { expression: "1" }, requestState: "x".repeat(20_000) },
      /requestState: longer than/,
    ],
  ];
  for (const [method, params, reason] of cases) {
    const { status, json } = await post(server.url, method, params);
    const label = `${method} ${JSON.stringify(params).slice(0, 80)}`;
    assert.equal(status, 400, `${label}: ${JSON.stringify(json)}`);
    assert.equal(json.id, 7, label);
    assert.equal(json.error.code, -32602, label);
    assert.match(json.error.message, reason, label);
    assert.ok(!json.error.message.includes("\n"), `${label}: a dump, not a reason`);
    assert.ok(json.error.message.length < 400, label);
  }
  // Well-formed requests still pass, and a method this revision lacks is still the SDK's 404.
  const listed = await post(server.url, "tools/list", { cursor: undefined });
  assert.equal(listed.status, 200);
  assert.ok(listed.json.result.tools.length > 0);
  const called = await post(server.url, "tools/call", {
    name: "calculate",
    arguments: { expression: "6*7" },
  });
  assert.equal(called.status, 200);
  assert.equal(called.json.result.structuredContent.data.result, 42);
  const read = await post(server.url, "resources/read", { uri: "warden://vault/checkpoint" });
  assert.equal(read.status, 200, JSON.stringify(read.json));
  const unknown = await post(server.url, "logging/setLevel", { level: "loud" });
  assert.equal(unknown.json.error.code, -32601);
});

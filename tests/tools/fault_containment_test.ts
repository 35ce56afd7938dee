import assert from "node:assert/strict";
import { connectStreamable, dataOf } from "../_helpers/client.ts";
import { startServer } from "../_helpers/server.ts";
import { testTools } from "../_helpers/tools.ts";

function text(result: Record<string, unknown>): string {
  return (result.content as { text: string }[])[0].text;
}

Deno.test("fault containment: a crashing tool becomes an isError result and every other tool keeps serving", async () => {
  const server = await startServer({ extraTools: testTools, args: ["--tool-timeout", "200"] });
  try {
    const { client } = await connectStreamable(server.url);
    for (const mode of ["throw", "reject", "type_error"]) {
      const crashed = await client.callTool({ name: "test_crash", arguments: { mode } });
      assert.equal(crashed.isError, true, mode);
      assert.match(text(crashed), /test_crash failed with an internal error/);
      assert.doesNotMatch(text(crashed), /boom/, "internal error details stay in the log");
      const ok = await client.callTool({ name: "calculate", arguments: { expression: "6*7" } });
      assert.deepEqual(dataOf(ok), { expression: "6*7", result: 42 });
    }
    const bad = await client.callTool({ name: "test_crash", arguments: { mode: "bad_output" } });
    assert.equal(bad.isError, true);
    assert.match(text(bad), /does not match its output schema/);

    const hung = await client.callTool({ name: "test_sleep", arguments: { ms: 5000 } });
    assert.equal(hung.isError, true);
    assert.match(text(hung), /timed out after 200 ms/);

    const time = await client.callTool({ name: "get_time", arguments: {} });
    assert.equal(time.isError, undefined);
    await client.close();
  } finally {
    await server.close();
  }
});

Deno.test("fault containment: REST /invoke shares the contained path", async () => {
  const server = await startServer({ extraTools: testTools });
  try {
    const res = await fetch(`${server.url}/invoke`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ tool: "test_crash", arguments: {} }),
    });
    assert.equal(res.status, 500);
    const body = await res.json();
    assert.equal(body.ok, false);
    assert.equal(body.error_kind, "fault");
    const health = await fetch(`${server.url}/health`);
    assert.equal(health.status, 200);
    await health.body?.cancel();
  } finally {
    await server.close();
  }
});

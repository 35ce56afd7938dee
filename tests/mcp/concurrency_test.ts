import assert from "node:assert/strict";
import { connectStreamable, dataOf } from "../_helpers/client.ts";
import { startServer, UNTHROTTLED_POLICY } from "../_helpers/server.ts";

for (const mode of ["sse", "json"] as const) {
  Deno.test(`concurrency (${mode} responses): 50 clients × 20 calls in parallel each get exactly their own answers`, async () => {
    // Transport load, not throttling, is under test: F5's limits would (rightly) slow 2,000 calls.
    await using server = await startServer({
      args: ["--response-mode", mode],
      policy: UNTHROTTLED_POLICY,
    });
    const clients = await Promise.all(
      Array.from({ length: 50 }, (_, i) => connectStreamable(server.url, { name: `c${i}` })),
    );
    const ids = new Set(clients.map((c) => c.transport.sessionId));
    assert.equal(ids.size, 50, "every client has its own session");
    await Promise.all(clients.map(async ({ client }, c) => {
      await Promise.all(Array.from({ length: 20 }, async (_, k) => {
        const expression = `${c}*1000+${k}`;
        const r = await client.callTool({ name: "calculate", arguments: { expression } });
        assert.deepEqual(dataOf(r), { expression, result: c * 1000 + k });
        const s = await client.callTool({
          name: "transform_string",
          arguments: { text: `client-${c}-call-${k}`, operation: "upper" },
        });
        assert.equal((dataOf(s) as { result: string }).result, `CLIENT-${c}-CALL-${k}`);
      }));
    }));
    assert.equal(server.app.streamable.liveCount, 50);
    await Promise.all(clients.map(({ client }) => client.close()));
  });
}

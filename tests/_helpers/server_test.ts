/** The server fixture itself: scoped servers close however the scope ends. */
import assert from "node:assert/strict";
import { withServer } from "./server.ts";

async function refused(url: string): Promise<boolean> {
  try {
    await (await fetch(`${url}/health`)).body?.cancel();
    return false;
  } catch {
    return true;
  }
}

Deno.test("withServer() serves during fn and closes the server after it, also when fn throws", async () => {
  let url = "";
  await assert.rejects(
    withServer({}, async (server) => {
      url = server.url;
      const res = await fetch(`${url}/health`);
      assert.equal(res.status, 200);
      await res.body?.cancel();
      throw new Error("boom");
    }),
    /boom/,
  );
  assert.ok(await refused(url), "the server still answers after withServer returned");
  // `await using` closes it at the end of the block; an explicit close before is harmless.
  const seen = await withServer({}, async (server) => {
    await server.close();
    return server.url;
  });
  assert.ok(await refused(seen));
});

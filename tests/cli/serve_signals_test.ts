/**
 * A SIGTERM that arrives as soon as Warden says it is listening (a supervisor stopping what it
 * just started, a test tearing down) gets the graceful shutdown: "shutting down" logged, the
 * server drained, exit status 0. Before, the signal handlers were set only after an await that
 * followed the "listening" line, and a signal in between killed the process outright.
 */
import assert from "node:assert/strict";
import { spawnServer } from "../_helpers/server.ts";

Deno.test({
  name: "serve: a SIGTERM right after the listening line is a graceful shutdown",
  sanitizeResources: false,
  async fn() {
    for (let i = 0; i < 3; i++) {
      const server = await spawnServer(["--kv", ":memory:"]);
      const status = await server.stop("SIGTERM");
      assert.equal(status.signal, null, `killed by ${status.signal}: ${server.logs.join("\n")}`);
      assert.equal(status.code, 0, server.logs.join("\n"));
      assert.ok(server.logs.some((l) => l.includes('"shutting down"')), server.logs.join("\n"));
    }
  },
});

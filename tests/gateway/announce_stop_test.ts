/**
 * A stop while a registration is in flight still deregisters: the other gateway may have
 * listed this Warden before its answer was read (seen in `announce_test` on a loaded machine:
 * the front listed the utilities Warden, which was stopped before it read the answer, never
 * sent its DELETE, and stayed listed). The other gateway here is a small loopback server that
 * records each request and holds its answer to the registration until the test lets it go.
 */
import assert from "node:assert/strict";
import { createAnnouncer } from "../../src/gateway/mod.ts";
import { silentLogger } from "../../src/lib/mod.ts";

/** The announcer of a Warden named "utilities", registering with the loopback gateway at `port`. */
function announcerFor(port: number, retry?: { initialMs: number; maxMs: number }) {
  return createAnnouncer({
    registerUrl: `http://127.0.0.1:${port}`,
    token: "t".repeat(32),
    manifest: () => ({
      server_name: "utilities",
      endpoint: "http://127.0.0.1:1/mcp",
      transport: "streamable-http",
      version: "1",
      health_check: "http://127.0.0.1:1/health",
    }),
    logger: silentLogger,
    ...(retry ? { retry } : {}),
  });
}

Deno.test("announce: stop() during an unanswered registration sends the DELETE", async () => {
  const seen: string[] = [];
  const received = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    seen.push(`${req.method} ${new URL(req.url).pathname}`);
    if (req.method === "POST") {
      await req.text();
      received.resolve();
      await release.promise;
      return new Response("{}", { status: 201 });
    }
    return new Response(null, { status: 204 });
  });
  try {
    const announcer = announcerFor(server.addr.port);
    announcer.start();
    await received.promise;
    // The registration is on the other side; its answer has not come back yet.
    await announcer.stop();
    assert.deepEqual(seen, ["POST /api/servers/register", "DELETE /api/servers/utilities"]);
  } finally {
    release.resolve();
    await server.shutdown();
  }
});

Deno.test("announce: stop() after a refused registration sends nothing more", async () => {
  const seen: string[] = [];
  const refused = Promise.withResolvers<void>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    seen.push(`${req.method} ${new URL(req.url).pathname}`);
    await req.text();
    queueMicrotask(() => refused.resolve());
    return new Response("no", { status: 401 });
  });
  try {
    const announcer = announcerFor(server.addr.port, { initialMs: 60_000, maxMs: 60_000 });
    announcer.start();
    await refused.promise;
    // Let the announcer read the refusal before it is stopped.
    while (announcer.state().last_error === undefined) await new Promise((r) => setTimeout(r, 5));
    await announcer.stop();
    assert.deepEqual(seen, ["POST /api/servers/register"]);
  } finally {
    await server.shutdown();
  }
});

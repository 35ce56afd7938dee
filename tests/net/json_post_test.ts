/** src/net/json_post.ts: the URL below a configured base, the call deadline, and one JSON POST to a real loopback endpoint with each way it fails. */
import assert from "node:assert/strict";
import { callDeadline, endpointUrl, type JsonPostOptions, postJson } from "../../src/net/mod.ts";

class TestEndpointError extends Error {}

interface Seen {
  readonly method: string;
  readonly headers: Headers;
}

/** A loopback endpoint; the path picks how it answers. */
async function withEndpoint(fn: (base: string, seen: Seen[]) => Promise<void>) {
  const seen: Seen[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    seen.push({ method: req.method, headers: req.headers });
    const path = new URL(req.url).pathname;
    if (path === "/echo") return Response.json({ got: await req.json() });
    if (path === "/fail") return new Response("x".repeat(300), { status: 503 });
    if (path === "/huge") return new Response("y".repeat(2_000));
    if (path === "/redirect") {
      return new Response(null, { status: 302, headers: { location: "/echo" } });
    }
    if (path === "/slow") await new Promise((ok) => setTimeout(ok, 1_000));
    return new Response("late");
  });
  try {
    await fn(`http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`, seen);
  } finally {
    await server.shutdown();
  }
}

function options(overrides: Partial<JsonPostOptions> = {}): JsonPostOptions {
  return {
    deadline: callDeadline(5_000),
    timeoutMs: 5_000,
    maxResponseBytes: 1_024,
    label: "test endpoint",
    capSetting: "test.max_response_bytes",
    fail: (message) => new TestEndpointError(message),
    ...overrides,
  };
}

Deno.test("postJson() sends the body as JSON with the bearer key and returns the answer's text", async () => {
  await withEndpoint(async (base, seen) => {
    const text = await postJson(
      new URL(`${base}/echo`),
      { a: [1, "two"] },
      options({ apiKey: "k1" }),
    );
    assert.deepEqual(JSON.parse(text), { got: { a: [1, "two"] } });
    assert.equal(seen[0].method, "POST");
    assert.equal(seen[0].headers.get("content-type"), "application/json");
    assert.equal(seen[0].headers.get("authorization"), "Bearer k1");
    await postJson(new URL(`${base}/echo`), {}, options());
    assert.equal(seen[1].headers.get("authorization"), null, "no key, no authorization header");
  });
});

Deno.test("postJson() names the status and the first 200 characters of a non-2xx answer", async () => {
  await withEndpoint(async (base) => {
    await assert.rejects(
      postJson(new URL(`${base}/fail`), {}, options()),
      (e: unknown) =>
        e instanceof TestEndpointError &&
        e.message === `the test endpoint answered 503: ${"x".repeat(200)}`,
    );
  });
});

Deno.test("postJson() refuses an answer over the cap, naming the policy setting", async () => {
  await withEndpoint(async (base) => {
    await assert.rejects(
      postJson(new URL(`${base}/huge`), {}, options()),
      (e: unknown) =>
        e instanceof TestEndpointError &&
        e.message ===
          "the test endpoint's answer is over 1024 bytes (policy test.max_response_bytes)",
    );
  });
});

Deno.test("postJson() does not follow a redirect (a key must not follow one)", async () => {
  await withEndpoint(async (base, seen) => {
    await assert.rejects(
      postJson(new URL(`${base}/redirect`), {}, options({ apiKey: "k1" })),
      (e: unknown) =>
        e instanceof TestEndpointError &&
        e.message.startsWith(`cannot reach the test endpoint ${base}: `),
    );
    assert.equal(seen.length, 1, "only the first request was made");
  });
});

Deno.test("postJson() says the deadline passed when it, not the caller, ended the call", async () => {
  await withEndpoint(async (base) => {
    await assert.rejects(
      postJson(
        new URL(`${base}/slow`),
        {},
        options({ deadline: callDeadline(200), timeoutMs: 200 }),
      ),
      (e: unknown) =>
        e instanceof TestEndpointError &&
        e.message === "the test endpoint did not answer within 200 ms",
    );
    const caller = new AbortController();
    const pending = postJson(
      new URL(`${base}/slow`),
      {},
      options({ deadline: callDeadline(5_000, caller.signal) }),
    );
    caller.abort();
    await assert.rejects(
      pending,
      (e: unknown) =>
        e instanceof TestEndpointError && e.message.startsWith("cannot reach the test endpoint"),
    );
  });
});

Deno.test("endpointUrl() appends the path below the base and says why there is no URL", () => {
  const names = { label: "test endpoint", setting: "test.endpoint_url" };
  const at = endpointUrl("https://api.example:8443/v1//", "/chat/completions", names);
  assert.ok(at.ok);
  assert.equal(at.url.href, "https://api.example:8443/v1/chat/completions");
  assert.equal(at.origin, "https://api.example:8443");
  assert.deepEqual(endpointUrl(undefined, "/x", names), {
    ok: false,
    reason: "no test endpoint is configured (policy test.endpoint_url)",
  });
  assert.deepEqual(endpointUrl("not a url", "/x", names), {
    ok: false,
    reason: "policy test.endpoint_url is not a URL",
  });
  assert.deepEqual(endpointUrl("ftp://api.example/v1", "/x", names), {
    ok: false,
    reason: "policy test.endpoint_url must be http(s)",
  });
});

Deno.test("callDeadline() tells the deadline passing from the caller aborting", async () => {
  const timed = callDeadline(20);
  await new Promise((ok) => timed.signal.addEventListener("abort", ok, { once: true }));
  assert.equal(timed.late(), true);
  const caller = new AbortController();
  const cancelled = callDeadline(60_000, caller.signal);
  assert.equal(cancelled.signal.aborted, false);
  caller.abort();
  assert.equal(cancelled.signal.aborted, true);
  assert.equal(cancelled.late(), false);
});

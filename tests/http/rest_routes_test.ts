/**
 * The REST routes (`GET /tools`, `POST /invoke`, `POST /api/mcp/{service}/{action}`) in-process
 * (issue 8 §3): the whole app from createApp over a `:memory:` KV, each request handed to its
 * fetch handler with no socket. What the socket tests (rest_test.ts, services/rest_test.ts) do
 * not pin: the 400 that names the offending field, Content-Type and empty bodies, `debug`,
 * `hold_id`, Retry-After, and /tools listing what the caller's roles allow.
 */
import assert from "node:assert/strict";
import { createApp } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";
import { silentLogger } from "../../src/lib/mod.ts";
import { parsePolicy } from "../../src/governance/mod.ts";

type App = Awaited<ReturnType<typeof createApp>>;

async function withApp(policy: unknown, fn: (app: App) => Promise<void>): Promise<void> {
  const kv = await Deno.openKv(":memory:");
  const app = await createApp(
    loadConfig(["--port", "8000", "--kv", ":memory:"], () => undefined),
    {
      kv,
      logger: silentLogger,
      ...(policy !== undefined ? { policy: parsePolicy(policy), policySource: "test" } : {}),
    },
  );
  try {
    await fn(app);
  } finally {
    await app.close();
    kv.close();
  }
}

async function post(app: App, path: string, body: BodyInit | null, type = "application/json") {
  const res = await app.fetch(
    new Request(`http://127.0.0.1:8000${path}`, {
      method: "POST",
      headers: { "content-type": type },
      ...(body !== null ? { body } : {}),
    }),
  );
  return { status: res.status, headers: res.headers, body: await res.json() };
}

Deno.test("REST routes: /invoke refuses a malformed request 400 naming the field, before any call", async () => {
  await withApp(undefined, async (app) => {
    const before = (await app.ledger.head()).size;
    for (
      const [body, field] of [
        [{ tool: "calculate", arguments: {}, extra: 1 }, /\(root\) Unrecognized key: "extra"/],
        [{ tool: 7 }, /tool Invalid input: expected string/],
        [{ tool: "calculate", arguments: [1] }, /arguments Invalid input/],
        [{ tool: "calculate", hold_id: "h".repeat(65) }, /hold_id Too big/],
        [{ tool: "calculate", debug: "yes" }, /debug Invalid input/],
      ] as const
    ) {
      const res = await post(app, "/invoke", JSON.stringify(body));
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.match(res.body.error.message, /^Bad Request: expected \{"tool": string/);
      assert.match(res.body.error.message, field);
    }
    assert.equal((await app.ledger.head()).size, before, "nothing sealed for a malformed request");
  });
});

Deno.test("REST routes: the JSON routes want Content-Type application/json and a body", async () => {
  await withApp(undefined, async (app) => {
    for (const path of ["/invoke", "/api/mcp/memory/store"]) {
      const form = await post(app, path, "tool=calculate", "application/x-www-form-urlencoded");
      assert.equal(form.status, 415, path);
      assert.match(form.body.error.message, /^Unsupported Media Type/);
      const empty = await post(app, path, null);
      assert.equal(empty.status, 400, path);
      assert.equal(empty.body.error.message, "Parse error: empty body");
      const broken = await post(app, path, "{");
      assert.equal(broken.status, 400, path);
      assert.equal(broken.body.error.message, "Parse error: Invalid JSON");
    }
  });
});

Deno.test("REST routes: /invoke passes debug and hold_id to the call path and says Retry-After", async () => {
  await withApp({
    rate_limits: { per_principal_per_minute: 0, per_tool_per_minute: 1 },
  }, async (app) => {
    const plain = await post(app, "/invoke", JSON.stringify({ tool: "get_time", arguments: {} }));
    assert.equal(plain.status, 200, JSON.stringify(plain.body));
    assert.equal(plain.body.tool, "get_time");
    assert.equal(plain.body.ok, true);
    assert.equal(plain.body._debug, undefined);
    assert.equal(plain.headers.get("retry-after"), null);
    const limited = await post(
      app,
      "/invoke",
      JSON.stringify({ tool: "get_time", arguments: {}, debug: true }),
    );
    assert.equal(limited.status, 429);
    assert.equal(limited.body.ok, false);
    assert.equal(limited.body.error_kind, "blocked");
    const after = limited.body._constitutional.retry_after_s;
    assert.ok(after >= 1);
    assert.equal(limited.headers.get("retry-after"), String(after));
    assert.equal(typeof limited.body._debug, "object", "debug: true asks for the _debug block");
    // A hold id that names no hold: the call path refuses it, not the route.
    const unknownHold = await post(
      app,
      "/invoke",
      JSON.stringify({ tool: "calculate", arguments: { expression: "1+1" }, hold_id: "nope" }),
    );
    assert.equal(unknownHold.status, 403, JSON.stringify(unknownHold.body));
    assert.equal(unknownHold.body.policy_verdict, "VOID");
    assert.match(unknownHold.body.text, /hold nope does not exist/);
  });
});

Deno.test("REST routes: /tools lists only what the caller's roles allow, as the registry does", async () => {
  await withApp({
    default_roles: ["guest"],
    roles: { guest: { tools: ["calculate", "get_time"] } },
  }, async (app) => {
    const res = await app.fetch(new Request("http://127.0.0.1:8000/tools"));
    assert.equal(res.status, 200);
    const names = (await res.json()).tools.map((t: { name: string }) => t.name);
    assert.deepEqual(names, app.registry.list("anonymous").map((t) => t.name));
    assert.deepEqual([...names].sort(), ["calculate", "get_time"]);
    assert.ok(app.registry.list().length > names.length, "the full catalogue is larger");
  });
});

Deno.test("REST routes: /api/mcp/{service}/{action} checks service and action before the body", async () => {
  await withApp(undefined, async (app) => {
    // An unknown service or action is 404 even with an unreadable body: the body is not read.
    const svc = await post(app, "/api/mcp/nope/store", "{");
    assert.equal(svc.status, 404);
    assert.equal(
      svc.body.error.message,
      'Not Found: unknown service "nope"; services are memory, files, context, bus',
    );
    const act = await post(app, "/api/mcp/memory/Store", "{");
    assert.equal(act.status, 404);
    assert.match(act.body.error.message, /^Not Found: service memory has no action "Store"; /);
    assert.match(act.body.error.message, /actions are .*\bretrieve\b/);
    const proto = await post(app, "/api/mcp/constructor/x", "{}");
    assert.equal(proto.status, 404);
    assert.match(
      proto.body.error.message,
      /unknown service "constructor"/,
      "only the services' own names, not Object.prototype's",
    );
    for (const body of ["[1]", "null", '"text"']) {
      const bad = await post(app, "/api/mcp/memory/store", body);
      assert.equal(bad.status, 400, body);
      assert.equal(
        bad.body.error.message,
        "Bad Request: the body must be a JSON object of arguments",
      );
    }
    const stored = await post(
      app,
      "/api/mcp/memory/store",
      JSON.stringify({ key: "k", value: 1 }),
    );
    assert.equal(stored.status, 200, JSON.stringify(stored.body));
    assert.equal(stored.body.tool, "memory_store");
    const invalid = await post(app, "/api/mcp/memory/store", JSON.stringify({ key: 5 }));
    assert.equal(invalid.status, 422);
    assert.equal(invalid.body.error_kind, "invalid_arguments");
  });
});

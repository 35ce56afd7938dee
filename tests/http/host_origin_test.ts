/**
 * The hostOrigin middleware factory (issue 8 §1), in-process with app.request(): options checked
 * up front, Host and Origin checked per request against the current allow lists, exemptions
 * honoured, refusals logged and rendered by the app's error handler.
 */
import assert from "node:assert/strict";
import { Hono } from "hono";
import { hostOrigin } from "../../src/http/host_origin.ts";
import { HttpError } from "../../src/http/mod.ts";

function app(allow: () => { hosts: string[]; origins: string[] }, warned: string[]) {
  const a = new Hono();
  a.onError((e) =>
    e instanceof HttpError
      ? new Response(e.message, { status: e.status })
      : new Response("fault", { status: 500 })
  );
  a.use(
    "*",
    hostOrigin({
      allow,
      logger: {
        warn: (m: string, f?: Record<string, unknown>) => void warned.push(`${m} ${f?.path}`),
      },
      exempt: (req, path) => req.method === "GET" && path === "/health",
    }),
  );
  a.get("*", (c) => c.text("ok"));
  return a;
}

Deno.test("hostOrigin() refuses a foreign Host or Origin with 403 and logs it", async () => {
  const warned: string[] = [];
  const a = app(() => ({ hosts: ["a.example"], origins: ["https://a.example"] }), warned);
  assert.equal((await a.request("http://a.example/x")).status, 200);
  const host = await a.request("http://evil.example/x");
  assert.equal(host.status, 403);
  assert.match(await host.text(), /Host header "evil.example" is not allowed/);
  const origin = await a.request("http://a.example/x", {
    headers: { origin: "https://evil.example" },
  });
  assert.equal(origin.status, 403);
  assert.match(await origin.text(), /Origin "https:\/\/evil.example" is not allowed/);
  assert.equal(
    (await a.request("http://a.example/x", { headers: { origin: "https://a.example" } })).status,
    200,
  );
  assert.deepEqual(warned, ["request refused /x", "request refused /x"]);
});

Deno.test("hostOrigin() reads the allow lists per request and skips exempt requests", async () => {
  let hosts = ["a.example"];
  const a = app(() => ({ hosts, origins: [] }), []);
  assert.equal((await a.request("http://b.example/x")).status, 403);
  hosts = ["a.example", "b.example"];
  assert.equal((await a.request("http://b.example/x")).status, 200);
  assert.equal((await a.request("http://c.example/health")).status, 200, "the exempt probe");
  assert.equal(
    (await a.request("http://c.example/health", { method: "POST" })).status,
    403,
    "only the exempt method",
  );
});

Deno.test("hostOrigin() checks its options when it is created", () => {
  const logger = { warn() {} };
  const allow = () => ({ hosts: [], origins: [] });
  // deno-lint-ignore no-explicit-any
  const bad = (o: any) => () => hostOrigin(o);
  assert.throws(bad({ logger }), TypeError);
  assert.throws(bad({ allow, logger: {} }), TypeError);
  assert.throws(bad({ allow, logger, exempt: "yes" }), TypeError);
  assert.equal(typeof hostOrigin({ allow, logger }), "function");
});

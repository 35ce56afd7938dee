/** Upstreams file and registration manifests: strict, with errors naming the field. */
import assert from "node:assert/strict";
import { ManifestError, parseRegistration, parseUpstreams } from "../../src/gateway/mod.ts";
import { hostAllowed } from "../../src/net/mod.ts";

function fieldOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ManifestError, String(e));
    return `${e.field} | ${e.message}`;
  }
  throw new Error("expected a ManifestError");
}

Deno.test("parseUpstreams() names the bad field", () => {
  assert.match(fieldOf(() => parseUpstreams("{")), /not valid JSON/);
  assert.match(fieldOf(() => parseUpstreams("{}")), /expected an array/);
  assert.match(
    fieldOf(() => parseUpstreams('[{"name":"a","transport":"sse"}]')),
    /^\[0\]\.url \| \[0\]\.url: required for transport "sse"/,
  );
  assert.match(
    fieldOf(() =>
      parseUpstreams('[{"name":"a","transport":"stdio","command":"x","url":"http://h/"}]')
    ),
    /\[0\]\.url: not allowed for transport "stdio"/,
  );
  assert.match(
    fieldOf(() => parseUpstreams('[{"name":"a","transport":"grpc","url":"http://h/"}]')),
    /\[0\]\.transport/,
  );
  assert.match(
    fieldOf(() => parseUpstreams('[{"name":"a__b","transport":"sse","url":"http://h/"}]')),
    /\[0\]\.name: must not contain "__"/,
  );
  assert.match(
    fieldOf(() => parseUpstreams('[{"name":"a","transport":"sse","url":"http://h/","typo":1}]')),
    /typo/,
  );
  assert.match(
    fieldOf(() =>
      parseUpstreams(
        '[{"name":"a","transport":"sse","url":"http://h/"},{"name":"a","transport":"sse","url":"http://h/"}]',
      )
    ),
    /\[1\]\.name: "a" is listed twice/,
  );
  assert.match(
    fieldOf(() => parseUpstreams('[{"name":"a","transport":"sse","url":"http://u:p@h/"}]')),
    /\[0\]\.url: expected an http\(s\) URL without credentials/,
  );
  const ok = parseUpstreams(
    '[{"name":"ev","transport":"streamable-http","url":"http://127.0.0.1:3001/mcp","prefix":"","timeout_ms":500}]',
  );
  assert.equal(ok[0].prefix, "");
});

Deno.test("parseRegistration() maps the utilities manifest and names the bad field", () => {
  const c = parseRegistration({
    server_name: "utils",
    endpoint: "https://utils.example/mcp",
    version: "2",
    tools: ["get_time"],
    health_check: "https://utils.example/health",
  });
  assert.deepEqual(c.tools, { allow: ["get_time"] });
  assert.equal(c.transport, "streamable-http");
  assert.match(fieldOf(() => parseRegistration({ server_name: "u", version: "1" })), /^endpoint/);
  assert.match(fieldOf(() => parseRegistration([])), /expected a JSON object/);
});

Deno.test("hostAllowed() matches names exactly and addresses by CIDR", () => {
  assert.equal(hostAllowed("127.0.0.1", ["127.0.0.1"], ["127.0.0.0/8"]), true);
  assert.equal(hostAllowed("utils.internal", ["10.1.2.3"], ["utils.internal"]), true);
  assert.equal(hostAllowed("utils.internal", ["10.1.2.3"], ["10.0.0.0/8"]), true);
  assert.equal(hostAllowed("utils.internal", ["10.1.2.3", "192.168.1.1"], ["10.0.0.0/8"]), false);
  assert.equal(hostAllowed("::1", ["::1"], ["::1/128"]), true);
  assert.equal(hostAllowed("fd00::5", ["fd00::5"], ["fc00::/7"]), true);
  assert.equal(hostAllowed("10.0.0.1", ["10.0.0.1"], ["11.0.0.0/8", "utils.internal"]), false);
});

Deno.test("parseUpstreams() validates oauth mode authorization_code strictly, naming the field", () => {
  const up = (oauth: unknown, transport = "streamable-http") =>
    JSON.stringify([{
      name: "up",
      transport,
      ...(transport === "stdio" ? { command: "x" } : { url: "https://up.example/mcp" }),
      oauth,
    }]);
  assert.deepEqual(parseUpstreams(up({ mode: "authorization_code" }))[0].oauth, {
    mode: "authorization_code",
  });
  assert.deepEqual(
    parseUpstreams(up({ mode: "authorization_code", scope: "mcp profile" }))[0].oauth,
    { mode: "authorization_code", scope: "mcp profile" },
  );
  assert.match(
    fieldOf(() => parseUpstreams(up({ mode: "authorisation_code" }))),
    /^\[0\]\.oauth\.mode \| .*expected "authorization_code"/,
  );
  assert.match(
    fieldOf(() => parseUpstreams(up({ mode: "authorization_code", client_id: "x" }))),
    /^\[0\]\.oauth \| .*Unrecognized key: "client_id"/,
  );
  assert.match(
    fieldOf(() => parseUpstreams(up({ mode: "authorization_code", scope: "a\nb" }))),
    /^\[0\]\.oauth\.scope \| .*space-separated scope tokens/,
  );
  assert.match(
    fieldOf(() => parseUpstreams(up({ mode: "authorization_code" }, "stdio"))),
    /\[0\]\.oauth: not allowed for transport "stdio"/,
  );
  assert.match(
    fieldOf(() => parseUpstreams(up("yes"))),
    /^\[0\]\.oauth \| .*\{mode: "authorization_code", scope\?\}/,
  );
  // The grant shape keeps its own field errors.
  assert.match(
    fieldOf(() => parseUpstreams(up({ grant: "password" }))),
    /^\[0\]\.oauth\.grant \| /,
  );
});

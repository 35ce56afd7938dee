// deno-lint-ignore-file no-explicit-any -- envelopes and vault entries are probed field by field
/**
 * Roles grant tools by name or glob (own tools and `<server>__*` upstream
 * tools), deny wins: the matcher and the permission rule as units, then
 * through a real server with a real upstream (server-everything), tokens
 * minted in its KV, the v1 SDK client (2025 session) and the v2 client pinned
 * to 2026-07-28 — tools/list, GET /tools and the schemas resource show each
 * principal only what it may call, and F11 refuses the rest.
 */
import assert from "node:assert/strict";
import {
  parsePolicy,
  PolicyError,
  toolGlobMatches,
  toolPermission,
} from "../../src/governance/mod.ts";
import { parseUpstreams } from "../../src/gateway/mod.ts";
import { createToken } from "../../src/identity/mod.ts";
import { connectModernAs, connectV1As, envelopeOf } from "../_helpers/client.ts";
import { startServer, type TestServer } from "../_helpers/server.ts";
import { startEverything } from "../_helpers/upstreams.ts";

Deno.test("rbac: tool globs match by * and ? only, in linear time", () => {
  const cases: [string, string, boolean][] = [
    ["deploy", "deploy", true],
    ["deploy", "deploy2", false],
    ["deploy", "redeploy", false],
    ["github__*", "github__create_issue", true],
    ["github__*", "github__", true],
    ["github__*", "gitlab__create_issue", false],
    ["*__echo", "ev__echo", true],
    ["*__echo", "ev__echo2", false],
    ["get_?ime", "get_time", true],
    ["get_?ime", "get_ime", false],
    ["*", "anything", true],
    ["a*b*c", "aXXbYYc", true],
    ["a*b*c", "aXXbYY", false],
    ["ev__get-*", "ev__get-sum", true],
    // Regex metacharacters are literal (the policy refuses most of them anyway).
    ["ev.echo", "evXecho", false],
  ];
  for (const [glob, name, expected] of cases) {
    assert.equal(toolGlobMatches(glob, name), expected, `${glob} ~ ${name}`);
  }
  // A pathological glob against a long name answers at once (no exponential backtracking).
  const started = performance.now();
  assert.equal(toolGlobMatches("*a*a*a*a*a*a*a*a*a*a*b", "a".repeat(10_000)), false);
  assert.ok(performance.now() - started < 2_000, "linear-ish matching");
});

Deno.test("rbac: toolPermission — grants by glob, deny wins, policy-wide deny names everyone", () => {
  const policy = parsePolicy({
    roles: {
      ops: { tools: ["deploy", "github__*"], deny: ["github__delete_*"] },
      dev: { tools: ["get_time", "github__list_*"] },
      viewer: { tools: ["*"], deny: ["*__*"] },
    },
    tools: { calculate: { deny: true }, github__list_repos: { roles: ["dev"] } },
  });
  const yes = (roles: string[], tool: string) => toolPermission(policy, roles, tool).allowed;
  assert.equal(yes(["ops"], "deploy"), true);
  assert.equal(yes(["ops"], "github__create_issue"), true);
  assert.equal(yes(["dev"], "deploy"), false);
  assert.equal(yes(["dev"], "github__list_issues"), true);
  // Deny in one held role wins over a grant in another.
  const denied = toolPermission(policy, ["ops", "dev"], "github__delete_repo");
  assert.deepEqual(denied, { allowed: false, reason: "is denied github__delete_repo by role ops" });
  assert.equal(yes(["viewer"], "get_time"), true);
  assert.equal(yes(["viewer"], "ev__echo"), false);
  // A role the policy does not define grants nothing.
  assert.deepEqual(toolPermission(policy, ["ghost"], "get_time"), {
    allowed: false,
    reason: "holds no role granting get_time",
  });
  // The tool's own rule still applies: a per-tool role list, a policy-wide deny.
  assert.equal(yes(["ops"], "github__list_repos"), false);
  assert.equal(yes(["dev"], "github__list_repos"), true);
  assert.deepEqual(toolPermission(policy, ["viewer"], "calculate"), {
    allowed: false,
    everyone: true,
    reason: "policy denies tool calculate",
  });
  // Without `roles` every principal may call every tool not otherwise ruled.
  const open = parsePolicy({});
  assert.equal(toolPermission(open, [], "anything__at_all").allowed, true);
});

Deno.test("rbac: a bad role grant is refused when the policy loads, naming the field", () => {
  for (
    const [doc, field] of [
      [{ roles: { ops: { tools: ["deploy;rm"] } } }, "roles.ops.tools[0]"],
      [{ roles: { ops: { tools: "deploy" } } }, "roles.ops.tools"],
      [{ roles: { ops: { tools: ["x".repeat(201)] } } }, "roles.ops.tools[0]"],
      [{ roles: { ops: { tool: ["deploy"] } } }, "roles.ops"],
      [{ roles: { ops: { deny: [""] } } }, "roles.ops.deny[0]"],
      [{ roles: [] }, "roles"],
    ] as const
  ) {
    assert.throws(() => parsePolicy(doc), (e: unknown) => {
      assert.ok(e instanceof PolicyError, String(e));
      assert.ok(
        e.issues.some((i) => i.path === field),
        `${JSON.stringify(doc)}: expected an issue at ${field}, got ${JSON.stringify(e.issues)}`,
      );
      return true;
    });
  }
});

const v1 = (server: TestServer, secret: string) => connectV1As(server.url, secret, "rbac-v1");
const v2 = (server: TestServer, secret: string) => connectModernAs(server.url, secret, "rbac-v2");

async function entryAt(server: TestServer, index: number): Promise<any> {
  const e = await server.app.ledger.entry(index);
  return JSON.parse(new TextDecoder().decode(e!.bytes));
}

const POLICY = {
  roles: {
    ops: { tools: ["get_time", "calculate", "ev__*"], deny: ["ev__get-env"] },
    dev: { tools: ["get_time", "ev__echo"] },
  },
  rate_limits: { per_principal_per_minute: 0, per_ip_per_minute: 0 },
};

Deno.test({
  name:
    "rbac: each principal lists and calls only what its roles grant, own and upstream tools, in both eras",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using upstream = await startEverything("streamableHttp");
    await using server = await startServer({
      policy: POLICY,
      upstreams: parseUpstreams(
        JSON.stringify([{ name: "ev", transport: "streamable-http", url: upstream.url }]),
      ),
    });
    const alice = await createToken(server.kv, { name: "alice", roles: ["ops"] });
    const bob = await createToken(server.kv, { name: "bob", roles: ["dev"] });

    const names = async (client: { listTools(): Promise<{ tools: { name: string }[] }> }) =>
      (await client.listTools()).tools.map((t) => t.name).sort();

    for (const connect of [v1, v2]) {
      const a: any = await connect(server, alice.secret);
      const b: any = await connect(server, bob.secret);
      try {
        const era = connect === v1 ? "2025 session" : "2026-07-28";
        const aNames = await names(a);
        assert.ok(aNames.includes("get_time") && aNames.includes("calculate"), era);
        assert.ok(aNames.includes("ev__echo") && aNames.includes("ev__get-sum"), era);
        assert.ok(!aNames.includes("ev__get-env"), `${era}: deny wins over ev__*`);
        assert.ok(!aNames.includes("fetch_content"), `${era}: ungranted own tool hidden`);
        assert.deepEqual(await names(b), ["ev__echo", "get_time"], era);

        // Allowed calls run; the rest are VOID with the reason, nothing executed.
        const ok: any = await b.callTool({ name: "ev__echo", arguments: { message: "hi" } });
        assert.equal(ok.content[0].text, "Echo: hi", era);
        assert.equal(ok._meta["warden/governance"].policy_verdict, "SEAL", era);
        const sum: any = await b.callTool({ name: "ev__get-sum", arguments: { a: 1, b: 2 } });
        const gov = sum._meta?.["warden/governance"] ?? envelopeOf(sum);
        assert.equal(gov.policy_verdict, "VOID", `${era}: ${JSON.stringify(sum)}`);
        assert.match(
          JSON.stringify(sum),
          /principal bob \(roles: dev\) holds no role granting ev__get-sum/,
          era,
        );
        assert.doesNotMatch(JSON.stringify(sum), /"3"|: 3\b/, `${era}: the upstream never ran`);
        const calc = envelopeOf(
          await b.callTool({ name: "calculate", arguments: { expression: "2+3" } }) as any,
        );
        assert.equal(calc.policy_verdict, "VOID", era);
        assert.match(calc.message + JSON.stringify(calc), /holds no role granting calculate/);
        const env: any = await a.callTool({ name: "ev__get-env", arguments: {} });
        assert.match(
          JSON.stringify(env),
          /principal alice \(roles: ops\) is denied ev__get-env by role ops/,
          era,
        );
        const bad = await entryAt(server, calc._constitutional.vault.index);
        assert.equal(bad.principal, "bob", "the refusal is sealed under the caller's name");

        // The schemas resource lists only the reader's tools.
        const res: any = await b.readResource({ uri: "arifos://aaa/schemas" });
        assert.deepEqual(Object.keys(JSON.parse(res.contents[0].text).tools).sort(), [
          "ev__echo",
          "get_time",
        ]);
      } finally {
        await a.close();
        await b.close();
      }
    }

    // GET /tools is filtered the same way.
    const listed = async (secret: string) => {
      const res = await fetch(`${server!.url}/tools`, {
        headers: { authorization: `Bearer ${secret}` },
      });
      assert.equal(res.status, 200);
      return ((await res.json()).tools as { name: string }[]).map((t) => t.name).sort();
    };
    assert.deepEqual(await listed(bob.secret), ["ev__echo", "get_time"]);
    assert.ok((await listed(alice.secret)).includes("ev__get-sum"));

    // An unauthenticated loopback caller is `anonymous` with default_roles (["user"]),
    // which this policy does not define: it may list and call nothing.
    const anon = await fetch(`${server.url}/tools`);
    assert.deepEqual((await anon.json()).tools, []);
  },
});

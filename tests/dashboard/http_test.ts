// deno-lint-ignore-file no-explicit-any -- JSON bodies are probed field by field
/**
 * The dashboard over plain HTTP (no browser): access control, cookies, CSRF,
 * read-only auditors, a hold decided through the page's form with the
 * signature `warden approve` makes, the live feed's SSE stream, and the
 * vault verification passing and then failing on a tampered copy.
 */
import assert from "node:assert/strict";
import { loadOperatorKey, signDecision } from "../../src/governance/mod.ts";
import { asset, assetNames, DASHBOARD_CSP } from "../../src/dashboard/mod.ts";
import {
  copyKv,
  csrfIn,
  loginCookie,
  PASSWORD,
  setCookies,
  startDashboardServer,
  tamperEntry,
} from "../_helpers/dashboard.ts";
import { addUser, removeUser } from "../../src/identity/mod.ts";
import { signToolApproval, type UpstreamConfig } from "../../src/gateway/mod.ts";
import { generateOperatorKey } from "../../src/governance/mod.ts";
import { startServer } from "../_helpers/server.ts";
import { denoDir } from "../_helpers/upstreams.ts";

const form = (fields: Record<string, string>, cookie?: string): RequestInit => ({
  method: "POST",
  redirect: "manual",
  headers: {
    "content-type": "application/x-www-form-urlencoded",
    ...(cookie ? { cookie } : {}),
  },
  body: new URLSearchParams(fields),
});

async function invoke(base: string, tool: string, args: Record<string, unknown>, holdId?: string) {
  const res = await fetch(`${base}/invoke`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ tool, arguments: args, ...(holdId ? { hold_id: holdId } : {}) }),
  });
  return { status: res.status, body: await res.json() as any };
}

Deno.test("dashboard: access needs a session of an operator or auditor; cookies and CSP are strict", async (t) => {
  const f = await startDashboardServer();
  const base = f.server.url;
  try {
    await t.step("/ redirects to /dashboard, which redirects to /login and back", async () => {
      const root = await fetch(`${base}/`, { redirect: "manual" });
      await root.body?.cancel();
      assert.equal(root.status, 302);
      assert.equal(root.headers.get("location"), "/dashboard");
      const dash = await fetch(`${base}/dashboard/holds?x=1`, { redirect: "manual" });
      await dash.body?.cancel();
      assert.equal(dash.status, 302);
      assert.equal(dash.headers.get("location"), "/login?return_to=%2Fdashboard%2Fholds%3Fx%3D1");
      for (const path of ["/dashboard/feed/events", "/dashboard/vault/verify"]) {
        const r = await fetch(`${base}${path}`, path.endsWith("verify") ? form({}) : {});
        await r.body?.cancel();
        assert.equal(r.status, 401, path);
      }
    });
    await t.step(
      "login sets an HttpOnly SameSite=Strict session and returns to the page",
      async () => {
        const page = await fetch(`${base}/login?return_to=%2Fdashboard%2Fvault`);
        assert.equal(page.headers.get("content-security-policy"), DASHBOARD_CSP);
        const loginSecret = setCookies(page).get("warden_login")!;
        const csrf = csrfIn(await page.text());
        const cookie = `warden_login=${loginSecret}`;
        const forged = await fetch(
          `${base}/login?return_to=%2Fdashboard`,
          form({ username: "olive", password: PASSWORD }, cookie),
        );
        await forged.body?.cancel();
        assert.equal(forged.status, 403, "no CSRF token");
        const wrong = await fetch(
          `${base}/login?return_to=%2Fdashboard`,
          form({ csrf, username: "olive", password: "not the password" }, cookie),
        );
        assert.equal(wrong.status, 401);
        assert.match(await wrong.text(), /Wrong user name or password/);
        const nemo = await fetch(
          `${base}/login?return_to=%2Fdashboard`,
          form({ csrf, username: "nemo", password: PASSWORD }, cookie),
        );
        assert.equal(nemo.status, 403);
        assert.match(await nemo.text(), /neither the operator, admin nor auditor role/);
        const ok = await fetch(
          `${base}/login?return_to=%2Fdashboard%2Fvault`,
          form({ csrf, username: "olive", password: PASSWORD }, cookie),
        );
        await ok.body?.cancel();
        assert.equal(ok.status, 303);
        assert.equal(ok.headers.get("location"), "/dashboard/vault");
        const line = ok.headers.getSetCookie().find((l) => l.startsWith("warden_dashboard="))!;
        assert.match(line, /; HttpOnly/);
        assert.match(line, /; SameSite=Strict/);
        assert.match(line, /; Path=\//);
        const evil = await fetch(
          `${base}/login?return_to=%2F%2Fevil.example%2F`,
          form({ csrf, username: "olive", password: PASSWORD }, cookie),
        );
        await evil.body?.cancel();
        assert.equal(evil.headers.get("location"), "/dashboard", "no open redirect");
      },
    );
    await t.step(
      "every page: strict CSP, no URL of another host, assets from the loader",
      async () => {
        const cookie = await loginCookie(base, "olive");
        for (const path of ["", "/holds", "/vault", "/usage", "/upstreams"]) {
          const r = await fetch(`${base}/dashboard${path}`, { headers: { cookie } });
          assert.equal(r.status, 200, path);
          assert.equal(r.headers.get("content-security-policy"), DASHBOARD_CSP);
          assert.equal(r.headers.get("x-frame-options"), "DENY");
          // no-referrer would make a browser send `Origin: null` with the page's own POSTs.
          assert.equal(r.headers.get("referrer-policy"), "same-origin");
          const text = await r.text();
          assert.doesNotMatch(text, /(?:src|href|action)="(?:https?:)?\/\//, path);
          assert.doesNotMatch(
            text,
            /<script>|<style>| style="| on[a-z]+="/,
            `${path}: no inline code`,
          );
        }
        assert.deepEqual(assetNames().sort(), ["dashboard.css", "dashboard.js", "favicon.svg"]);
        for (const name of assetNames()) {
          const r = await fetch(`${base}/dashboard/assets/${name}`);
          assert.equal(await r.text(), asset(name)!.body);
          assert.equal(r.headers.get("content-type"), asset(name)!.type);
        }
      },
    );
    await t.step("a logged-in session's POST without its CSRF token is refused", async () => {
      const cookie = await loginCookie(base, "olive");
      for (const fields of [{}, { csrf: "A".repeat(43) }] as Record<string, string>[]) {
        const r = await fetch(`${base}/dashboard/vault/verify`, form(fields, cookie));
        assert.equal(r.status, 403);
        assert.match(await r.text(), /no valid CSRF token/);
      }
      const page = await (await fetch(`${base}/dashboard/vault`, { headers: { cookie } })).text();
      const other = await loginCookie(base, "audrey");
      const stolen = await fetch(
        `${base}/dashboard/vault/verify`,
        form({ csrf: csrfIn(page) }, other),
      );
      await stolen.body?.cancel();
      assert.equal(stolen.status, 403, "a token is bound to its session");
      const json = await fetch(`${base}/dashboard/vault/verify`, {
        method: "POST",
        headers: { "content-type": "application/json", cookie },
        body: JSON.stringify({ csrf: csrfIn(page) }),
      });
      await json.body?.cancel();
      assert.equal(json.status, 415);
    });
    await t.step("logout ends the session", async () => {
      const cookie = await loginCookie(base, "olive");
      const page = await (await fetch(`${base}/dashboard`, { headers: { cookie } })).text();
      const out = await fetch(`${base}/dashboard/logout`, form({ csrf: csrfIn(page) }, cookie));
      await out.body?.cancel();
      assert.equal(out.status, 303);
      const after = await fetch(`${base}/dashboard`, { headers: { cookie }, redirect: "manual" });
      await after.body?.cancel();
      assert.equal(after.status, 302);
    });
  } finally {
    await f.close();
  }
});

Deno.test("dashboard: a hold decided in the page runs the held call exactly once; auditors only read", async () => {
  const f = await startDashboardServer();
  const base = f.server.url;
  try {
    const args = { note: "rotate the keys" };
    const held = await invoke(base, "test_held", args);
    assert.equal(held.status, 202);
    const holdId = held.body._constitutional.hold.id;

    const auditor = await loginCookie(base, "audrey");
    const audit = await (await fetch(`${base}/dashboard/holds`, { headers: { cookie: auditor } }))
      .text();
    assert.match(audit, new RegExp(holdId));
    assert.match(audit, /rotate the keys/, "the arguments are shown");
    assert.doesNotMatch(audit, /<form class="sign"|Approve<\/button>/, "no approve buttons");
    const key = await loadOperatorKey(f.keyFile);
    const hold = await (await fetch(`${base}/holds/${holdId}`)).json();
    const signature = await signDecision(key, {
      decision: "approve",
      holdId,
      digest: hold.digest,
    });
    const refused = await fetch(
      `${base}/dashboard/holds/${holdId}/decide`,
      form({ csrf: csrfIn(audit), decision: "approve", operator: "alice", signature }, auditor),
    );
    assert.equal(refused.status, 403);
    assert.match(await refused.text(), /read-only/);

    const op = await loginCookie(base, "olive");
    const page = await (await fetch(`${base}/dashboard/holds`, { headers: { cookie: op } })).text();
    assert.match(page, new RegExp(`data-digest="${hold.digest}"`));
    const bad = await fetch(
      `${base}/dashboard/holds/${holdId}/decide`,
      form({
        csrf: csrfIn(page),
        decision: "deny",
        operator: "alice",
        signature, // an approval's signature does not deny
      }, op),
    );
    assert.equal(bad.status, 403);
    assert.match(await bad.text(), /does not verify/);
    const ok = await fetch(
      `${base}/dashboard/holds/${holdId}/decide`,
      form({ csrf: csrfIn(page), decision: "approve", operator: "alice", signature }, op),
    );
    await ok.body?.cancel();
    assert.equal(ok.status, 303);
    const location = ok.headers.get("location")!;
    assert.equal(location, `/dashboard/holds?decided=${holdId}`);
    const after = await (await fetch(`${base}${location}`, { headers: { cookie: op } })).text();
    assert.match(after, new RegExp(`Hold ${holdId} \\(test_held\\): approved; signed by alice\\.`));
    // The flash comes from the store: a crafted link cannot make the page claim an approval.
    for (const q of ["done=Approved%20hold%20x%20as%20alice", "decided=no-such-hold"]) {
      const crafted =
        await (await fetch(`${base}/dashboard/holds?${q}`, { headers: { cookie: op } }))
          .text();
      assert.doesNotMatch(crafted, /class="flash"|Approved hold/, q);
    }
    assert.equal(f.held.runs(), 0);
    const ran = await invoke(base, "test_held", args, holdId);
    assert.equal(ran.status, 200, JSON.stringify(ran.body));
    const again = await invoke(base, "test_held", args, holdId);
    assert.notEqual(again.status, 200);
    assert.equal(f.held.runs(), 1, "released exactly once");
    await f.server.app.ledger.flush();
    const feed = await (await fetch(`${base}/dashboard?tool=test_held&verdict=SEAL`, {
      headers: { cookie: auditor },
    })).text();
    assert.equal([...feed.matchAll(/<tr data-index=/g)].length, 1, "one released call, sealed");
  } finally {
    await f.close();
  }
});

Deno.test("dashboard: the feed streams new calls over SSE, filtered", async () => {
  const f = await startDashboardServer();
  const base = f.server.url;
  try {
    const cookie = await loginCookie(base, "audrey");
    await invoke(base, "calculate", { expression: "1+1" });
    await f.server.app.ledger.flush();
    const page = await (await fetch(`${base}/dashboard`, { headers: { cookie } })).text();
    assert.match(page, /<td class="tool">calculate<\/td>/);
    const stream = /data-stream="([^"]+)"/.exec(page)![1].replaceAll("&amp;", "&");
    const ac = new AbortController();
    const res = await fetch(`${base}${stream.replace("?", "?tool=calculate&")}`, {
      headers: { cookie },
      signal: ac.signal,
    });
    assert.equal(res.headers.get("content-type"), "text/event-stream");
    await invoke(base, "test_held", { note: "filtered out" });
    await invoke(base, "calculate", { expression: "6*7" });
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    const deadline = Date.now() + 10_000;
    while (!text.includes("event: call") && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    ac.abort();
    const data = JSON.parse(/event: call\ndata: (.*)\n/.exec(text)![1]);
    assert.equal(data.tool, "calculate");
    assert.equal(data.verdict, "SEAL");
    assert.equal(data.principal, "anonymous");
    assert.match(data.latency, /^\d+\.\d ms$/);
    assert.doesNotMatch(text, /test_held/, "the filter applies to the stream");
  } finally {
    await f.close();
  }
});

Deno.test("dashboard: full verification passes, and fails naming the index on a tampered copy", async () => {
  const f = await startDashboardServer({ args: ["--token", "s3cret-token-for-tests"] });
  const base = f.server.url;
  const auth = { authorization: "Bearer s3cret-token-for-tests" };
  try {
    for (let i = 0; i < 5; i++) {
      await fetch(`${base}/invoke`, {
        method: "POST",
        headers: { "content-type": "application/json", ...auth },
        body: JSON.stringify({ tool: "calculate", arguments: { expression: `${i}+1` } }),
      }).then((r) => r.body?.cancel());
    }
    await f.server.app.ledger.flush();
    const cookie = await loginCookie(base, "audrey");
    // With --token the session still reads the dashboard and the vault links, without the token.
    const entry = await fetch(`${base}/vault/entries/0`, { headers: { cookie } });
    assert.equal(entry.status, 200);
    await entry.body?.cancel();
    const noSession = await fetch(`${base}/vault/entries/0`);
    await noSession.body?.cancel();
    assert.equal(noSession.status, 401);
    const entryPage = await fetch(`${base}/dashboard/entries/2`, { headers: { cookie } });
    assert.match(await entryPage.text(), /the proof leads to the root/);
    const vault = await (await fetch(`${base}/dashboard/vault`, { headers: { cookie } })).text();
    const verify = await fetch(
      `${base}/dashboard/vault/verify`,
      form({ csrf: csrfIn(vault) }, cookie),
    );
    const result = await verify.text();
    assert.match(result, /id="verify-result"\s+class="ok"\s+data-ok="true"/);
    assert.match(result, /PASS —\s+OK: \d+ entries/);

    const copy = await copyKv(f.server.kv, `${f.dir}/copy.db`);
    const target = 3;
    await tamperEntry(copy, target, '"tool":"calculate"', '"tool":"calculata"');
    const second = await startServer({ kv: copy });
    try {
      const c2 = await loginCookie(second.url, "audrey");
      const v2 = await (await fetch(`${second.url}/dashboard/vault`, { headers: { cookie: c2 } }))
        .text();
      const failed = await (await fetch(
        `${second.url}/dashboard/vault/verify`,
        form({ csrf: csrfIn(v2) }, c2),
      )).text();
      assert.match(failed, new RegExp(`class="bad"\\s+data-ok="false"\\s+data-index="${target}"`));
      assert.match(failed, new RegExp(`FAILED —\\s+FAIL at index ${target}: `));
    } finally {
      await second.close();
      copy.close();
    }
  } finally {
    await f.close();
  }
});

Deno.test("dashboard: under --auth oauth, /login without return_to is still the OAuth login", async () => {
  await using server = await startServer({ args: ["--auth", "oauth"] });
  const oauthLogin = await fetch(`${server.url}/login?request=nothing`);
  assert.equal(oauthLogin.status, 400);
  assert.match(await oauthLogin.text(), /no authorization request here/);
  const dash = await fetch(`${server.url}/login?return_to=%2Fdashboard`);
  assert.equal(dash.status, 200);
  assert.match(await dash.text(), /Sign in to the Warden dashboard/);
  const mcp = await fetch(`${server.url}/dashboard`, { redirect: "manual" });
  await mcp.body?.cancel();
  assert.equal(mcp.status, 302, "not the bearer challenge");
});

Deno.test("dashboard: removing a user ends their sessions, whatever the policy grants the name", async () => {
  const kv = await Deno.openKv(":memory:");
  // The policy still names pat an auditor after the user record is gone.
  const server = await startServer({ kv, policy: { principals: { pat: { roles: ["auditor"] } } } });
  try {
    await addUser(kv, { name: "pat", password: PASSWORD, roles: [] });
    const cookie = await loginCookie(server.url, "pat");
    const before = await fetch(`${server.url}/dashboard`, { headers: { cookie } });
    await before.body?.cancel();
    assert.equal(before.status, 200);
    assert.equal(await removeUser(kv, "pat"), true);
    const after = await fetch(`${server.url}/dashboard`, {
      headers: { cookie },
      redirect: "manual",
    });
    await after.body?.cancel();
    assert.equal(after.status, 302);
    assert.match(after.headers.get("location")!, /^\/login\?return_to=/);
    const feed = await fetch(`${server.url}/dashboard/feed/events`, { headers: { cookie } });
    await feed.body?.cancel();
    assert.equal(feed.status, 401);
  } finally {
    await server.close();
    kv.close();
  }
});

Deno.test({
  name:
    "dashboard: a changed upstream definition is re-pinned through the page; the flash is the state",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "warden-dashboard-pin-" });
    const kv = await Deno.openKv(`${dir}/kv.db`);
    const upstream = (description: string): UpstreamConfig => ({
      name: "chg",
      transport: "stdio",
      command: Deno.execPath(),
      args: [
        "run",
        "-A",
        "--quiet",
        new URL("../_helpers/changing_upstream.ts", import.meta.url).pathname,
      ],
      env: { ADD_DESCRIPTION: description, DENO_DIR: denoDir() },
      sandbox: { enabled: false }, // this project's own test server
    });
    const alice = await generateOperatorKey("alice");
    const policy = { operators: [{ name: "alice", public_key: alice.publicKey }] };
    await addUser(kv, { name: "olive", password: PASSWORD, roles: ["operator"] });
    let server = await startServer({ kv, policy, upstreams: [upstream("Adds two numbers.")] });
    try {
      await server.close();
      server = await startServer({ kv, policy, upstreams: [upstream("Adds, and remembers.")] });
      const base = server.url;
      const cookie = await loginCookie(base, "olive");
      const page = await (await fetch(`${base}/dashboard/upstreams`, { headers: { cookie } }))
        .text();
      const sha256 = /data-server="chg" data-tool="add" data-sha256="([0-9a-f]{64})"/.exec(page)
        ?.[1];
      assert.ok(sha256, "the changed tool has a signing form");
      const key = await loadOperatorKey(alice.keyFile);
      const signature = await signToolApproval(key, "chg", "add", sha256);
      const ok = await fetch(
        `${base}/dashboard/upstreams/chg/tools/add/approve`,
        form({ csrf: csrfIn(page), sha256, operator: "alice", signature }, cookie),
      );
      await ok.body?.cancel();
      assert.equal(ok.status, 303);
      const location = ok.headers.get("location")!;
      assert.equal(location, "/dashboard/upstreams?server=chg&tool=add");
      const after = await (await fetch(`${base}${location}`, { headers: { cookie } })).text();
      assert.match(after, new RegExp(`chg/add: ok, pinned at ${sha256}`));
      assert.doesNotMatch(after, /data-tool="add"/, "nothing left to approve");
      const crafted = await (await fetch(`${base}/dashboard/upstreams?server=chg&tool=nope`, {
        headers: { cookie },
      })).text();
      assert.doesNotMatch(crafted, /class="flash"/);
    } finally {
      await server.close();
      kv.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test("dashboard: a reconnecting feed resumes after its Last-Event-ID, with the other instance's calls", async () => {
  const f = await startDashboardServer();
  const peer = await f.startPeer();
  const base = f.server.url;
  try {
    const cookie = await loginCookie(base, "audrey");
    const exprs = ["1+1", "2+2", "3+3"];
    for (const e of exprs) await invoke(peer.url, "calculate", { expression: e });
    await peer.app.ledger.flush();
    const indexes: number[] = [];
    for await (const e of f.server.app.ledger.entries(0, (await f.server.app.ledger.head()).size)) {
      const v = JSON.parse(new TextDecoder().decode(e.bytes));
      if (v.type === "tool_call" && v.tool === "calculate") indexes.push(e.index);
    }
    assert.equal(indexes.length, 3, "the peer's calls are in the shared vault");
    // As EventSource reconnects: the header wins over the page's `after`.
    const ac = new AbortController();
    const res = await fetch(`${base}/dashboard/feed/events?after=-1`, {
      headers: { cookie, "last-event-id": String(indexes[0]) },
      signal: ac.signal,
    });
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    const deadline = Date.now() + 10_000;
    while (!text.includes(`: head `) && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    ac.abort();
    const ids = [...text.matchAll(/id: (\d+)\nevent: call\n/g)].map((m) => Number(m[1]));
    assert.deepEqual(ids, indexes.slice(1), "only the calls after the last one seen");
  } finally {
    await f.close();
  }
});

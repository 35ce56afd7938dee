/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core):
 * an operator signs in, sees a call made by an SDK client on another instance
 * arrive in the live feed, approves a hold by loading operator.key and
 * signing in the page (WebCrypto Ed25519), sees the held call run exactly
 * once, verifies the vault; an auditor reads without approve buttons; a
 * tampered copy fails verification naming the index. Every request the
 * browser makes is recorded: none goes to another host, and the stylesheet
 * and script it received are the asset loader's bytes. A screenshot of each
 * page is taken; `WARDEN_SCREENSHOTS=1` writes them to docs/screenshots/.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { asset, assetNames } from "../../src/dashboard/mod.ts";
import { loadOperatorKey, signDecision } from "../../src/governance/mod.ts";
import { chromiumMissing, launchChromium } from "../_helpers/browser.ts";
import { callHeld, connectStreamable, envelopeOf } from "../_helpers/client.ts";
import { copyKv, PASSWORD, startDashboardServer, tamperEntry } from "../_helpers/dashboard.ts";
import { startServer } from "../_helpers/server.ts";

const missing = chromiumMissing();
// CI installs chromium (.ci/run), so there its absence fails the test instead of skipping it.
const skip = missing !== undefined && !Deno.env.get("CI");
if (skip) console.warn(`SKIPPED the dashboard browser test: ${missing}`);

const DOCS_SHOTS = new URL("../../docs/screenshots/", import.meta.url).pathname;

/** Waits for the row of `tool` with `verdict` in the live feed table. */
function feedRow(page: Page, tool: string, verdict: string) {
  return page.locator(`#feed tbody tr[data-verdict="${verdict}"]`, {
    has: page.locator("td.tool", { hasText: new RegExp(`^${tool}$`) }),
  });
}

async function signIn(page: Page, user: string) {
  assert.equal(new URL(page.url()).pathname, "/login", `at ${page.url()}`);
  await page.fill('input[name="username"]', user);
  await page.fill('input[name="password"]', PASSWORD);
  await Promise.all([
    page.waitForURL((u) => u.pathname.startsWith("/dashboard")),
    page.click('.login button[type="submit"]'),
  ]);
}

Deno.test({
  name: "dashboard in Chromium: live feed across instances, a hold signed in the page runs once, " +
    "vault verification, read-only auditor, no request to another host",
  ignore: skip,
  // playwright keeps its connection's timers and pipes until the browser process is gone
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    if (missing) throw new Error(missing);
    const f = await startDashboardServer();
    const peer = await f.startPeer();
    const base = f.server.url;
    const shotDir = Deno.env.get("WARDEN_SCREENSHOTS")
      ? DOCS_SHOTS
      : await Deno.makeTempDir({ prefix: "warden-shots-" });
    await Deno.mkdir(shotDir, { recursive: true });
    const shots: string[] = [];
    const browser = await launchChromium();
    let tampered: Awaited<ReturnType<typeof startServer>> | undefined;
    let copy: Deno.Kv | undefined;
    const clients: { close(): Promise<void> }[] = [];
    try {
      const ctx = browser.context;
      ctx.setDefaultTimeout(15_000);
      const requests: { url: string; method: string; body: string }[] = [];
      // A body can be gone once the page navigates on; those reads are dropped, not failed.
      const assetBodies: Promise<[string, string] | undefined>[] = [];
      ctx.on("request", (r) => {
        requests.push({ url: r.url(), method: r.method(), body: r.postData() ?? "" });
      });
      ctx.on("response", (r) => {
        const m = /^\/dashboard\/assets\/([^/]+)$/.exec(new URL(r.url()).pathname);
        if (m) assetBodies.push(r.text().then((t) => [m[1], t], () => undefined));
      });
      const page = ctx.pages()[0] ?? await ctx.newPage();
      const problems: string[] = [];
      page.on("console", (m) => {
        if (m.type() !== "error" && m.type() !== "warning") return;
        // The forged step's JSON refusal is no dashboard page and links no icon: Chromium asks for
        // /favicon.ico, whenever it gets round to it.
        if (m.location().url.endsWith("/favicon.ico")) return;
        problems.push(`${m.text()} (${m.location().url})`);
      });
      page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
      const shot = async (name: string) => {
        const path = `${shotDir}/${name}.png`;
        await page.screenshot({ path });
        shots.push(path);
      };

      // Signing in: /dashboard sends the browser to /login and back.
      await page.goto(`${base}/dashboard`);
      assert.equal(new URL(page.url()).searchParams.get("return_to"), "/dashboard");
      await shot("login");
      await signIn(page, "olive");
      assert.equal(new URL(page.url()).pathname, "/dashboard");
      const session = (await ctx.cookies(base)).find((c) => c.name === "warden_dashboard");
      assert.ok(session, "a session cookie");
      assert.equal(session.httpOnly, true);
      assert.equal(session.sameSite, "Strict");
      assert.equal(await page.evaluate("document.cookie"), "", "the page's script cannot read it");
      // The embedded stylesheet applied and the embedded script ran (the feed went live).
      assert.equal(
        await page.evaluate('getComputedStyle(document.querySelector("header")).backgroundColor'),
        "rgb(246, 248, 250)",
      );
      // (A locator, not waitForFunction: the page's CSP forbids the eval that one polls with.)
      await page.locator("#live", { hasText: /^live$/ }).waitFor();
      await page.evaluate("window.wardenNotReloaded = true");

      // A call made by an SDK client on the other instance arrives over SSE, without a reload.
      const { client: onPeer } = await connectStreamable(peer.url, { name: "feed-test" });
      clients.push(onPeer);
      const calc = envelopeOf(
        await onPeer.callTool({ name: "calculate", arguments: { expression: "6*7" } }),
      );
      assert.equal(calc.status, "OK", calc.message);
      const calcRow = feedRow(page, "calculate", "SEAL");
      await calcRow.waitFor({ timeout: 10_000 });
      assert.equal(await calcRow.locator("td.principal").innerText(), "anonymous");
      assert.match(await calcRow.locator("td.latency").innerText(), /^\d+\.\d ms$/);
      const calcIndex = Number(await calcRow.getAttribute("data-index"));
      assert.equal(
        await calcRow.locator("td.index a").first().getAttribute("href"),
        `/dashboard/entries/${calcIndex}`,
      );

      // A held call (on this instance, by an SDK client) shows as 888_HOLD.
      const { client } = await connectStreamable(base, { name: "hold-test" });
      clients.push(client);
      const args = { note: "rotate the keys" };
      const held = envelopeOf(await client.callTool({ name: "test_held", arguments: args }));
      assert.equal(held.policy_verdict, "888_HOLD");
      const holdId: string = held._constitutional.hold.id;
      await feedRow(page, "test_held", "888_HOLD").waitFor({ timeout: 10_000 });
      assert.equal(await page.evaluate("window.wardenNotReloaded"), true, "rows came live");
      await shot("feed");

      // The operator loads operator.key in the page; the browser signs and posts the signature only.
      await page.goto(`${base}/dashboard/holds`);
      const card = page.locator(`[id="hold-${holdId}"]`);
      assert.match(await card.innerText(), /rotate the keys/, "the arguments are shown");
      const digest = (await card.locator(".digest").innerText()).trim();
      const keyInput = page.locator(`[id="key-${holdId}"]`);
      assert.equal(await keyInput.isVisible(), true, "the script shows the key file picker");
      await shot("holds");
      await keyInput.setInputFiles(f.keyPath);
      await Promise.all([
        page.waitForURL((u) => u.searchParams.get("decided") === holdId),
        card.locator('button[value="approve"]').click(),
      ]);
      assert.match(
        await page.locator('.flash[role="status"]').innerText(),
        new RegExp(`Hold ${holdId} \\(test_held\\): approved; signed by alice\\.`),
      );
      const posted = requests.filter((r) =>
        r.method === "POST" && new URL(r.url).pathname === `/dashboard/holds/${holdId}/decide`
      );
      assert.equal(posted.length, 1, "one decision posted");
      const sent = new URLSearchParams(posted[0].body);
      assert.equal(sent.get("decision"), "approve");
      assert.equal(sent.get("operator"), "alice");
      const expected = await signDecision(await loadOperatorKey(f.keyFile), {
        decision: "approve",
        holdId,
        digest,
      });
      assert.equal(sent.get("signature"), expected, "the page signed warden approve's message");
      const seed: string = JSON.parse(f.keyFile).seed;
      for (const r of requests) {
        assert.ok(
          !r.body.includes(seed) && !r.body.includes(encodeURIComponent(seed)),
          `the key never leaves the browser (${r.url})`,
        );
      }

      // The released call runs exactly once.
      assert.equal(f.held.runs(), 0);
      const ran = await callHeld(client, "test_held", args, holdId);
      assert.equal(ran.status, "OK", ran.message);
      const twice = await callHeld(client, "test_held", args, holdId);
      assert.equal(twice.policy_verdict, "VOID");
      assert.match(twice.message, /already used/);
      assert.equal(f.held.runs(), 1, "released exactly once");
      await page.goto(`${base}/dashboard`);
      await feedRow(page, "test_held", "VOID").waitFor({ timeout: 10_000 });
      assert.equal(await feedRow(page, "test_held", "SEAL").count(), 1, "the feed shows one run");

      // One entry and its inclusion proof.
      await page.goto(`${base}/dashboard/entries/${calcIndex}`);
      assert.match(await page.locator("main").innerText(), /the proof leads to the root/);
      await shot("entry");

      // The whole log verifies.
      await page.goto(`${base}/dashboard/vault`);
      await shot("vault");
      await Promise.all([page.waitForURL(`${base}/dashboard/vault/verify`), page.click("#verify")]);
      const pass = page.locator("#verify-result");
      assert.equal(await pass.getAttribute("data-ok"), "true");
      assert.match(await pass.innerText(), /^PASS — OK: \d+ entries/);
      await shot("verify");

      assert.deepEqual(problems, [], "no console errors so far (CSP violations show there)");
      // A forged cross-site form (a page of another origin posting to the dashboard) is refused
      // and the session lives. about:blank is such a page: its origin is opaque.
      await page.goto("about:blank");
      await page.setContent(
        `<form method="post" action="${base}/dashboard/logout"><input name="csrf" value="x"></form>`,
      );
      const [forgedAnswer] = await Promise.all([
        page.waitForResponse((r) => new URL(r.url()).pathname === "/dashboard/logout"),
        page.waitForURL(`${base}/dashboard/logout`),
        page.evaluate("document.forms[0].submit()"),
      ]);
      assert.equal(forgedAnswer.status(), 403);
      // The refusal's own console line is the one expected.
      assert.deepEqual(
        problems.splice(0).filter((m) => !/status of 403 .*\/dashboard\/logout\)$/.test(m)),
        [],
      );
      await page.goto(`${base}/dashboard/holds`);
      assert.equal(new URL(page.url()).pathname, "/dashboard/holds", "still signed in");

      // Each instance writes its usage rows to KV every 5 s; GET /api/usage writes the peer's now.
      await (await fetch(`${peer.url}/api/usage`)).body?.cancel();
      await page.goto(`${base}/dashboard/usage`);
      const usage = await page.locator("main").innerText();
      assert.match(usage, /calculate\t1\t/, "the peer's call is counted");
      assert.match(usage, /test_held\t3\t/);
      assert.ok(await page.locator("svg.chart").count() >= 2, "charts drawn");
      await shot("usage");
      await page.goto(`${base}/dashboard/upstreams`);
      await shot("upstreams");

      // An auditor reads everything and has nothing to approve with.
      await Promise.all([
        page.waitForURL((u) => u.pathname === "/login"),
        page.click('header button[type="submit"]'),
      ]);
      const open = envelopeOf(
        await client.callTool({ name: "test_held", arguments: { note: "left open" } }),
      );
      const openId: string = open._constitutional.hold.id;
      await signIn(page, "audrey");
      await page.goto(`${base}/dashboard/holds`);
      assert.match(await page.locator("header .who").innerText(), /audrey \(auditor, read-only\)/);
      assert.match(await page.locator(`[id="hold-${openId}"]`).innerText(), /left open/);
      assert.equal(await page.locator("form.sign").count(), 0, "no signing form");
      assert.equal(await page.getByRole("button", { name: /approve|deny/i }).count(), 0);
      await shot("holds-auditor");

      // A copy of the KV with one entry changed fails verification, naming that entry.
      await f.server.app.ledger.flush();
      await peer.app.ledger.flush();
      copy = await copyKv(f.server.kv, `${f.dir}/copy.db`);
      await tamperEntry(copy, calcIndex, '"tool":"calculate"', '"tool":"calculata"');
      tampered = await startServer({ kv: copy });
      // localhost, not 127.0.0.1: a host of its own, so its session cookie is its own.
      const other = `http://localhost:${tampered.port}`;
      await page.goto(`${other}/dashboard/vault`);
      await signIn(page, "audrey");
      await Promise.all([
        page.waitForURL(`${other}/dashboard/vault/verify`),
        page.click("#verify"),
      ]);
      const fail = page.locator("#verify-result");
      assert.equal(await fail.getAttribute("data-ok"), "false");
      assert.equal(await fail.getAttribute("data-index"), String(calcIndex));
      assert.match(await fail.innerText(), new RegExp(`^FAILED — FAIL at index ${calcIndex}: `));
      await shot("verify-failed");

      // The browser got the stylesheet, script and icon the asset loader holds (as the binary
      // embeds them): the ones the pages loaded, and each fetched by the page now.
      const got = (await Promise.all(assetBodies)).filter((x) => x !== undefined);
      assert.ok(got.length > 0, "asset bodies read");
      for (const [name, body] of got) assert.equal(body, asset(name)!.body, name);
      for (const name of assetNames()) {
        assert.ok(
          requests.some((r) => new URL(r.url).pathname === `/dashboard/assets/${name}`),
          `the pages load ${name}`,
        );
        const fetched = await page.evaluate(
          `fetch("/dashboard/assets/${name}").then((r) => r.text())`,
        );
        assert.equal(fetched, asset(name)!.body, name);
      }

      // Every request went to Warden itself (the two servers of this test), and nowhere else.
      const own = new Set([new URL(base).origin, other]);
      assert.ok(requests.length > 20, `${requests.length} requests recorded`);
      const elsewhere = requests.filter((r) => !own.has(new URL(r.url).origin));
      assert.deepEqual(elsewhere, [], "no request to another host");
      assert.ok(requests.some((r) => new URL(r.url).pathname === "/dashboard/feed/events"));
      assert.deepEqual(problems, [], "no console errors (CSP violations show there)");
      for (const path of shots) {
        const png = await Deno.readFile(path);
        assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47], `${path} is a PNG`);
      }
    } finally {
      for (const c of clients) await c.close().catch(() => {});
      await browser.close();
      await tampered?.close();
      copy?.close();
      await f.close();
      if (shotDir !== DOCS_SHOTS) await Deno.remove(shotDir, { recursive: true }).catch(() => {});
    }
  },
});

// deno-lint-ignore-file no-explicit-any -- HTTP bodies and vault entries are probed field by field
// Refused and held calls are bounded: they count against the rate limits,
// a flood of refusals cannot grow the log at its own pace, open holds per
// principal are capped, hold records expire from KV, and operators see the
// (redacted) arguments they approve.
import assert from "node:assert/strict";
import { createApp } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";
import { createLogger } from "../../src/lib/log.ts";
import { generateOperatorKey, holdDigest, parsePolicy } from "../../src/governance/mod.ts";
import { createCounterTool } from "../_helpers/tools.ts";

const HOST = { host: "127.0.0.1:8000" };

async function appWith(policy: Record<string, unknown>) {
  const kv = await Deno.openKv(":memory:");
  const { publicKey } = await generateOperatorKey("ops");
  const danger = createCounterTool("test_danger", { destructiveHint: true });
  const app = await createApp(loadConfig(["--kv", ":memory:"], () => undefined), {
    kv,
    logger: createLogger({ level: "error" }),
    extraTools: [danger.tool],
    policy: parsePolicy({ operators: [{ name: "ops", public_key: publicKey }], ...policy }),
  });
  return {
    app,
    kv,
    danger,
    async close() {
      await app.close();
      kv.close();
    },
  };
}

Deno.test("a flood of refused calls is rate-limited and sealed at most once a second per principal", async () => {
  const t = await appWith({ rate_limits: { per_principal_per_minute: 50 } });
  try {
    const before = (await t.app.ledger.head()).size;
    const verdicts = new Map<string, number>();
    for (let i = 0; i < 600; i++) {
      const out = await t.app.registry.call(`no_such_tool_${i}`, {}, {
        principal: "flooder",
        transport: "rest",
      });
      verdicts.set(out.verdict, (verdicts.get(out.verdict) ?? 0) + 1);
    }
    assert.deepEqual([...verdicts.keys()], ["VOID"]);
    const grown = (await t.app.ledger.head()).size - before;
    assert.ok(grown <= 60, `the log grew by ${grown} entries for 600 refusals`);
    // Refusals count against the limit: the flooder's next real call is refused by F5.
    const own = await t.app.registry.call("get_time", {}, { principal: "flooder" });
    assert.equal(own.verdict, "SABAR", own.text);
    // Another principal is not affected.
    const other = await t.app.registry.call("get_time", {}, {
      principal: "bob",
      transport: "rest",
    });
    assert.equal(other.verdict, "SEAL");
    // The suppressed refusals are counted into the next sealed one. Wall time on purpose: the
    // pipeline seals a principal's refusals at most once a second by Date.now (no clock seam).
    await new Promise((r) => setTimeout(r, 1100));
    const next = await t.app.registry.call("no_such_tool", {}, { principal: "flooder" });
    assert.ok(next.vault);
    const entry = JSON.parse(
      new TextDecoder().decode((await t.app.ledger.entry(next.vault!.index))!.bytes),
    );
    assert.ok(entry.suppressed_refusals > 0, JSON.stringify(entry));
    // Nothing is lost: each of the flooder's 602 calls (600, get_time, the last) is either an
    // entry of its own or counted in a later one's suppressed_refusals — however many seconds
    // the loop took on a loaded machine (it once took long enough that only 83 were pending).
    let accounted = 0;
    const end = (await t.app.ledger.head()).size;
    for (let i = before; i < end; i++) {
      const e = JSON.parse(new TextDecoder().decode((await t.app.ledger.entry(i))!.bytes));
      if (e.principal === "flooder") accounted += 1 + (e.suppressed_refusals ?? 0);
    }
    assert.equal(accounted, 602);
  } finally {
    await t.close();
  }
});

Deno.test("open holds per principal are capped, and a decided hold frees its place", async () => {
  const t = await appWith({ approval: { max_open_per_principal: 3 } });
  try {
    for (let i = 0; i < 3; i++) {
      const out = await t.app.registry.call("test_danger", { note: `n${i}` }, { principal: "eve" });
      assert.equal(out.verdict, "888_HOLD", out.text);
    }
    const fourth = await t.app.registry.call("test_danger", { note: "n3" }, { principal: "eve" });
    assert.equal(fourth.verdict, "VOID");
    assert.match(fourth.text, /max_open_per_principal/);
    assert.ok(fourth.vault, "the refusal is sealed");
    const other = await t.app.registry.call("test_danger", { note: "x" }, { principal: "frank" });
    assert.equal(other.verdict, "888_HOLD");
    assert.equal(t.danger.runs(), 0);
    // Deny one of eve's holds (as a human declining would): she may ask again.
    const open = await t.app.governance.holds.listOpen();
    const evesHold = open.find((h) => h.principal === "eve")!;
    await t.app.governance.holds.recordHuman(evesHold.id, "decline");
    const again = await t.app.registry.call("test_danger", { note: "n4" }, { principal: "eve" });
    assert.equal(again.verdict, "888_HOLD", again.text);
  } finally {
    await t.close();
  }
});

Deno.test("GET /holds/:id shows the redacted arguments and the digest can be recomputed from clean ones", async () => {
  const t = await appWith({});
  try {
    const clean = await t.app.registry.call("test_danger", { note: "rotate the logs" }, {
      principal: "alice",
    });
    const dirty = await t.app.registry.call("test_danger", {
      note: "mail bob@example.com the card 4111 1111 1111 1111",
    }, { principal: "alice" });
    const views: any[] = [];
    for (const out of [clean, dirty]) {
      assert.equal(out.verdict, "888_HOLD");
      const id = /hold ([0-9a-f-]{36})/.exec(out.text)![1];
      const res = await t.app.fetch(
        new Request(`http://127.0.0.1:8000/holds/${id}`, { headers: HOST }),
      );
      assert.equal(res.status, 200);
      views.push(await res.json());
    }
    const [c, d] = views;
    assert.deepEqual(c.arguments, { note: "rotate the logs" });
    assert.equal(c.arguments_redacted, 0);
    assert.equal(
      holdDigest({ tool: c.tool, arguments: c.arguments, principal: c.principal }),
      c.digest,
    );
    assert.ok(d.arguments_redacted >= 2);
    assert.doesNotMatch(JSON.stringify(d), /bob@example\.com|4111 1111/);
    assert.match(JSON.stringify(d.arguments), /REDACTED/);
  } finally {
    await t.close();
  }
});

Deno.test("the open-hold cap holds under a burst of concurrent held calls at two instances on one KV", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/holds.db`;
  const { publicKey } = await generateOperatorKey("ops");
  const policy = parsePolicy({
    operators: [{ name: "ops", public_key: publicKey }],
    approval: { max_open_per_principal: 5 },
    rate_limits: { per_principal_per_minute: 0, per_ip_per_minute: 0 },
  });
  const danger = createCounterTool("test_danger", { destructiveHint: true });
  const open = async () => {
    const kv = await Deno.openKv(path);
    const app = await createApp(loadConfig(["--kv", path], () => undefined), {
      kv,
      logger: createLogger({ level: "error" }),
      extraTools: [danger.tool],
      policy,
    });
    return { app, kv };
  };
  const a = await open();
  const b = await open();
  try {
    // 40 held calls at once, half at each instance, all by one principal, each a different call.
    const outs = await Promise.all(
      Array.from(
        { length: 40 },
        (_, i) =>
          (i % 2 ? a : b).app.registry.call("test_danger", { n: i }, {
            principal: "mallory",
            transport: "rest",
          }),
      ),
    );
    const held = outs.filter((o) => o.verdict === "888_HOLD");
    assert.equal(held.length, 5, `${held.length} holds created against a cap of 5`);
    const refused = outs.filter((o) => o.verdict !== "888_HOLD");
    assert.ok(refused.every((o) => /max_open_per_principal/.test(o.text)), refused[0]?.text);
    assert.equal((await a.app.governance.holds.listOpen(1000)).length, 5);
    assert.equal(danger.runs(), 0);
  } finally {
    for (const x of [a, b]) {
      await x.app.close();
      x.kv.close();
    }
    await Deno.remove(dir, { recursive: true });
  }
});

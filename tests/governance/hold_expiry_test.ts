// deno-lint-ignore-file no-explicit-any -- envelopes and vault entries are probed field by field
/**
 * Hold expiry end to end (issue 9 §3): a real server on the injectable clock and the SDK's own
 * client. A held call whose hold runs out is not released by its hold any more, nor by an
 * approval that comes later; the expiry is sealed once; the repeat without the hold is held anew.
 */
import assert from "node:assert/strict";
import { connectStreamable, envelopeOf } from "../_helpers/client.ts";
import { sealedEntries, startServer } from "../_helpers/server.ts";
import { createCounterTool } from "../_helpers/tools.ts";
import { generateOperatorKey, loadOperatorKey, signDecision } from "../../src/governance/mod.ts";
import { pollUntil } from "../_helpers/wait.ts";

async function decide(url: string, key: any, holdId: string, decision: "approve" | "deny") {
  const hold = await (await fetch(`${url}/holds/${holdId}`)).json();
  const signature = await signDecision(key, { decision, holdId, digest: hold.digest });
  const res = await fetch(`${url}/holds/${holdId}/${decision}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ operator: key.name, signature }),
  });
  return { status: res.status, body: await res.json() };
}

Deno.test("hold expiry: an expired hold releases nothing, a late approval is refused, the expiry is sealed once, and the call can be held anew", async () => {
  const generated = await generateOperatorKey("alice");
  const key = await loadOperatorKey(generated.keyFile);
  const counter = createCounterTool("test_held");
  let now = Date.now();
  await using server = await startServer({
    extraTools: [counter.tool],
    clock: () => now,
    policy: {
      tools: { test_held: { hold: true } },
      operators: [{ name: "alice", public_key: generated.publicKey }],
      approval: { expiry_seconds: 60 },
    },
  });
  const { client } = await connectStreamable(server.url);
  const args = { note: "rotate the keys" };
  const call = (holdId?: string) =>
    client.callTool({
      name: "test_held",
      arguments: args,
      ...(holdId ? { _meta: { "warden/hold": holdId } } : {}),
    }).then(envelopeOf);
  const expiries = async () =>
    (await sealedEntries(server, "hold_expired")).map((e) => [e.hold_id, e.approvals]);

  // Held, then left waiting past its expiry.
  const held = await call();
  assert.equal(held.policy_verdict, "888_HOLD");
  const first = held._constitutional.hold.id;
  assert.equal((await call(first)).status, "PENDING", "still waiting before the expiry");
  now += 61_000;

  // The repeat with the expired hold is refused, saying why and what to do.
  const late = await call(first);
  assert.equal(late.policy_verdict, "VOID");
  assert.equal(late.status, "BLOCKED");
  assert.match(late.message, new RegExp(`hold ${first} expired at .*repeat the call without`));
  assert.equal(counter.runs(), 0);
  assert.deepEqual(await expiries(), [[first, 0]], "the expiry is sealed");
  assert.equal((await (await fetch(`${server.url}/holds/${first}`)).json()).status, "expired");

  // An approval signed after the expiry changes nothing.
  const approval = await decide(server.url, key, first, "approve");
  assert.equal(approval.status, 410);
  assert.match(approval.body.error.message, /expired/);
  assert.equal((await call(first)).policy_verdict, "VOID");
  assert.equal(counter.runs(), 0);
  assert.deepEqual(await expiries(), [[first, 0]], "sealed once, however often it is seen");

  // The same call without the hold is held again, under a new hold.
  const again = await call();
  assert.equal(again.policy_verdict, "888_HOLD");
  const second = again._constitutional.hold.id;
  assert.notEqual(second, first);

  // Approved in time but not used in time: expired too, and the approval does not run it.
  const approved = await decide(server.url, key, second, "approve");
  assert.equal(approved.status, 200, JSON.stringify(approved.body));
  now += 61_000;
  const unused = await call(second);
  assert.equal(unused.policy_verdict, "VOID");
  assert.match(unused.message, /expired at/);
  assert.equal(counter.runs(), 0);
  assert.deepEqual(await expiries(), [[first, 0], [second, 1]]);

  // A hold nobody repeats is marked when it is next listed: it leaves the open list, sealed.
  const third = (await client.callTool({ name: "test_held", arguments: { note: "x" } }).then(
    envelopeOf,
  ))._constitutional.hold.id;
  const listed = async () =>
    (await (await fetch(`${server.url}/holds`)).json()).holds.map((h: any) => h.id);
  assert.deepEqual(await listed(), [third]);
  now += 61_000;
  assert.deepEqual(await listed(), []);
  assert.deepEqual(await expiries(), [[first, 0], [second, 1], [third, 0]]);

  // Within its time an approval still releases the call exactly once.
  const fourth = (await call())._constitutional?.hold?.id;
  assert.ok(fourth);
  assert.equal((await decide(server.url, key, fourth, "approve")).status, 200);
  now += 30_000;
  assert.equal((await call(fourth)).status, "OK");
  assert.equal(counter.runs(), 1);
  await client.close();
});

Deno.test("hold expiry is sealed within a second or two of the expiry when nobody looks at the hold, once across two instances", async () => {
  const counter = createCounterTool("test_held");
  const generated = await generateOperatorKey("alice");
  const dir = await Deno.makeTempDir();
  const path = `${dir}/shared.db`;
  let now = Date.now();
  const options = (kv: Deno.Kv) => ({
    kv,
    extraTools: [counter.tool],
    clock: () => now,
    policy: {
      tools: { test_held: { hold: true } },
      operators: [{ name: "alice", public_key: generated.publicKey }],
      approval: { expiry_seconds: 60 },
    },
  });
  try {
    await using a = await startServer(options(await Deno.openKv(path)));
    await using b = await startServer(options(await Deno.openKv(path)));
    const { client } = await connectStreamable(a.url);
    const held = await client.callTool({ name: "test_held", arguments: { n: 1 } }).then(
      envelopeOf,
    );
    assert.equal(held.policy_verdict, "888_HOLD");
    const id = held._constitutional.hold.id;
    // B learns of the hold by listing it; both instances now watch its expiry.
    const listed = await (await fetch(`${b.url}/holds`)).json();
    assert.deepEqual(listed.holds.map((h: any) => h.id), [id]);
    const expiries = async () => (await sealedEntries(a, "hold_expired")).map((e) => e.hold_id);
    assert.deepEqual(await expiries(), []);

    // The clock passes the expiry; nobody calls, decides or lists. Only the vault is read.
    now += 61_000;
    const sealed = await pollUntil(expiries, (ids) => ids.length > 0, {
      timeoutMs: 3000,
      intervalMs: 100,
    });
    assert.deepEqual(sealed, [id], "the expiry is sealed within 3 s without anyone looking");
    // Both instances were watching it: still sealed once, by one of them. Wall time on purpose:
    // each instance's expiry watch runs on a real timer, and the other's must get its turn.
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(await expiries(), [id], "sealed exactly once across the two instances");
    const expired = await a.app.governance.holds.get(id);
    assert.equal(expired?.status, "expired");
    // A process that sealed the entry and died before dropping its note: the next sweep tells
    // the app again, and the entry's once key keeps it one entry.
    await a.kv.set(["hold_expiry_unsealed", id], expired);
    await b.app.governance.holds.sweepExpired();
    assert.deepEqual(await expiries(), [id], "sealed once, however often it is told");
    assert.equal((await a.kv.get(["hold_expiry_unsealed", id])).value, null);
    assert.equal(counter.runs(), 0);
    await client.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

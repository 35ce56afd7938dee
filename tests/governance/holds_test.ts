import assert from "node:assert/strict";
import {
  createHoldStore,
  createTokenService,
  generateOperatorKey,
  holdDigest,
  HoldError,
  loadOperatorKey,
  signDecision,
  TokenError,
} from "../../src/governance/mod.ts";
import { generateSigner } from "../../src/merkle/mod.ts";

async function setup() {
  let now = 1_000_000;
  const kv = await Deno.openKv(":memory:");
  const store = createHoldStore(kv, { now: () => now });
  const alice = await generateOperatorKey("alice");
  const bob = await generateOperatorKey("bob");
  const operators = [
    { name: "alice", public_key: alice.publicKey },
    { name: "bob", public_key: bob.publicKey },
  ];
  return {
    kv,
    store,
    operators,
    alice: await loadOperatorKey(alice.keyFile),
    bob: await loadOperatorKey(bob.keyFile),
    advance: (ms: number) => (now += ms),
  };
}

const call = { tool: "delete_file", arguments: { path: "/tmp/x", n: 1.5 }, principal: "agent" };

async function newHold(store: ReturnType<typeof createHoldStore>, requiredSigners = 1) {
  return await store.create({
    digest: holdDigest(call),
    tool: call.tool,
    principal: call.principal,
    session: null,
    reasons: ["F1 destructive"],
    expirySeconds: 60,
    requiredSigners,
  });
}

Deno.test("holdDigest() binds tool, arguments and principal, independent of key order", () => {
  assert.equal(
    holdDigest(call),
    holdDigest({ principal: "agent", arguments: { n: 1.5, path: "/tmp/x" }, tool: "delete_file" }),
  );
  assert.notEqual(holdDigest(call), holdDigest({ ...call, principal: "other" }));
  assert.notEqual(holdDigest(call), holdDigest({ ...call, arguments: { path: "/tmp/y", n: 1.5 } }));
});

Deno.test("HoldStore: k-of-n approvals, released exactly once, then refused", async () => {
  const { kv, store, operators, alice, bob } = await setup();
  try {
    const hold = await newHold(store, 2);
    const sign = (key: typeof alice, decision: "approve" | "deny" = "approve") =>
      signDecision(key, { decision, holdId: hold.id, digest: hold.digest });
    const one = await store.decide(hold.id, {
      decision: "approve",
      operator: "alice",
      signature: await sign(alice),
      operators,
    });
    assert.equal(one.status, "open", "one of two signatures is not enough");
    await assert.rejects(store.release(hold.id, hold.digest), /still waiting/);
    await assert.rejects(
      store.decide(hold.id, {
        decision: "approve",
        operator: "alice",
        signature: await sign(alice),
        operators,
      }),
      /already approved/,
    );
    // Bob's key under Alice's name does not verify.
    await assert.rejects(
      store.decide(hold.id, {
        decision: "approve",
        operator: "alice",
        signature: await sign(bob),
        operators,
      }),
      (e: HoldError) => e.code === "bad_signature",
    );
    const two = await store.decide(hold.id, {
      decision: "approve",
      operator: "bob",
      signature: await sign(bob),
      operators,
    });
    assert.equal(two.status, "approved");
    await assert.rejects(store.release(hold.id, "0".repeat(64)), /different call/);
    const released = await store.release(hold.id, hold.digest);
    assert.equal(released.status, "released");
    await assert.rejects(store.release(hold.id, hold.digest), /already used/);
  } finally {
    kv.close();
  }
});

Deno.test("HoldStore: an approval signature cannot be replayed as a denial or on another hold", async () => {
  const { kv, store, operators, alice } = await setup();
  try {
    const a = await newHold(store);
    const b = await newHold(store);
    const approveA = await signDecision(alice, {
      decision: "approve",
      holdId: a.id,
      digest: a.digest,
    });
    await assert.rejects(
      store.decide(a.id, { decision: "deny", operator: "alice", signature: approveA, operators }),
      /does not verify/,
    );
    await assert.rejects(
      store.decide(b.id, {
        decision: "approve",
        operator: "alice",
        signature: approveA,
        operators,
      }),
      /does not verify/,
    );
    await assert.rejects(
      store.decide(a.id, {
        decision: "approve",
        operator: "carol",
        signature: approveA,
        operators,
      }),
      /not configured/,
    );
  } finally {
    kv.close();
  }
});

Deno.test("HoldStore: expiry refuses approval and release; denial is final", async () => {
  const { kv, store, operators, alice, advance } = await setup();
  try {
    const hold = await newHold(store);
    advance(61_000);
    assert.equal((await store.get(hold.id))?.status, "expired");
    const sig = await signDecision(alice, {
      decision: "approve",
      holdId: hold.id,
      digest: hold.digest,
    });
    await assert.rejects(
      store.decide(hold.id, { decision: "approve", operator: "alice", signature: sig, operators }),
      (e: HoldError) => e.code === "expired",
    );
    assert.deepEqual(await store.listOpen(), []);

    const other = await newHold(store);
    const deny = await signDecision(alice, {
      decision: "deny",
      holdId: other.id,
      digest: other.digest,
    });
    assert.equal(
      (await store.decide(other.id, {
        decision: "deny",
        operator: "alice",
        signature: deny,
        operators,
      })).status,
      "denied",
    );
    await assert.rejects(store.release(other.id, other.digest), /denied by alice/);
    await assert.rejects(
      store.get("not-a-hold").then((h) => {
        if (!h) throw new HoldError("none", "unknown_hold");
      }),
      /none/,
    );
  } finally {
    kv.close();
  }
});

Deno.test("TokenService: issues tokens bound to a session that expire and cannot be forged", async () => {
  let now = 5_000;
  const signer = await generateSigner("warden/test");
  const tokens = createTokenService(signer, { now: () => now });
  const token = await tokens.issue({
    sessionId: "sess_a",
    verdict: "SEAL",
    floorsDigest: "ab",
    ttlSeconds: 10,
  });
  assert.equal((await tokens.verify(token, "sess_a")).verdict, "SEAL");
  await assert.rejects(tokens.verify(token, "sess_b"), TokenError);
  const [body, sig] = token.split(".");
  const tampered = body.slice(0, -2) + (body.endsWith("A") ? "B" : "A") + body.slice(-1);
  await assert.rejects(tokens.verify(`${tampered}.${sig}`, "sess_a"), TokenError);
  const other = createTokenService(await generateSigner("warden/other"));
  await assert.rejects(other.verify(token, "sess_a"), /does not verify/);
  now += 11_000;
  await assert.rejects(tokens.verify(token, "sess_a"), /expired/);
});

Deno.test("HoldStore: an expiry whose seal failed (its process died) is sealed by the next sweep, once", async () => {
  await using kv = await Deno.openKv(":memory:");
  let now = 1_000_000;
  const sealed: string[] = [];
  let crash = true;
  const store = createHoldStore(kv, {
    now: () => now,
    onExpired: (hold) => {
      if (crash) {
        crash = false;
        return Promise.reject(new Error("the process died before sealing"));
      }
      sealed.push(hold.id);
      return Promise.resolve();
    },
  });
  const hold = await store.create({
    digest: "d".repeat(64),
    tool: "t",
    principal: "p",
    session: null,
    reasons: [],
    expirySeconds: 60,
    requiredSigners: 1,
  });
  now += 61_000;
  // The first look marks it expired, and its seal fails.
  await assert.rejects(store.get(hold.id), /died before sealing/);
  assert.equal((await store.get(hold.id))?.status, "expired");
  assert.deepEqual(sealed, [], "a second look does not seal an expiry already marked");
  // The sweep finds the expiry still to be sealed and seals it; the next sweeps do nothing.
  await store.sweepExpired();
  await store.sweepExpired();
  assert.deepEqual(sealed, [hold.id]);
});

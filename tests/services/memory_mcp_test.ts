// deno-lint-ignore-file no-explicit-any -- envelopes and vault entries are probed field by field
/**
 * The memory tools through a real server: two principals with minted tokens,
 * the v1 SDK client (2025 session) and the v2 client pinned to 2026-07-28.
 * TTL expiry is observed on a moved clock, another principal cannot read or
 * list a key, an oversized value is refused with the limit named, and the
 * vault records the value's digest, never the value (even with store_bodies).
 */
import assert from "node:assert/strict";
import { createToken } from "../../src/identity/mod.ts";
import { digestJson } from "../../src/lib/mod.ts";
import { callParts, connectModernAs, connectV1As } from "../_helpers/client.ts";
import { sealedEntries, startServer, type TestServer } from "../_helpers/server.ts";

const v1 = (server: TestServer, secret: string) => connectV1As(server.url, secret, "memory-v1");
const v2 = (server: TestServer, secret: string) => connectModernAs(server.url, secret, "memory-v2");

// Letters only: a random UUID's digit groups sometimes pass as a card number (F6 → PARTIAL).
const MARKER = `value-marker-${
  Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => String.fromCharCode(97 + (b % 26)))
    .join("")
}`;

const POLICY = {
  rate_limits: { per_principal_per_minute: 0, per_ip_per_minute: 0 },
  memory: { max_value_bytes: 2048 },
  store_bodies: true,
};

Deno.test({
  name:
    "memory tools: store, retrieve, search and expire per principal, in both eras, sealed by digest",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // The service's clock, moved past a TTL instead of waiting for it.
    let skewMs = 0;
    await using server = await startServer({ policy: POLICY, clock: () => Date.now() + skewMs });
    const alice = await createToken(server.kv, { name: "alice" });
    const bob = await createToken(server.kv, { name: "bob" });
    for (const connect of [v1, v2]) {
      const era = connect === v1 ? "2025 session" : "2026-07-28";
      const a: any = await connect(server, alice.secret);
      const b: any = await connect(server, bob.secret);
      const call = callParts;
      try {
        const key = `plan-${era}`;
        const value = { user: "alice", context: "optimization", era, marker: MARKER };
        const stored = await call(a, "memory_store", { key, value, ttl: 1 });
        assert.equal(stored.r.isError, undefined, `${era}: ${JSON.stringify(stored.r)}`);
        assert.equal(stored.env.policy_verdict, "SEAL", era);
        assert.equal(stored.data.value_sha256, digestJson(value), era);
        await call(a, "memory_store", { key: `keep-${era}`, value: "long-lived" });

        const got = await call(a, "memory_retrieve", { key });
        assert.deepEqual(got.data.value, value, era);
        assert.equal(got.data.found, true, era);

        // Bob: not found, not listed, not searchable, not expirable.
        const theirs = await call(b, "memory_retrieve", { key });
        assert.equal(theirs.data.found, false, era);
        assert.doesNotMatch(JSON.stringify(theirs.r), /optimization/, era);
        const listed = await call(b, "memory_search", { prefix: "plan" });
        assert.deepEqual(listed.data.hits, [], era);
        const searched = await call(b, "memory_search", { query: "optimization" });
        assert.deepEqual(searched.data.hits, [], era);
        assert.equal((await call(b, "memory_expire", { key })).data.found, false, era);

        // Alice searches her own by prefix and by text.
        const mine = await call(a, "memory_search", { query: "OPTIMIZATION" });
        assert.deepEqual(mine.data.hits.map((h: any) => h.key), [key], era);

        // Too large: refused as a tool error naming the limit; nothing stored.
        const big = await call(a, "memory_store", { key: "big", value: "x".repeat(3000) });
        assert.equal(big.r.isError, true, era);
        assert.match(big.r.content[0].text, /values are at most 2048 bytes of JSON/, era);
        assert.equal((await call(a, "memory_retrieve", { key: "big" })).data.found, false);

        // TTL: the service's clock moves past it.
        skewMs += 1_200;
        const gone = await call(a, "memory_retrieve", { key });
        assert.equal(gone.data.found, false, `${era}: expired value returned`);
        assert.equal((await call(a, "memory_retrieve", { key: `keep-${era}` })).data.found, true);

        const expired = await call(a, "memory_expire", { key: `keep-${era}` });
        assert.equal(expired.data.found, true, era);
        assert.equal(
          (await call(a, "memory_retrieve", { key: `keep-${era}` })).data.found,
          false,
        );
      } finally {
        await a.close();
        await b.close();
      }
    }

    // The vault: every memory call is sealed; a store's record carries the value's digest and
    // size, never the value, and a retrieve's record never the value read.
    const entries = await sealedEntries(server);
    const calls = entries.filter((e) => e.type === "tool_call" && /^memory_/.test(e.tool));
    assert.ok(calls.length >= 20, `sealed memory calls: ${calls.length}`);
    const stores = calls.filter((e) => e.tool === "memory_store" && e.outcome === "ok");
    assert.equal(stores.length, 4);
    for (const e of stores) {
      assert.equal(e.principal, "alice");
      const body = JSON.parse(e.body);
      assert.match(body.arguments.value_sha256, /^[0-9a-f]{64}$/);
      assert.equal(typeof body.arguments.value_bytes, "number");
      assert.equal(body.arguments.value, undefined);
    }
    const all = JSON.stringify(entries);
    assert.ok(!all.includes(MARKER), "a stored or retrieved value reached the vault");
    assert.doesNotMatch(all, /long-lived/, "a stored value reached the vault");
  },
});

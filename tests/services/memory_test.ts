/** The memory service's domain core over a real `:memory:` KV, without MCP. */
import assert from "node:assert/strict";
import { createMemoryService, MemoryError } from "../../src/services/mod.ts";
import { memoryKey } from "../../src/store/mod.ts";
import { digestJson } from "../../src/lib/mod.ts";
import { countingKv, withKv } from "../_helpers/kv.ts";

Deno.test("memory.store() keeps a JSON value with its digest and retrieve() returns it", () =>
  withKv(async (kv) => {
    const memory = createMemoryService(kv);
    const value = { user: "alice", n: [1, 2.5, null], ok: true };
    const stored = await memory.store("alice", { key: "session_123", value, ttl: 60 });
    assert.equal(stored.value_sha256, digestJson(value));
    assert.equal(stored.bytes, JSON.stringify(value).length);
    assert.equal(stored.ttl_s, 60);
    assert.equal(stored.replaced, false);
    const got = await memory.retrieve("alice", "session_123");
    assert.deepEqual(got?.value, value);
    assert.equal(got?.value_sha256, stored.value_sha256);
    const again = await memory.store("alice", { key: "session_123", value: "v2" });
    assert.equal(again.replaced, true);
    assert.equal(again.ttl_s, 3600, "the default TTL");
    assert.equal((await memory.retrieve("alice", "session_123"))?.value, "v2");
  }));

Deno.test("memory.retrieve() never returns a value past its expiry, even before KV removes it", () =>
  withKv(async (kv) => {
    let t = 1_000_000;
    const memory = createMemoryService(kv, { now: () => t });
    await memory.store("alice", { key: "k", value: 1, ttl: 10 });
    t += 9_999;
    assert.equal((await memory.retrieve("alice", "k"))?.ttl_remaining_s, 1);
    t += 1;
    // KV's own expireIn runs on the real clock, so the record is still there: the read decides.
    assert.notEqual((await kv.get(memoryKey("alice", "k"))).value, null);
    assert.equal(await memory.retrieve("alice", "k"), undefined);
    assert.equal((await kv.get(memoryKey("alice", "k"))).value, null, "removed on read");
    assert.deepEqual((await memory.search("alice", {})).hits, []);
    assert.deepEqual(await memory.expire("alice", { key: "k" }), { key: "k", found: false });
  }));

Deno.test("memory: a value stored with ttl 1 is gone a second later on the real clock", () =>
  withKv(async (kv) => {
    const memory = createMemoryService(kv);
    await memory.store("alice", { key: "short", value: "x", ttl: 1 });
    assert.equal((await memory.retrieve("alice", "short"))?.value, "x");
    // Wall time on purpose: this is the default clock (Date.now); injected clocks are above.
    await new Promise((ok) => setTimeout(ok, 1_100));
    assert.equal(await memory.retrieve("alice", "short"), undefined);
  }));

Deno.test("memory: one principal can neither read, list, search nor expire another's keys", () =>
  withKv(async (kv) => {
    const memory = createMemoryService(kv);
    await memory.store("alice", { key: "secret", value: { plan: "alpha" } });
    await memory.store("alice-2", { key: "other", value: "z" });
    assert.equal(await memory.retrieve("bob", "secret"), undefined);
    assert.deepEqual((await memory.search("bob", {})).hits, []);
    assert.deepEqual((await memory.search("bob", { query: "alpha" })).hits, []);
    assert.equal((await memory.expire("bob", { key: "secret" })).found, false);
    // A principal whose name extends another's sees only its own keys.
    assert.deepEqual((await memory.search("alice", {})).hits.map((h) => h.key), ["secret"]);
    assert.deepEqual((await memory.retrieve("alice", "secret"))?.value, { plan: "alpha" });
  }));

Deno.test("memory.search() filters by key prefix and by text, bounded by limit", () =>
  withKv(async (kv) => {
    const memory = createMemoryService(kv);
    await memory.store("a", { key: "proj/one", value: { note: "Deploy on Friday" } });
    await memory.store("a", { key: "proj/two", value: { note: "rollback plan" } });
    await memory.store("a", { key: "proj", value: "the prefix itself" });
    await memory.store("a", { key: "projx", value: "no slash" });
    await memory.store("a", { key: "other", value: { note: "deploy elsewhere" } });
    const keys = async (q: Parameters<typeof memory.search>[1]) =>
      (await memory.search("a", q)).hits.map((h) => h.key);
    assert.deepEqual(await keys({ prefix: "proj/" }), ["proj/one", "proj/two"]);
    assert.deepEqual(await keys({ prefix: "proj" }), ["proj", "proj/one", "proj/two", "projx"]);
    assert.deepEqual(await keys({ query: "DEPLOY" }), ["other", "proj/one"]);
    assert.deepEqual(await keys({ prefix: "proj/", query: "deploy" }), ["proj/one"]);
    assert.deepEqual(await keys({ query: "slash" }), ["projx"]);
    const limited = await memory.search("a", { limit: 2 });
    assert.equal(limited.hits.length, 2);
    assert.equal(limited.truncated, true);
    const big = await memory.store("a", { key: "big", value: "y".repeat(1000) });
    const hit = (await memory.search("a", { prefix: "big" })).hits[0];
    assert.equal(hit.bytes, big.bytes);
    assert.ok(hit.preview.length <= 201, "a preview, not the whole value");
  }));

Deno.test("memory refuses values over the size limit, bad keys and bad TTLs, saying why", () =>
  withKv(async (kv) => {
    const memory = createMemoryService(kv, { limits: { maxValueBytes: 100, maxTtlSeconds: 60 } });
    await assert.rejects(
      memory.store("a", { key: "k", value: "x".repeat(200) }),
      (e: unknown) =>
        e instanceof MemoryError && e.code === "too_large" &&
        /Cannot store 202 bytes under "k": values are at most 100 bytes/.test(e.message),
    );
    // Exactly at the limit is fine: 98 characters + 2 quotes.
    await memory.store("a", { key: "k", value: "x".repeat(98), ttl: 60 });
    await assert.rejects(memory.store("a", { key: "", value: 1 }), /empty memory key/);
    await assert.rejects(memory.store("a", { key: "a\nb", value: 1 }), /control characters/);
    await assert.rejects(memory.store("a", { key: "x".repeat(257), value: 1 }), /257 characters/);
    await assert.rejects(memory.store("a", { key: "k", value: 1, ttl: 61 }), /from 1 to 60/);
    await assert.rejects(memory.store("a", { key: "k", value: 1, ttl: 0 }), /from 1 to 60/);
    await assert.rejects(memory.store("a", { key: "k", value: undefined }), /without a value/);
  }));

Deno.test("memory caps the keys a principal holds; expired and expire()d keys free room", () =>
  withKv(async (kv) => {
    let t = 0;
    const memory = createMemoryService(kv, { limits: { maxKeysPerPrincipal: 3 }, now: () => t });
    await memory.store("a", { key: "1", value: 1, ttl: 5 });
    await memory.store("a", { key: "2", value: 2 });
    await memory.store("a", { key: "3", value: 3 });
    await assert.rejects(
      memory.store("a", { key: "4", value: 4 }),
      (e: unknown) =>
        e instanceof MemoryError && e.code === "full" && /holds 3 keys/.test(e.message),
    );
    // Replacing a held key is not a new key; another principal has its own room.
    await memory.store("a", { key: "3", value: 33 });
    await memory.store("b", { key: "4", value: 4 });
    // Key 1 lapses on the clock: the count is corrected and the store goes through.
    t += 6_000;
    await memory.store("a", { key: "4", value: 4 });
    await assert.rejects(memory.store("a", { key: "5", value: 5 }), /holds 3 keys/);
    assert.equal((await memory.expire("a", { key: "2" })).found, true);
    await memory.store("a", { key: "5", value: 5 });
    assert.deepEqual((await memory.search("a", {})).hits.map((h) => h.key), ["3", "4", "5"]);
  }));

Deno.test("memory.expire() with a ttl moves the expiry instead of ending the value", () =>
  withKv(async (kv) => {
    let t = 0;
    const memory = createMemoryService(kv, { now: () => t });
    await memory.store("a", { key: "k", value: 1, ttl: 10 });
    const moved = await memory.expire("a", { key: "k", ttl: 100 });
    assert.equal(moved.expires_at, new Date(100_000).toISOString());
    t = 50_000;
    assert.equal((await memory.retrieve("a", "k"))?.value, 1);
    assert.equal((await memory.expire("a", { key: "k" })).found, true);
    assert.equal(await memory.retrieve("a", "k"), undefined);
  }));

Deno.test("memory.store() is consistent under concurrent writers to one principal", () =>
  withKv(async (kv) => {
    const memory = createMemoryService(kv, { limits: { maxKeysPerPrincipal: 10 } });
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => memory.store("a", { key: `k${i}`, value: i })),
    );
    const ok = results.filter((r) => r.status === "fulfilled").length;
    assert.equal(ok, 10, "exactly the cap is admitted");
    assert.equal((await memory.search("a", { limit: 100 })).hits.length, 10);
  }));

Deno.test("memory.search() by text goes through the index: 10 000 values, a bounded number of KV reads", () =>
  withKv(async (kv) => {
    let t = 0;
    const counted = countingKv(kv);
    const memory = createMemoryService(counted, {
      now: () => t,
      limits: { maxKeysPerPrincipal: 20_000 },
    });
    for (let i = 0; i < 10_000; i++) {
      await memory.store("p", { key: `note/${i}`, value: { text: `topic${i % 100} common` } });
    }
    const rare = await memory.store("p", { key: "note/rare", value: { text: "zebra common" } });
    assert.equal(rare.indexed, true);
    await memory.store("p", { key: "other/zebra", value: "zebra zebra", ttl: 5 });
    await memory.store("q", { key: "note/q", value: "zebra" });

    counted.reads = 0;
    const found = await memory.search("p", { query: "Zebra", limit: 5 });
    // stats + 1 counter + 2 postings + the 2 records: not the 10 002 values.
    assert.deepEqual(found.hits.map((h) => h.key), ["other/zebra", "note/rare"]);
    assert.ok(found.hits[0].score! > found.hits[1].score!, "tf 2 in a short value ranks first");
    assert.equal(found.scanned, 2);
    assert.ok(counted.reads <= 1 + 1 + 2 + 2, `read ${counted.reads} KV entries`);

    // A prefix narrows the candidates before any record is read.
    counted.reads = 0;
    const topic = await memory.search("p", { query: "topic7", prefix: "note/1", limit: 3 });
    assert.equal(topic.hits.length, 3);
    assert.ok(topic.hits.every((h) => h.key.startsWith("note/1")));
    assert.equal(topic.truncated, true);
    assert.ok(counted.reads <= 1 + 1 + 100 + 5, `read ${counted.reads} KV entries`);

    // A value past its TTL is never a hit, and leaves the index when a search meets it.
    t += 6_000;
    const after = await memory.search("p", { query: "zebra" });
    assert.deepEqual(after.hits.map((h) => h.key), ["note/rare"]);
    assert.equal(await kv.get(["memidx_doc", "p", "other/zebra"]).then((e) => e.value), null);
    assert.equal((await kv.get<{ docs: number }>(["memidx_stats", "p"])).value?.docs, 10_001);
    // Expiring removes it from the index at once; another principal's index is its own.
    await memory.expire("p", { key: "note/rare" });
    assert.deepEqual((await memory.search("p", { query: "zebra" })).hits, []);
    assert.deepEqual((await memory.search("q", { query: "zebra" })).hits.map((h) => h.key), [
      "note/q",
    ]);
    // Replacing a value re-indexes it: the old words no longer find it.
    await memory.store("p", { key: "note/0", value: "giraffe" });
    assert.deepEqual((await memory.search("p", { query: "giraffe" })).hits.map((h) => h.key), [
      "note/0",
    ]);
    assert.ok(
      !(await memory.search("p", { query: "topic0", limit: 100 })).hits.some((h) =>
        h.key === "note/0"
      ),
    );
  }));

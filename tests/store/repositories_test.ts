/**
 * The evidence and execution repositories (issue 8 §3: unit tests for the repositories), over a
 * real in-memory KV: each principal sees only its own records, ids are validated, kept text is
 * redacted and bounded.
 */
import assert from "node:assert/strict";
import {
  createEvidenceStore,
  createExecutionStore,
  type EvidenceRecord,
} from "../../src/store/mod.ts";

function record(n: number, extra: Partial<EvidenceRecord> = {}): EvidenceRecord {
  return {
    sha256: n.toString(16).padStart(64, "0"),
    url: `https://a.example/${n}`,
    finalUrl: `https://b.example/${n}`,
    title: `page ${n}`,
    text: `text ${n}`,
    contentType: "text/html",
    bytes: 100 + n,
    fetchedAt: "2026-01-01T00:00:00.000Z",
    ...extra,
  };
}

Deno.test("evidence store: put redacts what it keeps; get validates the id", async () => {
  using kv = await Deno.openKv(":memory:");
  const store = createEvidenceStore(kv, {
    redact: <T>(v: T) => (typeof v === "string" ? v.replaceAll("sk-secret", "[REDACTED]") : v) as T,
  });
  await store.put(
    record(1, {
      text: "key sk-secret here",
      title: "sk-secret",
      url: "https://a.example/?k=sk-secret",
    }),
    "alice",
  );
  const kept = await store.get(record(1).sha256);
  assert.equal(kept?.text, "key [REDACTED] here");
  assert.equal(kept?.title, "[REDACTED]");
  assert.equal(kept?.url, "https://a.example/?k=[REDACTED]");
  assert.equal(kept?.sha256, record(1).sha256);
  assert.equal(await store.get("not-a-hash"), null);
  await store.put(record(0xabc), "alice");
  assert.ok(await store.get(record(0xabc).sha256));
  assert.equal(await store.get(record(0xabc).sha256.toUpperCase()), null);
  assert.equal(await store.get(record(2).sha256), null);
});

Deno.test("evidence store: listOwn and has see only what exists, each principal its own", async () => {
  using kv = await Deno.openKv(":memory:");
  const store = createEvidenceStore(kv);
  for (let n = 1; n <= 12; n++) await store.put(record(n), n % 3 === 0 ? "bob" : "alice");
  const alice = await store.listOwn("alice");
  assert.equal(alice.length, 8);
  assert.ok(alice.every((r) => Number.parseInt(r.sha256, 16) % 3 !== 0));
  assert.deepEqual((await store.listOwn("bob")).map((r) => r.bytes), [103, 106, 109, 112]);
  assert.equal((await store.listOwn("alice", 3)).length, 3);
  assert.deepEqual(await store.listOwn("carol"), []);
  // has(): more than one getMany page (10 keys), invalid ids dropped, absent ones not reported.
  const ids = [
    ...Array.from({ length: 12 }, (_, i) => record(i + 1).sha256),
    "zz",
    record(99).sha256,
  ];
  assert.equal((await store.has(ids)).size, 12);
});

Deno.test("evidence store: resolveUrl finds a fetch by the URL asked or the final one, normalised", async () => {
  using kv = await Deno.openKv(":memory:");
  const store = createEvidenceStore(kv);
  await store.put(record(5, { url: "http://a.example", finalUrl: "https://b.example/5" }), "alice");
  const id = record(5).sha256;
  assert.equal(await store.resolveUrl("http://a.example"), id);
  assert.equal(
    await store.resolveUrl("http://a.example/"),
    null,
  );
  assert.equal(await store.resolveUrl("https://b.example/5"), id);
  assert.equal(await store.resolveUrl("ftp://a.example"), null);
  assert.equal(await store.resolveUrl("https://" + "a".repeat(5000)), null);
  assert.equal(await store.resolveUrl("https://c.example/"), null);
});

Deno.test("evidence store: text over 48 KiB is cut to fit one KV value", async () => {
  using kv = await Deno.openKv(":memory:");
  const store = createEvidenceStore(kv);
  await store.put(record(7, { text: "€".repeat(40_000) }), "alice"); // 120,000 UTF-8 bytes
  const kept = (await store.get(record(7).sha256))!.text;
  assert.ok(new TextEncoder().encode(kept).byteLength <= 48 * 1024);
  assert.ok(kept.length > 10_000 && /^€+$/.test(kept));
  await store.put(record(8, { text: "short" }), "alice");
  assert.equal((await store.get(record(8).sha256))!.text, "short");
});

Deno.test("execution store: by id and by case, per principal", async () => {
  using kv = await Deno.openKv(":memory:");
  const store = createExecutionStore(kv);
  await store.put("alice", { execution_id: "e1", vault_index: 4, receipt: "r1", case_id: "c" });
  await store.put("alice", { execution_id: "e2", vault_index: 5, receipt: "r2", case_id: "c" });
  await store.put("alice", { execution_id: "e3", vault_index: 6, receipt: "r3", case_id: "d" });
  await store.put("alice", { execution_id: "e4", vault_index: 7, receipt: "r4" });
  await store.put("bob", { execution_id: "e1", vault_index: 9, receipt: "rb", case_id: "c" });
  assert.equal((await store.get("alice", "e1"))?.vault_index, 4);
  assert.equal((await store.get("bob", "e1"))?.vault_index, 9);
  assert.equal(await store.get("carol", "e1"), null);
  assert.deepEqual((await store.byCase("alice", "c")).map((r) => r.execution_id), ["e1", "e2"]);
  assert.deepEqual((await store.byCase("bob", "c")).map((r) => r.receipt), ["rb"]);
  assert.equal((await store.byCase("alice", "c", 1)).length, 1);
  assert.deepEqual(await store.byCase("alice", "none"), []);
  assert.equal((await store.get("alice", "e4"))?.case_id, undefined);
});

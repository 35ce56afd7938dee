/** The files service's domain core and virtual-path confinement over a real `:memory:` KV. */
import assert from "node:assert/strict";
import { ConfinementError, confineVirtualPath } from "../../src/fs/mod.ts";
import { createFileService, FILE_CHUNK_BYTES, FileServiceError } from "../../src/services/mod.ts";
import { sha256, toHex } from "../../src/lib/mod.ts";
import { withKv } from "../_helpers/kv.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const alice = { principal: "alice", session: "s-a" };
const bob = { principal: "bob", session: "s-b" };

async function count(kv: Deno.Kv, prefix: string): Promise<number> {
  let n = 0;
  for await (const _ of kv.list({ prefix: [prefix] })) n++;
  return n;
}

Deno.test("confineVirtualPath() normalises inside the root and refuses every escape spelling", () => {
  assert.equal(confineVirtualPath("docs//./a.txt"), "/docs/a.txt");
  assert.equal(confineVirtualPath("/etc/passwd"), "/etc/passwd");
  assert.equal(confineVirtualPath("/"), "/");
  assert.equal(confineVirtualPath("a..b/..c"), "/a..b/..c", "dots inside a name are a name");
  // NFC: one name, one file.
  assert.equal(confineVirtualPath("/cafe\u0301"), confineVirtualPath("/caf\u00e9"));
  const escapes = [
    "../etc/passwd",
    "docs/../../x",
    "/a/b/../../../x",
    "..",
    "docs\\..\\x",
    "..\\x",
    "a.txt\u0000.png",
    "a\nb",
    "C:/Windows/system32",
    "c:x",
    "//server/share/x",
    "%2e%2e/x",
    "%2E%2E%2Fx",
    "a%2fb",
    "a%5c..",
    "\uff0e\uff0e/x", // full-width dots
    " .. /x",
    "a/\u{10FFFF}",
    "x".repeat(1025),
    "/" + "y".repeat(256),
  ];
  for (const p of escapes) {
    assert.throws(() => confineVirtualPath(p), ConfinementError, JSON.stringify(p));
  }
});

Deno.test("files: every write is a version; any kept version reads back; identical content is stored once", () =>
  withKv(async (kv) => {
    const files = createFileService(kv);
    const w1 = await files.write(alice, { path: "/notes/a.txt", content: enc("one") });
    const w2 = await files.write(alice, { path: "notes/a.txt", content: enc("two") });
    const w3 = await files.write(bob, { path: "/notes/a.txt", content: enc("one") });
    assert.deepEqual([w1.version, w2.version, w3.version], [1, 2, 3]);
    assert.equal(w1.sha256, toHex(sha256(enc("one"))));
    assert.equal(w1.deduplicated, false);
    assert.equal(w3.deduplicated, true, "content of version 1 is shared");
    await files.write(bob, { path: "/other.txt", content: enc("one") });
    assert.equal(await count(kv, "file_blob"), 2, "two distinct contents, two blobs");
    assert.equal(await count(kv, "file_chunk"), 2, "one chunk each");
    assert.equal(dec((await files.read({ path: "/notes/a.txt", version: 1 })).bytes), "one");
    assert.equal(dec((await files.read({ path: "/notes/a.txt", version: 2 })).bytes), "two");
    const latest = await files.read({ path: "/notes/a.txt" });
    assert.equal(latest.version, 3);
    assert.equal(latest.principal, "bob");
    const vs = await files.versions({ path: "/notes/a.txt" });
    assert.deepEqual(vs.versions.map((v) => [v.version, v.principal]), [
      [1, "alice"],
      [2, "alice"],
      [3, "bob"],
    ]);
    await assert.rejects(files.read({ path: "/notes/a.txt", version: 9 }), /versions are 1–3/);
    await assert.rejects(files.read({ path: "/nope" }), /no such file/);
  }));

Deno.test("files: retention keeps the last N versions and deletes content no version holds", () =>
  withKv(async (kv) => {
    const files = createFileService(kv, { limits: { maxVersions: 2 } });
    await files.write(alice, { path: "/f", content: enc("v1") });
    await files.write(alice, { path: "/f", content: enc("v2") });
    const w3 = await files.write(alice, { path: "/f", content: enc("v3") });
    assert.deepEqual(w3.dropped_versions, [1]);
    await assert.rejects(files.read({ path: "/f", version: 1 }), /no longer kept/);
    assert.equal(dec((await files.read({ path: "/f", version: 2 })).bytes), "v2");
    assert.equal(await count(kv, "file_blob"), 2, "v1's blob is gone");
    assert.equal(await count(kv, "file_chunk"), 2, "and its chunks");
    // Content shared with a kept version survives the drop.
    await files.write(alice, { path: "/f", content: enc("v2") }); // v4 = v2's content, drops v2
    assert.equal(dec((await files.read({ path: "/f", version: 4 })).bytes), "v2");
  }));

Deno.test("files: large binary content is chunked and verified; size limit refused clearly", () =>
  withKv(async (kv) => {
    const files = createFileService(kv, { limits: { maxFileBytes: 3 * FILE_CHUNK_BYTES } });
    const big = new Uint8Array(2 * FILE_CHUNK_BYTES + 17);
    for (let i = 0; i < big.length; i += 65536) crypto.getRandomValues(big.subarray(i, i + 65536));
    await files.write(alice, { path: "/bin/blob", content: big });
    assert.equal(await count(kv, "file_chunk"), 3);
    assert.deepEqual((await files.read({ path: "/bin/blob" })).bytes, big);
    await assert.rejects(
      files.write(alice, { path: "/bin/huge", content: new Uint8Array(3 * FILE_CHUNK_BYTES + 1) }),
      (e: unknown) =>
        e instanceof FileServiceError && e.code === "too_large" &&
        /files are at most 180000 bytes/.test(e.message),
    );
    await files.write(alice, { path: "/empty", content: new Uint8Array(0) });
    assert.equal((await files.read({ path: "/empty" })).bytes.byteLength, 0);
  }));

Deno.test("files: expected_version is optimistic concurrency", () =>
  withKv(async (kv) => {
    const files = createFileService(kv);
    await files.write(alice, { path: "/c", content: enc("a"), expectedVersion: 0 });
    await assert.rejects(
      files.write(alice, { path: "/c", content: enc("b"), expectedVersion: 0 }),
      /expected version 0, but the current version is 1/,
    );
    await files.write(bob, { path: "/c", content: enc("b"), expectedVersion: 1 });
    await assert.rejects(
      files.write(alice, { path: "/c", content: enc("stale"), expectedVersion: 1 }),
      (e: unknown) => e instanceof FileServiceError && e.code === "conflict",
    );
    // Concurrent writers that both expect version 2: exactly one wins.
    const both = await Promise.allSettled([
      files.write(alice, { path: "/c", content: enc("x"), expectedVersion: 2 }),
      files.write(bob, { path: "/c", content: enc("y"), expectedVersion: 2 }),
    ]);
    assert.equal(both.filter((r) => r.status === "fulfilled").length, 1);
    assert.equal((await files.versions({ path: "/c" })).versions.length, 3);
  }));

Deno.test("files: a lease blocks another's write naming holder and expiry, renews, and expires", () =>
  withKv(async (kv) => {
    let t = 1_000_000;
    const files = createFileService(kv, { now: () => t });
    await files.write(alice, { path: "/l", content: enc("0") });
    const lease = await files.lock(alice, { path: "/l", ttl: 60 });
    assert.equal(lease.renewed, false);
    assert.equal(lease.expires_at, new Date(t + 60_000).toISOString());
    await assert.rejects(
      files.write(bob, { path: "/l", content: enc("bob") }),
      (e: unknown) =>
        e instanceof FileServiceError && e.code === "leased" &&
        e.message.includes(`leased by alice (session s-a) until ${lease.expires_at}`),
    );
    // The same principal in another session is someone else too.
    await assert.rejects(
      files.write({ principal: "alice", session: "other" }, { path: "/l", content: enc("x") }),
      /leased by alice \(session s-a\)/,
    );
    await assert.rejects(files.lock(bob, { path: "/l" }), /leased by alice/);
    await assert.rejects(files.unlock(bob, { path: "/l" }), /Cannot unlock \/l: it is leased/);
    await files.write(alice, { path: "/l", content: enc("1") });
    t += 30_000;
    const renewed = await files.lock(alice, { path: "/l", ttl: 60 });
    assert.equal(renewed.renewed, true);
    assert.equal(renewed.acquired_at, lease.acquired_at);
    t += 59_000; // 89 s after the first lock: still held by the renewal
    await assert.rejects(files.write(bob, { path: "/l", content: enc("bob") }), /leased/);
    t += 2_000;
    assert.equal(await files.lease("/l"), undefined, "expired");
    const w = await files.write(bob, { path: "/l", content: enc("bob") });
    assert.equal(w.version, 3);
    // Unlock releases at once.
    await files.lock(bob, { path: "/l" });
    assert.deepEqual(await files.unlock(bob, { path: "/l" }), { path: "/l", released: true });
    await files.write(alice, { path: "/l", content: enc("free") });
    await assert.rejects(files.lock(alice, { path: "/l", ttl: 3601 }), /from 1 to 3600/);
  }));

Deno.test("files: list shows direct children; a file and a directory cannot share a name", () =>
  withKv(async (kv) => {
    const files = createFileService(kv, { limits: { maxFiles: 6 } });
    for (const p of ["/a.txt", "/d/one", "/d/two", "/d/sub/deep", "/e/x"]) {
      await files.write(alice, { path: p, content: enc(p) });
    }
    const root = await files.list({});
    assert.deepEqual(root.entries.map((e) => `${e.kind}:${e.name}`), [
      "file:a.txt",
      "directory:d",
      "directory:e",
    ]);
    const d = await files.list({ path: "/d" });
    assert.deepEqual(d.entries.map((e) => e.name), ["one", "sub", "two"]);
    assert.equal((await files.list({ path: "/", limit: 2 })).truncated, true);
    await assert.rejects(files.list({ path: "/nope" }), /no such directory/);
    await assert.rejects(files.list({ path: "/a.txt" }), /is a file/);
    await assert.rejects(files.write(alice, { path: "/d", content: enc("x") }), /is a directory/);
    await assert.rejects(files.write(alice, { path: "/a.txt/x", content: enc("x") }), /is a file/);
    await files.write(alice, { path: "/sixth", content: enc("x") });
    await assert.rejects(
      files.write(alice, { path: "/seventh", content: enc("x") }),
      /holds 6 files/,
    );
    await assert.rejects(
      files.write(alice, { path: "../x", content: enc("x") }),
      /parent reference/,
    );
  }));

// deno-lint-ignore-file no-explicit-any -- envelopes and vault entries are probed field by field
/**
 * The file tools through a real server, two principals with minted tokens,
 * the v1 SDK client (2025 session) and the v2 client pinned to 2026-07-28:
 * versions, a lease blocking the other principal and then expiring,
 * expected_version conflicts, base64 binary content, path escapes refused,
 * and the vault recording the content's digest, never the content.
 */
import assert from "node:assert/strict";
import { createToken } from "../../src/identity/mod.ts";
import { callParts, connectModernAs, connectV1As } from "../_helpers/client.ts";
import { startServer, type TestServer } from "../_helpers/server.ts";

const v1 = (server: TestServer, secret: string) => connectV1As(server.url, secret, "files-v1");
const v2 = (server: TestServer, secret: string) => connectModernAs(server.url, secret, "files-v2");

// Letters only: a random UUID's digit groups sometimes pass as a card number (F6 → PARTIAL).
const MARKER = `file-marker-${
  Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => String.fromCharCode(97 + (b % 26)))
    .join("")
}`;

Deno.test({
  name: "file tools: versions, leases, expected_version, base64 and escapes, in both eras",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // The service's clock, moved past a lease's end instead of waiting for it.
    let skewMs = 0;
    await using server = await startServer({
      clock: () => Date.now() + skewMs,
      policy: {
        rate_limits: { per_principal_per_minute: 0, per_ip_per_minute: 0 },
        store_bodies: true,
        files: { max_file_bytes: 4096 },
      },
    });
    const alice = await createToken(server.kv, { name: "alice" });
    const bob = await createToken(server.kv, { name: "bob" });
    for (const connect of [v1, v2]) {
      const era = connect === v1 ? "2025 session" : "2026-07-28";
      const dir = connect === v1 ? "/v1" : "/v2";
      const a: any = await connect(server, alice.secret);
      const b: any = await connect(server, bob.secret);
      const call = callParts;
      try {
        const f = `${dir}/plan.md`;
        const w1 = await call(a, "file_write", { path: f, content: `one ${MARKER}` });
        assert.equal(w1.r.isError, undefined, `${era}: ${JSON.stringify(w1.r)}`);
        assert.equal(w1.env.policy_verdict, "SEAL", era);
        assert.equal(w1.data.version, 1);
        const w2 = await call(a, "file_write", { path: f, content: "two", expected_version: 1 });
        assert.equal(w2.data.version, 2, era);

        // expected_version conflict, clearly.
        const stale = await call(b, "file_write", {
          path: f,
          content: "stale",
          expected_version: 1,
        });
        assert.equal(stale.r.isError, true, era);
        assert.match(stale.r.content[0].text, /expected version 1, but the current version is 2/);

        // Any version reads back; versions lists both.
        const r1 = await call(b, "file_read", { path: f, version: 1 });
        assert.equal(r1.data.content, `one ${MARKER}`, era);
        assert.equal((await call(b, "file_read", { path: f })).data.content, "two");
        const vs = await call(b, "file_versions", { path: f });
        assert.deepEqual(vs.data.versions.map((v: any) => v.version), [1, 2], era);

        // A lease by alice blocks bob's write, naming holder and expiry; it expires.
        const lock = await call(a, "file_lock", { path: f, ttl: 1 });
        assert.equal(lock.data.holder.principal, "alice", era);
        const blocked = await call(b, "file_write", { path: f, content: "bob" });
        assert.equal(blocked.r.isError, true, era);
        assert.match(
          blocked.r.content[0].text,
          new RegExp(`leased by alice .* until ${lock.data.expires_at.replace(/\./g, "\\.")}`),
          era,
        );
        const own = await call(a, "file_write", { path: f, content: "alice under lease" });
        // A 2026 client is sessionless, so alice's stateless calls are one holder.
        assert.equal(own.r.isError, undefined, `${era}: ${JSON.stringify(own.r)}`);
        skewMs += 1_100;
        const after = await call(b, "file_write", { path: f, content: "bob after expiry" });
        assert.equal(after.r.isError, undefined, `${era}: ${JSON.stringify(after.r)}`);
        assert.equal(after.data.version, 4, era);

        // Unlock by someone else is refused; by the holder releases.
        await call(b, "file_lock", { path: f });
        const notMine = await call(a, "file_unlock", { path: f });
        assert.equal(notMine.r.isError, true, era);
        assert.equal((await call(b, "file_unlock", { path: f })).data.released, true, era);

        // Binary content through base64, byte for byte.
        const bin = new Uint8Array([0, 255, 1, 254, 0x80, 0x81]);
        await call(a, "file_write", {
          path: `${dir}/b.bin`,
          content: bin.toBase64(),
          encoding: "base64",
        });
        const rb = await call(a, "file_read", { path: `${dir}/b.bin` });
        assert.equal(rb.data.encoding, "base64", era);
        assert.deepEqual(Uint8Array.fromBase64(rb.data.content), bin, era);
        const badB64 = await call(a, "file_write", {
          path: `${dir}/c.bin`,
          content: "@@@",
          encoding: "base64",
        });
        assert.match(badB64.r.content[0].text, /not valid base64/, era);

        // Size limit.
        const big = await call(a, "file_write", {
          path: `${dir}/big`,
          content: "x".repeat(5000),
        });
        assert.match(big.r.content[0].text, /files are at most 4096 bytes/, era);

        // Listing.
        const ls = await call(a, "file_list", { path: dir });
        assert.deepEqual(ls.data.entries.map((e: any) => e.name), ["b.bin", "plan.md"], era);

        // Escapes are refused before anything is touched.
        for (
          const p of ["../etc/passwd", `${dir}/../../x`, "docs\\..\\x", "a\u0000b", "%2e%2e/x"]
        ) {
          const esc = await call(a, "file_write", { path: p, content: "x" });
          assert.equal(esc.r.isError, true, `${era}: ${p}`);
          assert.match(esc.r.content[0].text, /Cannot use path/, `${era}: ${p}`);
          const rd = await call(a, "file_read", { path: p });
          assert.equal(rd.r.isError, true, `${era}: ${p}`);
        }
      } finally {
        await a.close();
        await b.close();
      }
    }
    const head = await server.app.ledger.head();
    const entries: any[] = [];
    for (let i = 0; i < head.size; i++) {
      entries.push(
        JSON.parse(new TextDecoder().decode((await server.app.ledger.entry(i))!.bytes)),
      );
    }
    const writes = entries.filter((e) => e.tool === "file_write" && e.outcome === "ok");
    assert.ok(writes.length >= 8, `sealed writes: ${writes.length}`);
    for (const e of writes) {
      const body = JSON.parse(e.body);
      assert.match(body.arguments.content_sha256, /^[0-9a-f]{64}$/);
      assert.equal(body.arguments.content, undefined);
    }
    assert.ok(!JSON.stringify(entries).includes(MARKER), "file content reached the vault");
  },
});

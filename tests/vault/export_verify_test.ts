import assert from "node:assert/strict";
import { runCli as cli } from "../_helpers/cli.ts";
import { CompactRange, generateSigner, signNote, splitNote } from "../../src/merkle/mod.ts";
import { createLedger, loadVaultIdentity } from "../../src/vault/mod.ts";
import { spawnServer } from "../_helpers/server.ts";

/** A KV file holding a 40-entry log with checkpoints at 10, 25 and 40. */
async function makeVault(dir: string): Promise<{ path: string; vkey: string }> {
  const path = `${dir}/vault.db`;
  const kv = await Deno.openKv(path);
  const identity = await loadVaultIdentity(kv, { defaultOrigin: "warden/tamper-test" });
  const ledger = createLedger(kv, { origin: identity.origin, signer: identity.signer });
  for (let i = 0; i < 40; i++) {
    await ledger.append(
      { type: "tool_call", tool: "calculate", n: i },
      i === 17 ? { body: { big: "z".repeat(40_000) } } : {},
    );
    if (i === 9 || i === 24 || i === 39) await ledger.signCheckpoint();
  }
  kv.close();
  return { path, vkey: identity.signer.vkey };
}

async function exportAndVerify(dir: string, path: string, extra: string[] = []) {
  const out = `${dir}/bundle-${crypto.randomUUID()}.json`;
  const exp = await cli(["export", "--kv", path, "--out", out]);
  assert.equal(exp.code, 0, exp.stderr);
  return { ...(await cli(["verify", out, ...extra])), out };
}

async function tamper(path: string, fn: (kv: Deno.Kv) => Promise<void>) {
  const kv = await Deno.openKv(path);
  try {
    await fn(kv);
  } finally {
    kv.close();
  }
}

/**
 * Rewrites the head record to a well-formed head of the first `size` entries,
 * as a careful rollback would: format 1 ‖ size (8 bytes) ‖ last leaf ‖ the
 * compact range of those leaves.
 */
async function rollBackHead(kv: Deno.Kv, size: number) {
  const range = new CompactRange();
  let last = new Uint8Array(32);
  for (let i = 0; i < size; i++) {
    last = (await kv.get<Uint8Array>(["vault", "e", i])).value!.slice(0, 32);
    range.append(last);
  }
  const hashes = range.hashes;
  const head = new Uint8Array(41 + hashes.length * 32);
  head[0] = 1;
  new DataView(head.buffer).setBigUint64(1, BigInt(size));
  head.set(last, 9);
  hashes.forEach((h, i) => head.set(h, 41 + i * 32));
  await kv.set(["vault", "head"], head);
}

async function copyVault(src: string, dir: string): Promise<string> {
  const dest = `${dir}/copy-${crypto.randomUUID()}.db`;
  await Deno.copyFile(src, dest);
  return dest;
}

Deno.test("export + verify: an untouched vault verifies offline, with and without a trusted key", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { path, vkey } = await makeVault(dir);
    const ok = await exportAndVerify(dir, path);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(
      ok.stdout,
      /^OK: 40 entries .* 3 signed checkpoints .* 2 consistency proofs\), 1 bodies; size 40, signed size 40/,
    );
    // The bundle is one valid JSON document.
    const doc = JSON.parse(await Deno.readTextFile(ok.out));
    assert.equal(doc.entries.length, 40);
    assert.equal(doc.vkey, vkey);
    const trusted = await cli(["verify", ok.out, "--key", vkey]);
    assert.equal(trusted.code, 0, trusted.stderr);
    const other = await generateSigner("warden/tamper-test");
    const impostor = await cli(["verify", ok.out, "--key", other.vkey]);
    assert.equal(impostor.code, 1);
    // A re-serialised (pretty-printed) bundle is still accepted.
    const pretty = `${dir}/pretty.json`;
    await Deno.writeTextFile(pretty, JSON.stringify(doc, null, 2));
    const prettyResult = await cli(["verify", pretty]);
    assert.equal(prettyResult.code, 0, prettyResult.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tamper: each alteration of a real KV file is caught and the right index named", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    const { path } = await makeVault(dir);
    const cases: { name: string; index: number; change: (kv: Deno.Kv) => Promise<void> }[] = [
      {
        name: "one byte of a stored entry changed",
        index: 12,
        async change(kv) {
          // The record is leaf hash ‖ node count ‖ nodes ‖ canonical JSON; change the JSON.
          const record = (await kv.get<Uint8Array>(["vault", "e", 12])).value!.slice();
          const json = 33 + record[32] * 32;
          const at = json + new TextDecoder().decode(record.subarray(json)).indexOf('"n":12') + 5;
          record[at] = "7".charCodeAt(0); // "n":12 → "n":17: still canonical JSON
          await kv.set(["vault", "e", 12], record);
        },
      },
      {
        name: "an entry deleted",
        index: 20,
        change: async (kv) => await kv.delete(["vault", "e", 20]),
      },
      {
        name: "two entries swapped",
        index: 5,
        async change(kv) {
          const [a, b] = await kv.getMany<[Uint8Array, Uint8Array]>([["vault", "e", 5], [
            "vault",
            "e",
            6,
          ]]);
          await kv.atomic().set(["vault", "e", 5], b.value).set(["vault", "e", 6], a.value)
            .commit();
        },
      },
      {
        name: "the log truncated (last 8 entries and the head rolled back)",
        index: 32,
        async change(kv) {
          for (let i = 32; i < 40; i++) await kv.delete(["vault", "e", i]);
          await rollBackHead(kv, 32);
        },
      },
      {
        name: "a checkpoint signature replaced",
        index: 24,
        async change(kv) {
          const note = (await kv.get<string>(["vault", "cp", 25])).value!;
          const forger = await generateSigner("warden/tamper-test");
          await kv.set(["vault", "cp", 25], await signNote(splitNote(note).text, forger));
        },
      },
      {
        name: "a stored body altered",
        index: 17,
        async change(kv) {
          for await (const e of kv.list<Uint8Array>({ prefix: ["vault", "blob"] })) {
            const bytes = e.value.slice();
            bytes[10] ^= 1;
            await kv.set(e.key, bytes);
            break;
          }
        },
      },
    ];
    for (const c of cases) {
      await t.step(c.name, async () => {
        const copy = await copyVault(path, dir);
        await tamper(copy, c.change);
        const result = await exportAndVerify(dir, copy);
        assert.equal(
          result.code,
          1,
          `${c.name}: verify must fail\n${result.stdout}${result.stderr}`,
        );
        assert.match(
          result.stderr,
          new RegExp(`^FAIL at index ${c.index}: `),
          `${c.name}: ${result.stderr}`,
        );
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("verify --url audits a running server from the outside", async () => {
  const dir = await Deno.makeTempDir();
  const server = await spawnServer(["--kv", `${dir}/w.db`, "--checkpoint-interval", "100"]);
  try {
    for (let i = 0; i < 30; i++) {
      await fetch(`${server.url}/invoke`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ tool: "calculate", arguments: { expression: `${i}*3` } }),
      }).then((r) => r.text());
      // Wall time on purpose: checkpoints (every 100 ms) fall between the bursts.
      if (i % 10 === 9) await new Promise((r) => setTimeout(r, 250));
    }
    const vkey = (await (await fetch(`${server.url}/vault/key`)).text()).trim();
    const audit = await cli(["verify", "--url", server.url, "--key", vkey]);
    assert.equal(audit.code, 0, audit.stderr);
    assert.match(audit.stdout, /^OK: 31 entries/); // 30 calls and the policy load
    const wrongKey = await cli([
      "verify",
      "--url",
      server.url,
      "--key",
      (await generateSigner("x")).vkey,
    ]);
    assert.equal(wrongKey.code, 1);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("export refuses a KV that holds no vault, and verify refuses a missing file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const exp = await cli(["export", "--kv", `${dir}/empty.db`, "--out", `${dir}/b.json`]);
    assert.equal(exp.code, 1);
    assert.match(exp.stderr, /no vault in this KV/);
    const ver = await cli(["verify", `${dir}/missing.json`]);
    assert.equal(ver.code, 2);
    await Deno.writeTextFile(`${dir}/junk.json`, "{not json");
    const junk = await cli(["verify", `${dir}/junk.json`]);
    assert.equal(junk.code, 1);
    assert.match(junk.stderr, /not valid JSON/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tamper: a truncation that also deletes the checkpoints is caught by a checkpoint held from before", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { path } = await makeVault(dir);
    const kv = await Deno.openKv(path);
    const held = (await kv.get<string>(["vault", "cp", 40])).value!;
    kv.close();
    await Deno.writeTextFile(`${dir}/held.note`, held);
    await tamper(path, async (kv) => {
      for (let i = 30; i < 40; i++) await kv.delete(["vault", "e", i]);
      await kv.delete(["vault", "cp", 40]);
      await rollBackHead(kv, 30);
    });
    // Alone, the rolled-back log is self-consistent…
    const alone = await exportAndVerify(dir, path);
    assert.equal(alone.code, 0, alone.stderr);
    // …but not with the checkpoint an auditor kept.
    const withHeld = await cli(["verify", alone.out, "--checkpoint", `${dir}/held.note`]);
    assert.equal(withHeld.code, 1);
    assert.match(withHeld.stderr, /^FAIL at index 30: /);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * The ledger's `once` key (issue 9 §3): an entry that must exist at most once — a governed
 * session's seal — is refused when another entry already holds its key, whether the two appends
 * race in one ledger, in one commit's batch, or in two ledgers on one KV file; the other entries
 * around them are still appended.
 */
import assert from "node:assert/strict";
import { createLedger, EntryExistsError } from "../../src/vault/mod.ts";
import { generateSigner } from "../../src/merkle/mod.ts";

async function ledgerOver(kv: Deno.Kv) {
  return createLedger(kv, { origin: "warden/test", signer: await generateSigner("warden/test") });
}

const types = async (ledger: Awaited<ReturnType<typeof ledgerOver>>) => {
  const out: string[] = [];
  const { size } = await ledger.head();
  for await (const e of ledger.entries(0, size)) {
    out.push(JSON.parse(new TextDecoder().decode(e.bytes)).type);
  }
  return out;
};

Deno.test("ledger once: of appends naming one key in one ledger, one is appended and the rest name its index", async () => {
  await using kv = await Deno.openKv(":memory:");
  const ledger = await ledgerOver(kv);
  // Ten at once: they would all join one batch; the two kinds interleave.
  const results = await Promise.allSettled(
    Array.from(
      { length: 10 },
      (_, i) =>
        i % 2 === 0
          ? ledger.append({ type: "seal", n: i }, { once: ["seal_of", "s1"] })
          : ledger.append({ type: "other", n: i }),
    ),
  );
  const won = results.filter((r, i) => i % 2 === 0 && r.status === "fulfilled");
  assert.equal(won.length, 1);
  const index = (won[0] as PromiseFulfilledResult<{ index: number }>).value.index;
  for (const [i, r] of results.entries()) {
    if (i % 2 === 1) assert.equal(r.status, "fulfilled", "unrelated entries are appended");
    else if (r !== won[0]) {
      assert.equal(r.status, "rejected");
      const e = (r as PromiseRejectedResult).reason;
      assert.ok(e instanceof EntryExistsError, String(e));
      assert.equal(e.index, index);
      assert.match(e.message, new RegExp(`entry ${index} already holds`));
    }
  }
  const seen = await types(ledger);
  assert.deepEqual(seen.filter((t) => t === "seal").length, 1);
  assert.deepEqual(seen.filter((t) => t === "other").length, 5);
  assert.equal((await kv.get(["seal_of", "s1"])).value, index);
  // Later, too: the key stays held.
  await assert.rejects(
    ledger.append({ type: "seal" }, { once: ["seal_of", "s1"] }),
    EntryExistsError,
  );
  // Another key is free.
  await ledger.append({ type: "seal" }, { once: ["seal_of", "s2"] });
});

Deno.test("ledger once: two ledgers on one KV file append one entry per key between them", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await using kvA = await Deno.openKv(`${dir}/v.db`);
    await using kvB = await Deno.openKv(`${dir}/v.db`);
    const a = await ledgerOver(kvA);
    const b = await ledgerOver(kvB);
    const results = await Promise.allSettled(
      Array.from(
        { length: 12 },
        (_, i) =>
          (i % 2 === 0 ? a : b).append({ type: "seal", key: i % 3 }, {
            once: ["seal_of", `k${i % 3}`],
          }),
      ),
    );
    const won = results.filter((r) => r.status === "fulfilled");
    assert.equal(won.length, 3, "one per key");
    for (const r of results) {
      if (r.status === "rejected") assert.ok(r.reason instanceof EntryExistsError, r.reason);
    }
    const seen = await types(a);
    assert.equal(seen.length, 3);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

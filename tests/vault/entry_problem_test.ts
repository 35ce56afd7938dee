/**
 * `entryProblem` promises the same encoding and size checks `append` makes: the pipeline runs
 * it before a call so a call whose record could not be sealed is not run. Its quick path
 * (`surelyFits`) judges most records without encoding them; here random records — strings
 * with escapes and lone surrogates, integers, floats, NaN, nesting, undefined, dates, holes,
 * records near the size limit — are judged and then appended to a real vault, and the two
 * must agree every time.
 */
import assert from "node:assert/strict";
import { createLedger, entryProblem, MAX_ENTRY_BYTES } from "../../src/vault/mod.ts";
import { generateSigner } from "../../src/merkle/mod.ts";

function rng(seed: number) {
  return () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
}

function randomValue(r: () => number, depth: number, big: boolean): unknown {
  const pick = Math.floor(r() * (depth > 3 ? 6 : 10));
  const text = (n: number) =>
    Array.from({ length: n }, () => {
      const c = r();
      return c < 0.05 ? "\u0001" : c < 0.08 ? "\ud800" : c < 0.12 ? '"' : c < 0.15 ? "é" : "a";
    }).join("");
  switch (pick) {
    case 0:
      // Near the limit, all escapes: every unit is 6 bytes (`\u0001`), as the quick bound says.
      if (big && r() < 0.4) return "\u0001".repeat(4_000 + Math.floor(r() * 8_000));
      return text(Math.floor(r() * (big ? 14_000 : 40)));
    case 1:
      return Math.floor(r() * 1e6) - 5e5;
    case 2:
      return r() < 0.5 ? 1.5 : r() < 0.5 ? NaN : 2 ** 60;
    case 3:
      return r() < 0.5;
    case 4:
      return null;
    case 5:
      return r() < 0.3 ? undefined : r() < 0.5 ? new Date(0) : text(5);
    case 6:
    case 7: {
      const a: unknown[] = Array.from(
        { length: Math.floor(r() * 4) },
        () => randomValue(r, depth + 1, big),
      );
      if (r() < 0.1) a.length += 1; // a hole
      return a;
    }
    default: {
      const o: Record<string, unknown> = {};
      for (let i = 0; i < Math.floor(r() * 4); i++) o[text(3) + i] = randomValue(r, depth + 1, big);
      return o;
    }
  }
}

Deno.test("entryProblem agrees with append on every record, near the size limit too", async () => {
  using kv = await Deno.openKv(":memory:");
  const ledger = createLedger(kv, {
    origin: "warden/test",
    signer: await generateSigner("warden/test"),
  });
  const r = rng(7);
  let quick = 0, refused = 0;
  for (let i = 0; i < 400; i++) {
    const big = i % 4 === 0;
    const fields: Record<string, unknown> = { type: "t" };
    for (let k = 0; k < (big ? 6 : 4); k++) fields[`f${k}`] = randomValue(r, 0, big);
    const options = i % 2 === 0 ? { digests: { args_sha256: { a: 1 } } } : {};
    const problem = entryProblem(fields, options);
    let appended: string | undefined;
    try {
      await ledger.append(fields, options);
    } catch (e) {
      appended = (e as Error).message;
    }
    assert.equal(
      problem === undefined,
      appended === undefined,
      `record ${i}: entryProblem said ${problem}, append ${appended ?? "succeeded"}`,
    );
    if (problem !== undefined) refused++;
    else if (JSON.stringify(fields).length * 6 < MAX_ENTRY_BYTES) quick++;
  }
  // Both kinds were tried: records judged at a glance, and records refused.
  assert.ok(quick > 50 && refused > 50, `quick ${quick}, refused ${refused}`);
});

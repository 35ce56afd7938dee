import assert from "node:assert/strict";
import { type BundleFailure, createBundleVerifier, verifyBundle } from "../../src/vault/mod.ts";
import { canonicalize, fromBase64, toBase64, toHex } from "../../src/lib/mod.ts";
import {
  CompactRange,
  generateSigner,
  hashLeaf,
  signCheckpoint,
  type Signer,
} from "../../src/merkle/mod.ts";
import { buildBundle, chainedEntries } from "../merkle/_reference.ts";

const ORIGIN = "warden.example/vault";
const signer = await generateSigner(ORIGIN);
const entries = chainedEntries(100);
// Checkpoints listed out of order on purpose: the bundle format allows it.
const SIZES = [57, 10, 100];

async function bundleOf(
  options: { entries?: Uint8Array[]; sizes?: number[]; signer?: Signer } = {},
) {
  return await buildBundle(options.entries ?? entries, options.sizes ?? SIZES, {
    signer: options.signer ?? signer,
    origin: ORIGIN,
  });
}

function assertFailure(
  result: Awaited<ReturnType<typeof verifyBundle>>,
  { index, reason }: { index: number | undefined; reason: RegExp },
): BundleFailure {
  assert.equal(result.ok, false, "bundle was accepted");
  const failure = result as BundleFailure;
  assert.equal(failure.index, index, failure.reason);
  assert.match(failure.reason, reason);
  return failure;
}

/** Copy of entry bytes with the text `from` replaced by `to`. */
function edit(bytes: Uint8Array, { from, to }: { from: string; to: string }): Uint8Array {
  const text = new TextDecoder().decode(bytes);
  assert.ok(text.includes(from), `${from} not in ${text}`);
  return new TextEncoder().encode(text.replace(from, to));
}

Deno.test("verifyBundle() accepts an intact bundle of 100 entries and 3 checkpoints", async () => {
  const bundle = await bundleOf();
  const range = new CompactRange();
  for (const entry of entries) range.append(hashLeaf(entry));
  assert.deepEqual(await verifyBundle(bundle), {
    ok: true,
    entries: 100,
    checkpoints: 3,
    size: 100,
    signedSize: 100,
    authenticated: false,
    consistencyProofs: 2,
    root: toHex(range.root()),
  });
  assert.equal((await verifyBundle(bundle, { key: signer.vkey })).ok, true);
});

Deno.test("verifyBundle() accepts checkpoints of size 0, 1, repeated sizes and cosignatures", async () => {
  const witness = await generateSigner("witness.example");
  const bundle = await bundleOf({ sizes: [0, 1, 2, 2, 64, 100] });
  // An extra signature by an unknown key (a witness) must be ignored.
  const range = new CompactRange();
  for (const entry of entries) range.append(hashLeaf(entry));
  bundle.checkpoints.push(
    await signCheckpoint({ origin: ORIGIN, size: 100, root: range.root() }, [signer, witness]),
  );
  const result = await verifyBundle(bundle);
  assert.ok(result.ok, JSON.stringify(result));
  assert.equal(result.checkpoints, 7);
  // Pairs 1→2, 2→2, 2→64, 64→100 and 100→100; nothing is proved from size 0.
  assert.equal(result.consistencyProofs, 5);
});

Deno.test("verifyBundle() names the entry whose byte was changed", async () => {
  // Still canonical JSON, same index and prev: only the chain link to the
  // next entry (and the checkpoint root) reveal it.
  const tampered = entries.with(42, edit(entries[42], { from: "file-42", to: "file-43" }));
  const failure = assertFailure(
    await verifyBundle(await bundleOf({ entries: tampered, sizes: [] })),
    { index: 42, reason: /entry 42 does not hash to the prev recorded by entry 43/ },
  );
  assert.equal(failure.expected, toHex(hashLeaf(entries[42])));
  assert.equal(failure.calculated, toHex(hashLeaf(tampered[42])));
  // The signed bundle gets the same verdict: checkpoint 57 covers entry 42 but
  // the chain break is found first and names the same entry.
  const bundle = await bundleOf();
  bundle.entries[42] = toBase64(tampered[42]);
  assertFailure(await verifyBundle(bundle), { index: 42, reason: /entry 42/ });
});

Deno.test("verifyBundle() names an entry changed into invalid or non-canonical JSON", async () => {
  const cases: [Uint8Array, RegExp][] = [
    [edit(entries[7], { from: '{"args"', to: '{ "args"' }), /entry 7: not canonical JSON/],
    [edit(entries[7], { from: '"index":7', to: '"index":7.0' }), /entry 7: not canonical JSON/],
    [
      edit(entries[7], { from: '"latency_ms":21', to: '"latency_ms":21.5' }),
      /non-integer number 21.5/,
    ],
    [edit(entries[7], { from: '{"args"', to: '["args"' }), /entry 7: not valid JSON/],
    [
      Uint8Array.of(...entries[7].subarray(0, 20), 0xff, ...entries[7].subarray(21)),
      /not valid UTF-8/,
    ],
    [canonicalize([1]), /not a JSON object/],
    [edit(entries[7], { from: '"index":7', to: '"index":"7"' }), /index field/],
    [edit(entries[7], { from: '"prev":"', to: '"prev":"A' }), /prev field/],
  ];
  for (const [bytes, reason] of cases) {
    const bundle = await bundleOf({ sizes: [] });
    bundle.entries[7] = toBase64(bytes);
    assertFailure(await verifyBundle(bundle), { index: 7, reason });
  }
  const bundle = await bundleOf({ sizes: [] });
  bundle.entries[7] = bundle.entries[7] + " ";
  assertFailure(await verifyBundle(bundle), { index: 7, reason: /not valid base64/ });
});

Deno.test("verifyBundle() names an entry whose prev field was changed", async () => {
  const prev = toHex(hashLeaf(entries[19]));
  const forged = "f".repeat(64);
  const tampered = entries.with(20, edit(entries[20], { from: prev, to: forged }));
  const failure = assertFailure(await verifyBundle(await bundleOf({ entries: tampered })), {
    index: 20,
    reason: /entry 20: prev does not match the leaf hash of entry 19/,
  });
  assert.equal(failure.expected, forged);
  assert.equal(failure.calculated, prev);
  // The first entry must point at no entry.
  const first = entries.with(0, edit(entries[0], { from: "0".repeat(64), to: forged }));
  assertFailure(await verifyBundle(await bundleOf({ entries: first, sizes: [] })), {
    index: 0,
    reason: /prev must be 64 zeros/,
  });
});

Deno.test("verifyBundle() names the position of a deleted entry", async () => {
  const bundle = await bundleOf();
  bundle.entries.splice(30, 1);
  assertFailure(await verifyBundle(bundle), { index: 30, reason: /entry 30: index field is 31/ });
});

Deno.test("verifyBundle() names the first of two swapped entries", async () => {
  const bundle = await bundleOf();
  [bundle.entries[60], bundle.entries[61]] = [bundle.entries[61], bundle.entries[60]];
  assertFailure(await verifyBundle(bundle), { index: 60, reason: /entry 60: index field is 61/ });
});

Deno.test("verifyBundle() names the first missing entry when entries stop short of a checkpoint", async () => {
  const bundle = await bundleOf();
  bundle.entries.length = 80;
  const failure = assertFailure(await verifyBundle(bundle), {
    index: 80,
    reason: /bundle ends after 80 entries but a checkpoint covers 100/,
  });
  assert.ok(failure.checkpoint?.startsWith(`${ORIGIN}\n100\n`));
});

Deno.test("verifyBundle() names the last entry of a checkpoint whose signature was replaced", async () => {
  const bundle = await bundleOf();
  const position = bundle.checkpoints.findIndex((note) => note.startsWith(`${ORIGIN}\n57\n`));
  const [body] = bundle.checkpoints[position].split("\n\n");
  // A real signature by the same key, but over another checkpoint.
  const otherSignature = bundle.checkpoints[(position + 1) % 3].split("\n\n")[1];
  bundle.checkpoints[position] = `${body}\n\n${otherSignature}`;
  const failure = assertFailure(await verifyBundle(bundle), {
    index: 56,
    reason: /checkpoint of size 57: .*invalid signature by warden\.example\/vault\+/,
  });
  assert.equal(failure.checkpoint, bundle.checkpoints[position]);
});

Deno.test("verifyBundle() rejects checkpoints signed by another key or for another origin", async () => {
  const impostor = await generateSigner(ORIGIN);
  const forged = await bundleOf({ sizes: [10, 57, 100] });
  forged.checkpoints[1] = (await bundleOf({ sizes: [57], signer: impostor })).checkpoints[0];
  assertFailure(await verifyBundle(forged), { index: 56, reason: /no signature by a known key/ });

  const range = new CompactRange();
  for (const entry of entries.slice(0, 10)) range.append(hashLeaf(entry));
  const elsewhere = await bundleOf();
  elsewhere.checkpoints.push(
    await signCheckpoint({ origin: "other.example/vault", size: 10, root: range.root() }, signer),
  );
  assertFailure(await verifyBundle(elsewhere), {
    index: 9,
    reason: /origin "other\.example\/vault"/,
  });
});

Deno.test("verifyBundle() names the last entry of a signed checkpoint whose root is wrong", async () => {
  // The chain is rewritten consistently from entry 70 on, so only the
  // signed root of size 100 can tell.
  const rewritten = entries.slice(0, 70);
  let prev = toHex(hashLeaf(rewritten[69]));
  for (let index = 70; index < 100; index++) {
    const bytes = canonicalize({
      index,
      prev,
      tool: "fs.write",
      args: {},
      verdict: "allow",
      latency_ms: 0,
    });
    rewritten.push(bytes);
    prev = toHex(hashLeaf(bytes));
  }
  const bundle = await bundleOf();
  bundle.entries = rewritten.map(toBase64);
  const failure = assertFailure(await verifyBundle(bundle), {
    index: 99,
    reason: /checkpoint of size 100: root does not match the entries/,
  });
  const original = new CompactRange();
  for (const entry of entries) original.append(hashLeaf(entry));
  assert.equal(failure.expected, toHex(original.root()));
  assert.notEqual(failure.calculated, failure.expected);
});

Deno.test("verifyBundle() rejects two validly signed but different checkpoints of one size", async () => {
  const bundle = await bundleOf();
  const liar = await signCheckpoint(
    { origin: ORIGIN, size: 57, root: hashLeaf(new Uint8Array()) },
    signer,
  );
  bundle.checkpoints.push(liar);
  const failure = assertFailure(await verifyBundle(bundle), {
    index: 56,
    reason: /checkpoint of size 57: root does not match/,
  });
  assert.equal(failure.checkpoint, liar);
});

Deno.test("verifyBundle() rejects a key other than the trusted one", async () => {
  const other = await generateSigner(ORIGIN);
  assertFailure(await verifyBundle(await bundleOf(), { key: other.vkey }), {
    index: undefined,
    reason: /not by the trusted key/,
  });
});

Deno.test("verifyBundle() reports malformed bundles without an index", async () => {
  const good = await bundleOf();
  assertFailure(await verifyBundle(null as never), { index: undefined, reason: /not an object/ });
  assertFailure(await verifyBundle({ ...good, entries: "x" as never }), {
    index: undefined,
    reason: /entries/,
  });
  assertFailure(await verifyBundle({ ...good, checkpoints: {} as never }), {
    index: undefined,
    reason: /checkpoints/,
  });
  assertFailure(await verifyBundle({ ...good, origin: "" }), {
    index: undefined,
    reason: /origin/,
  });
  assertFailure(await verifyBundle({ ...good, vkey: "nope" }), {
    index: undefined,
    reason: /verifier key/,
  });
  assertFailure(await verifyBundle({ ...good, checkpoints: [...good.checkpoints, "garbage"] }), {
    index: undefined,
    reason: /checkpoint 3: Cannot open note/,
  });
});

Deno.test("createBundleVerifier() streams raw entries to the same verdicts", async () => {
  const bundle = await bundleOf();
  const verifier = await createBundleVerifier(bundle);
  for (const entry of entries) assert.equal(verifier.push(entry), true);
  const streamed = verifier.finish();
  assert.deepEqual(streamed, await verifyBundle(bundle));

  const failing = await createBundleVerifier(bundle);
  const pushed = entries.map((entry, i) =>
    failing.push(i === 5 ? fromBase64(bundle.entries[6]) : entry)
  );
  // Entry 5 is judged once entry 6 arrives; everything after is ignored.
  assert.deepEqual(pushed.slice(0, 7), [true, true, true, true, true, true, false]);
  assert.ok(pushed.slice(7).every((ok) => !ok));
  assert.equal((failing.finish() as BundleFailure).index, 5);
});

Deno.test("verifyBundle() accepts an empty log and entries beyond the last checkpoint", async () => {
  const empty = await bundleOf({ entries: [], sizes: [0] });
  const result = await verifyBundle(empty);
  assert.ok(result.ok && result.size === 0 && result.root === toHex(new CompactRange().root()));
  const unsigned = await verifyBundle(await bundleOf({ sizes: [10] }));
  assert.ok(unsigned.ok && unsigned.size === 100 && unsigned.signedSize === 10);
});

// `warden verify` against a forger: edited and re-chained entries, dropped
// checkpoints, an appended tail, truncated and malformed files, and a
// rolled-back server audited with a checkpoint kept from before.
import assert from "node:assert/strict";
import { runCli as cli } from "../_helpers/cli.ts";
import { spawnServer } from "../_helpers/server.ts";
import { canonicalize, toBase64, toHex } from "../../src/lib/mod.ts";
import { createLedger, exportBundle, verifyBundleStream } from "../../src/vault/mod.ts";
import { generateSigner, hashLeaf, type Signer, signerToKeyString } from "../../src/merkle/mod.ts";

const ORIGIN = "warden/forgery-test";
const signer = await generateSigner(ORIGIN);

/** An honest export of a 30-entry log with checkpoints at 10, 20 and 30, as parsed JSON. */
async function honestBundle(options: { signer?: Signer; sizes?: number[] } = {}) {
  const kv = await Deno.openKv(":memory:");
  try {
    const ledger = createLedger(kv, { origin: ORIGIN, signer: options.signer ?? signer });
    const sizes = options.sizes ?? [10, 20, 30];
    for (let i = 0; i < 30; i++) {
      await ledger.append({ type: "tool_call", tool: "calculate", n: i, time: "t" });
      if (sizes.includes(i + 1)) await ledger.signCheckpoint();
    }
    let text = "";
    await exportBundle(ledger, {
      vkey: signer.vkey,
      write: (c) => Promise.resolve(void (text += c)),
    });
    return { text, doc: JSON.parse(text) };
  } finally {
    kv.close();
  }
}

function entryOf(b64: string): Record<string, unknown> {
  return JSON.parse(new TextDecoder().decode(Uint8Array.fromBase64(b64)));
}

/** Rewrites entries from `from` on with `edit`, re-linking the chain as a careful forger would. */
function rechain(
  entries: string[],
  from: number,
  edit: (e: Record<string, unknown>, i: number) => void,
): string[] {
  const out = entries.slice(0, from);
  let prev = from === 0 ? "0".repeat(64) : toHex(hashLeaf(Uint8Array.fromBase64(out[from - 1])));
  for (let i = from; i < entries.length; i++) {
    const e = entryOf(entries[i]);
    if (i === from) edit(e, i);
    e.prev = prev;
    const bytes = canonicalize(e);
    out.push(toBase64(bytes));
    prev = toHex(hashLeaf(bytes));
  }
  return out;
}

/** Streams text as the CLI would read a file. */
function streamOf(text: string): ReadableStream<Uint8Array> {
  return new Blob([text]).stream();
}

/** The streaming layout `warden export` writes, from a parsed bundle. */
function layout(doc: Record<string, unknown>): string {
  const { checkpoints, entries, leaves, blobs, ...header } = doc as {
    checkpoints: string[];
    entries: string[];
    leaves?: string[];
    blobs: Record<string, string>;
  };
  // Exactly as writeBundle lays it out: one item per line, no empty lines.
  const items = (xs: string[]) =>
    xs.map((x) => JSON.stringify(x) + "\n").join("").replace(/\n(?=.)/g, ",\n");
  const blobLines = Object.entries(blobs).map(([k, v]) =>
    `${JSON.stringify(k)}:${JSON.stringify(v)}\n`
  )
    .join("").replace(/\n(?=.)/g, ",\n");
  return JSON.stringify(header).slice(0, -1) + ',"checkpoints":[\n' + items(checkpoints) +
    '],"entries":[\n' + items(entries) + (leaves ? '],"leaves":[\n' + items(leaves) : "") +
    '],"blobs":{\n' + blobLines + "}}\n";
}

async function verifyText(text: string, options: Parameters<typeof verifyBundleStream>[1] = {}) {
  return await verifyBundleStream(streamOf(text), options);
}

Deno.test("verify --key: a forgery whose checkpoints were emptied fails at the first unsigned index", async () => {
  const { doc } = await honestBundle();
  doc.entries = rechain(doc.entries, 12, (e) => (e.tool = "delete_everything"));
  doc.leaves = doc.entries.map((b: string) => toHex(hashLeaf(Uint8Array.fromBase64(b))));
  doc.checkpoints = [];
  const forged = await verifyText(layout(doc), { key: signer.vkey });
  assert.equal(forged.ok, false);
  assert.equal(forged.ok ? -1 : forged.index, 0);
  assert.match(
    forged.ok ? "" : forged.reason,
    /entries 0\.\.29 are not covered by any signed checkpoint/,
  );
  // --allow-unsigned-tail accepts a tail after a signed checkpoint, not a log none of which is
  // signed: the forgery still fails, in both layouts.
  for (const text of [layout(doc), JSON.stringify(doc)]) {
    const tail = await verifyText(text, { key: signer.vkey, allowUnsignedTail: true });
    assert.equal(tail.ok, false, JSON.stringify(tail));
    assert.equal(tail.ok ? -1 : tail.index, 0);
    assert.match(
      tail.ok ? "" : tail.reason,
      /entries 0\.\.29 are not covered.*no checkpoint is signed at all.*--allow-unsigned-tail accepts only/,
    );
  }
  // Without a key the bundle is only self-consistent, and says so.
  const unkeyed = await verifyText(layout(doc));
  assert.ok(unkeyed.ok && unkeyed.authenticated === false);
});

Deno.test("verify --key: entries appended after the last checkpoint fail unless --allow-unsigned-tail", async () => {
  const { doc } = await honestBundle({ sizes: [10, 20] });
  const result = await verifyText(layout(doc), { key: signer.vkey });
  assert.equal(result.ok, false);
  assert.equal(result.ok ? -1 : result.index, 20);
  const allowed = await verifyText(layout(doc), { key: signer.vkey, allowUnsignedTail: true });
  assert.ok(allowed.ok, JSON.stringify(allowed));
  assert.match(allowed.warnings?.[0] ?? "", /entries 20\.\.29 are not covered/);
  // A fully signed log passes with the key and is authenticated.
  const honest = await verifyText((await honestBundle()).text, { key: signer.vkey });
  assert.ok(honest.ok && honest.authenticated && honest.warnings === undefined);
});

Deno.test("verify: an edited and re-chained entry is reported at the entry that was changed", async () => {
  const { doc } = await honestBundle();
  for (const at of [0, 3, 10, 14, 19, 29]) {
    const copy = structuredClone(doc);
    copy.entries = rechain(copy.entries, at, (e) => (e.n = 999));
    const result = await verifyText(layout(copy), { key: signer.vkey });
    assert.equal(result.ok, false, `edit at ${at}`);
    assert.equal(result.ok ? -1 : result.index, at, result.ok ? "" : result.reason);
    // The pretty-printed form is verified as a whole document and agrees.
    const whole = await verifyText(JSON.stringify(copy, null, 1), { key: signer.vkey });
    assert.equal(whole.ok ? -1 : whole.index, at);
  }
  // Edited without re-chaining, including the entry before the last one.
  for (const at of [5, 28]) {
    const copy = structuredClone(doc);
    const e = entryOf(copy.entries[at]);
    e.n = 12345;
    copy.entries[at] = toBase64(canonicalize(e));
    const result = await verifyText(layout(copy), { key: signer.vkey });
    assert.equal(result.ok ? -1 : result.index, at, result.ok ? "" : result.reason);
  }
});

Deno.test("verify: truncated and malformed bundles are a clean FAIL, never a stack trace", async () => {
  const { text } = await honestBundle();
  const dir = await Deno.makeTempDir();
  try {
    const cuts = [
      1,
      10,
      60,
      200,
      400,
      Math.floor(text.length / 2),
      text.length - 300,
      text.length - 3,
    ];
    for (const cut of cuts) {
      const result = await verifyText(text.slice(0, cut), { key: signer.vkey });
      assert.equal(result.ok, false, `cut at ${cut}`);
    }
    const malformed = [
      text.replace('"checkpoints":[\n', '"checkpoints":[\n{,\n'),
      text.replace('],"entries":[\n"', '],"entries":[\n7,\n"'),
      text.replace('],"entries":[\n"', '],"entries":[\n[1,2],\n"'),
      text.replace(/"size":\d+/, '"size":"many"'),
      text.replace('"format":"warden-vault-bundle/1"', '"format":1'),
      text.replace('],"blobs":{', '],"blobs":{\nnot a blob'),
      text + "trailing garbage\n",
      "[]",
      "null",
      '{"format":"warden-vault-bundle/1","origin":"o","vkey":"v","size":0,"entries":{},"checkpoints":[]}',
      "\u0000\u0001\u0002",
    ];
    for (const [i, bad] of malformed.entries()) {
      const result = await verifyText(bad, { key: signer.vkey });
      assert.equal(result.ok, false, `malformed case ${i}`);
    }
    // Through the real CLI: exit 1, one FAIL line, no stack trace.
    for (const [i, bad] of [text.slice(0, text.length / 2), malformed[1], malformed[2]].entries()) {
      const path = `${dir}/bad-${i}.json`;
      await Deno.writeTextFile(path, bad);
      const run = await cli(["verify", path, "--key", signer.vkey]);
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, /^FAIL /);
      assert.doesNotMatch(run.stderr, /\n\s+at |Uncaught|error: /);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("verify: unknown top-level fields are refused, in both layouts", async () => {
  const { doc } = await honestBundle();
  const extra = { ...doc, trusted: true };
  for (const text of [layout(extra), JSON.stringify(extra)]) {
    const result = await verifyText(text);
    assert.equal(result.ok, false);
    assert.match(result.ok ? "" : result.reason, /unknown top-level field "trusted"/);
  }
});

Deno.test("verify CLI: without --key says loudly that nothing was authenticated", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/b.json`;
    await Deno.writeTextFile(path, (await honestBundle()).text);
    const plain = await cli(["verify", path]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stderr, /NOTHING WAS AUTHENTICATED/);
    const keyed = await cli(["verify", path, "--key", signer.vkey]);
    assert.equal(keyed.code, 0, keyed.stderr);
    assert.doesNotMatch(keyed.stderr, /NOTHING WAS AUTHENTICATED/);
    const tail = `${dir}/tail.json`;
    await Deno.writeTextFile(tail, (await honestBundle({ sizes: [10] })).text);
    const refused = await cli(["verify", tail, "--key", signer.vkey]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^FAIL at index 10: /);
    const warned = await cli(["verify", tail, "--key", signer.vkey, "--allow-unsigned-tail"]);
    assert.equal(warned.code, 0, warned.stderr);
    assert.match(warned.stderr, /WARNING: entries 10\.\.29 are not covered/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("verify --url honours --checkpoint: a server restarted on an older copy of its KV fails", async () => {
  const dir = await Deno.makeTempDir();
  const invoke = (url: string, i: number) =>
    fetch(`${url}/invoke`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ tool: "calculate", arguments: { expression: `${i}+1` } }),
    }).then((r) => r.text());
  try {
    await Deno.mkdir(`${dir}/live`);
    await Deno.mkdir(`${dir}/old`);
    await Deno.writeTextFile(`${dir}/signing.key`, await signerToKeyString(signer), {
      mode: 0o600,
    });
    const args = [
      "--checkpoint-interval",
      "60",
      "--origin",
      ORIGIN,
      "--signing-key",
      `${dir}/signing.key`,
    ];
    let server = await spawnServer(["--kv", `${dir}/live/w.db`, ...args]);
    for (let i = 0; i < 5; i++) await invoke(server.url, i);
    await server.stop();
    await Deno.copyFile(`${dir}/live/w.db`, `${dir}/old/w.db`);
    server = await spawnServer(["--kv", `${dir}/live/w.db`, ...args]);
    for (let i = 0; i < 5; i++) await invoke(server.url, i);
    await new Promise((r) => setTimeout(r, 300));
    const held = await (await fetch(`${server.url}/vault/checkpoint`)).text();
    const vkey = (await (await fetch(`${server.url}/vault/key`)).text()).trim();
    await server.stop();
    await Deno.writeTextFile(`${dir}/held.note`, held);
    // The older copy, served elsewhere (its mirror is not beside it), is self-consistent…
    server = await spawnServer(["--kv", `${dir}/old/w.db`, ...args]);
    try {
      for (let i = 0; i < 7; i++) await invoke(server.url, 100 + i);
      await new Promise((r) => setTimeout(r, 300));
      const alone = await cli(["verify", "--url", server.url, "--key", vkey]);
      assert.equal(alone.code, 0, alone.stderr);
      // …but not with the checkpoint an auditor kept from before.
      const audited = await cli([
        "verify",
        "--url",
        server.url,
        "--key",
        vkey,
        "--checkpoint",
        `${dir}/held.note`,
      ]);
      assert.equal(audited.code, 1, audited.stdout);
      assert.match(audited.stderr, /^FAIL at index /);
    } finally {
      await server.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

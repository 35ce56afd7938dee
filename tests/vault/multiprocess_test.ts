import assert from "node:assert/strict";
import { createLedger, loadVaultIdentity } from "../../src/vault/mod.ts";
import { fromBase64, fromHex } from "../../src/lib/mod.ts";
import {
  openCheckpoint,
  verifierFromVkey,
  verifyConsistency,
  verifyInclusion,
} from "../../src/merkle/mod.ts";
import { spawnServer, UNTHROTTLED_POLICY } from "../_helpers/server.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** These tests load the vault on purpose; F5's per-principal limits would (rightly) throttle them. */
async function unthrottledPolicyFile(dir: string): Promise<string> {
  const path = `${dir}/policy.json`;
  await Deno.writeTextFile(path, JSON.stringify(UNTHROTTLED_POLICY));
  return path;
}

async function invoke(base: string, i: number): Promise<{ index: number; leaf_hash: string }> {
  const res = await fetch(`${base}/invoke`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ tool: "calculate", arguments: { expression: `${i}+0` } }),
  });
  const body = await res.json();
  const vault = body._constitutional?.vault;
  if (!vault || body.policy_verdict !== "SEAL") {
    throw new Error(`not sealed: ${JSON.stringify(body)}`);
  }
  return vault;
}

/** Runs `count` calls against `base` with `parallel` calls in flight. */
async function drive(base: string, count: number, parallel: number) {
  const receipts: { index: number; leaf_hash: string }[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < count) {
      const i = next++;
      receipts.push(await invoke(base, i));
    }
  }));
  return receipts;
}

Deno.test("vault concurrency: two processes each sealing 2,000 calls into one KV file → 4,000 entries, no gap, no duplicate, every proof verifies", async () => {
  const dir = await Deno.makeTempDir();
  const kvPath = `${dir}/shared.db`;
  const policy = await unthrottledPolicyFile(dir);
  // The first process creates the vault identity; the second then finds it in KV.
  const a = await spawnServer(["--kv", kvPath, "--policy", policy]);
  const b = await spawnServer(["--kv", kvPath, "--policy", policy]);
  try {
    const [ra, rb] = await Promise.all([drive(a.url, 2000, 16), drive(b.url, 2000, 16)]);
    const all = [...ra, ...rb];
    const indices = all.map((r) => r.index).sort((x, y) => x - y);
    assert.equal(new Set(indices).size, 4000, "no duplicate index");
    // Each process also sealed its policy at start: 4,002 entries, the calls fill every other slot.
    const SIZE = 4002;
    await a.stop();
    await b.stop();

    const kv = await Deno.openKv(kvPath);
    try {
      // The key is in its own file beside the KV, not in the KV.
      const identity = await loadVaultIdentity(kv, {
        defaultOrigin: "unused",
        create: false,
        keyString: await Deno.readTextFile(`${kvPath}.signing-key`),
      });
      const ledger = createLedger(kv, { origin: identity.origin, signer: identity.signer });
      const head = await ledger.head();
      assert.equal(head.size, SIZE);
      const root = fromBase64(head.root);
      const byIndex = new Map(all.map((r) => [r.index, r.leaf_hash]));
      let prev = "0".repeat(64);
      let others = 0;
      for await (const e of ledger.entries(0, SIZE)) {
        const fields = JSON.parse(new TextDecoder().decode(e.bytes));
        if (byIndex.has(e.index)) {
          assert.equal(e.leafHash, byIndex.get(e.index), `acknowledged leaf ${e.index}`);
        } else {
          assert.equal(fields.type, "policy_loaded", `entry ${e.index} is a call or a policy load`);
          others++;
        }
        assert.equal(fields.prev, prev);
        prev = e.leafHash;
        const proof = await ledger.inclusionProof(e.index, SIZE);
        verifyInclusion({ index: e.index, size: SIZE, leafHash: fromHex(e.leafHash), proof, root });
      }
      assert.equal(others, 2, "no gap: every index is a call or one of the two policy loads");
      // Both processes signed checkpoints on shutdown; every one is consistent with the final head.
      const verifier = await verifierFromVkey(identity.signer.vkey);
      let count = 0;
      for await (const cp of ledger.checkpoints()) {
        const { checkpoint } = await openCheckpoint(cp.note, [verifier]);
        const proof = await ledger.consistencyProof(checkpoint.size, SIZE);
        verifyConsistency({
          size1: checkpoint.size,
          size2: SIZE,
          root1: checkpoint.root,
          root2: root,
          proof,
        });
        count++;
      }
      assert.ok(count >= 1);
    } finally {
      kv.close();
    }
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "export", "--kv", kvPath, "--out", `${dir}/b.json`],
    }).output();
    assert.equal(out.code, 0);
    const verify = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "verify", `${dir}/b.json`],
    }).output();
    assert.equal(verify.code, 0, new TextDecoder().decode(verify.stderr));
    assert.match(new TextDecoder().decode(verify.stdout), /^OK: 4002 entries/);
  } finally {
    await a.stop();
    await b.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("vault crash: kill -9 mid-stream; after restart every acknowledged entry is present and the tree is consistent with every checkpoint published before the crash", async () => {
  const dir = await Deno.makeTempDir();
  const kvPath = `${dir}/crash.db`;
  const policy = await unthrottledPolicyFile(dir);
  let server = await spawnServer([
    "--kv",
    kvPath,
    "--checkpoint-interval",
    "100",
    "--policy",
    policy,
  ]);
  const acked: { index: number; leaf_hash: string }[] = [];
  const published = new Set<string>();
  let stop = false;
  const port = new URL(server.url).port;
  try {
    const base = server.url;
    const workers = Array.from({ length: 8 }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        try {
          acked.push(await invoke(base, w * 100000 + i));
        } catch {
          return; // the server died under this request: it was never acknowledged
        }
      }
    });
    const watcher = (async () => {
      while (!stop) {
        try {
          const res = await fetch(`${base}/vault/checkpoint`);
          if (res.ok) published.add(await res.text());
          else await res.body?.cancel();
        } catch {
          return;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    // Wall time on purpose: the server checkpoints (and the sampler above reads) for a while.
    await new Promise((r) => setTimeout(r, 1500));
    const status = await server.stop("SIGKILL");
    assert.equal(status.signal, "SIGKILL");
    stop = true;
    await Promise.all([...workers, watcher]);
    assert.ok(acked.length > 50, `only ${acked.length} calls were acknowledged`);
    assert.ok(published.size > 0, "checkpoints were published before the crash");

    server = await spawnServer(["--kv", kvPath, "--port", port, "--policy", policy]);
    for (const r of acked) {
      const res = await fetch(`${server.url}/vault/entries/${r.index}`);
      assert.equal(res.status, 200, `acknowledged entry ${r.index} survived`);
      assert.equal((await res.json()).leaf_hash, r.leaf_hash);
    }
    const head = await (await fetch(`${server.url}/vault/head`)).json();
    const verifier = await verifierFromVkey(
      (await (await fetch(`${server.url}/vault/key`)).text()).trim(),
    );
    for (const note of published) {
      const { checkpoint } = await openCheckpoint(note, [verifier]);
      const con = await (await fetch(
        `${server.url}/vault/proof/consistency?from=${checkpoint.size}&to=${head.size}`,
      )).json();
      verifyConsistency({
        size1: checkpoint.size,
        size2: head.size,
        root1: checkpoint.root,
        root2: fromBase64(head.root),
        proof: con.proof.map(fromBase64),
      });
    }
    const audit = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "verify", "--url", server.url],
    }).output();
    assert.equal(audit.code, 0, new TextDecoder().decode(audit.stderr));
  } finally {
    stop = true;
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

import assert from "node:assert/strict";
import { connectStreamable } from "../_helpers/client.ts";
import { startServer } from "../_helpers/server.ts";
import { digestJson, fromBase64, toHex } from "../../src/lib/mod.ts";
import {
  hashLeaf,
  openCheckpoint,
  parseCheckpoint,
  splitNote,
  verifierFromVkey,
  verifyConsistency,
  verifyInclusion,
} from "../../src/merkle/mod.ts";
import { pollUntil } from "../_helpers/wait.ts";

function entryAt(bytes: Uint8Array) {
  return JSON.parse(new TextDecoder().decode(bytes));
}

Deno.test("sealing: every MCP tools/call appends one entry and the result carries _meta warden/vault", async () => {
  await using server = await startServer();
  const { client, transport } = await connectStreamable(server.url);
  const args = { expression: "6*7" };
  const ok = await client.callTool({ name: "calculate", arguments: args });
  const meta = ok._meta?.["warden/vault"] as { index: number; leaf_hash: string };
  // Entry 0 is the policy sealed at start.
  assert.equal(meta.index, 1);
  assert.equal(entryAt((await server.app.ledger.entry(0))!.bytes).type, "policy_loaded");
  const stored = (await server.app.ledger.entry(meta.index))!;
  assert.equal(stored.leafHash, meta.leaf_hash);
  assert.equal(toHex(hashLeaf(stored.bytes)), meta.leaf_hash);
  const entry = entryAt(stored.bytes);
  assert.equal(entry.type, "tool_call");
  assert.equal(entry.tool, "calculate");
  assert.equal(entry.session, transport.sessionId);
  assert.equal(entry.principal, "anonymous");
  assert.equal(entry.transport, "mcp");
  assert.equal(entry.outcome, "ok");
  assert.equal(entry.verdict, "SEAL");
  assert.equal(entry.floors.F1, 1000);
  assert.equal(entry.policy_sha256, server.app.governance.policyHash);
  assert.equal(entry.args_sha256, digestJson(args));
  assert.equal(typeof entry.latency_us, "number");
  assert.ok(!JSON.stringify(entry).includes("6*7"), "arguments themselves are not stored");

  const err = await client.callTool({ name: "calculate", arguments: { expression: "1/0" } });
  const errMeta = err._meta?.["warden/vault"] as { index: number };
  assert.equal(
    entryAt((await server.app.ledger.entry(errMeta.index))!.bytes).outcome,
    "tool_error",
  );

  await assert.rejects(client.callTool({ name: "nope", arguments: {} }));
  const unknown = entryAt((await server.app.ledger.entry(3))!.bytes);
  assert.equal(unknown.tool, "nope");
  assert.equal(unknown.outcome, "not_executed");
  assert.equal(unknown.verdict, "VOID");
  assert.equal((await server.app.ledger.head()).size, 4);
  await client.close();
});

Deno.test("sealing: REST /invoke is sealed too and says where", async () => {
  await using server = await startServer();
  const res = await fetch(`${server.url}/invoke`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ tool: "generate_uuid", arguments: { count: 2 } }),
  });
  const body = await res.json();
  assert.equal(body._constitutional.vault.index, 1);
  const entry = entryAt((await server.app.ledger.entry(1))!.bytes);
  assert.equal(entry.transport, "rest");
  assert.equal(entry.session, null);
  assert.equal(
    entry.result_sha256,
    digestJson({ is_error: false, text: body.message, data: body.data }),
  );
});

Deno.test("sealing: --sealing off records no calls (only the policy load)", async () => {
  await using server = await startServer({ args: ["--sealing", "off"] });
  const res = await fetch(`${server.url}/invoke`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ tool: "calculate", arguments: { expression: "1+1" } }),
  });
  assert.equal((await res.json())._constitutional.vault, null);
  assert.equal((await server.app.ledger.head()).size, 1);
});

Deno.test("vault HTTP: key, checkpoint, entries and proofs let a client check the log without trusting the server", async () => {
  await using server = await startServer({ args: ["--checkpoint-interval", "100"] });
  const invoke = (i: number) =>
    fetch(`${server.url}/invoke`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ tool: "calculate", arguments: { expression: `${i}+1` } }),
    }).then((r) => r.json());
  // Entry 0 is the policy load; four calls make a log of five.
  for (let i = 0; i < 4; i++) await invoke(i);
  const vkey = (await (await fetch(`${server.url}/vault/key`)).text()).trim();
  assert.match(vkey, /^warden\/localhost\+[0-9a-f]{8}\+[A-Za-z0-9+/]+=*$/);
  const verifier = await verifierFromVkey(vkey);
  // A checkpoint is signed within the interval: read it until it covers the log.
  const checkpointOf = async () => {
    const res = await fetch(`${server.url}/vault/checkpoint`);
    if (!res.ok) {
      await res.body?.cancel();
      return undefined; // none signed yet
    }
    return (await openCheckpoint(await res.text(), [verifier])).checkpoint;
  };
  const cp1 = await pollUntil(checkpointOf, (cp) => (cp?.size ?? 0) >= 5);
  assert.ok(cp1, "a checkpoint is signed");
  assert.equal(cp1.size, 5);

  for (let i = 4; i < 11; i++) await invoke(i);
  const cp2 = await pollUntil(checkpointOf, (cp) => (cp?.size ?? 0) >= 12);
  assert.ok(cp2);
  assert.equal(cp2.size, 12);

  const entry = await (await fetch(`${server.url}/vault/entries/3`)).json();
  const leaf = hashLeaf(fromBase64(entry.data));
  assert.equal(toHex(leaf), entry.leaf_hash);
  const inc = await (await fetch(`${server.url}/vault/proof/inclusion?index=3&size=12`)).json();
  verifyInclusion({
    index: 3,
    size: 12,
    leafHash: leaf,
    proof: inc.proof.map(fromBase64),
    root: cp2.root,
  });
  const con = await (await fetch(`${server.url}/vault/proof/consistency?from=5&to=12`)).json();
  verifyConsistency({
    size1: 5,
    size2: 12,
    root1: cp1.root,
    root2: cp2.root,
    proof: con.proof.map(fromBase64),
  });
  const list = await (await fetch(`${server.url}/vault/checkpoints`)).json();
  // Other sizes may have been signed mid-way (the interval is 100 ms); 5 and 12 must be there.
  const sizes: number[] = list.checkpoints.map((c: { size: number }) => c.size);
  assert.ok(sizes.includes(5) && sizes.includes(12), `sizes ${sizes}`);
  assert.deepEqual(sizes, [...sizes].sort((a, b) => a - b));
  assert.equal(parseCheckpoint(splitNote(list.checkpoints.at(-1).note).text).size, 12);
  const page = await (await fetch(`${server.url}/vault/entries?start=10&limit=5`)).json();
  assert.deepEqual(page.entries.map((e: { index: number }) => e.index), [10, 11]);
});

Deno.test("vault HTTP: bad parameters get 400 with a reason, out of range 404", async () => {
  await using server = await startServer();
  await fetch(`${server.url}/invoke`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ tool: "calculate", arguments: { expression: "1" } }),
  }).then((r) => r.text());
  const cases: [string, number, RegExp][] = [
    ["/vault/entries/abc", 400, /non-negative integer/],
    ["/vault/entries/-1", 400, /non-negative integer/],
    ["/vault/entries/99999999999999999999", 400, /non-negative integer/],
    ["/vault/entries/7", 404, /no entry 7/],
    ["/vault/proof/inclusion", 400, /"index" is required/],
    ["/vault/proof/inclusion?index=x&size=1", 400, /non-negative integer/],
    ["/vault/proof/inclusion?index=0&size=3", 404, /exceeds the log size 2/],
    ["/vault/proof/inclusion?index=1&size=1", 404, /not in a tree of size 1/],
    ["/vault/proof/consistency?from=0&to=1", 400, /at least 1/],
    ["/vault/proof/consistency?from=2&to=1", 400, /must not exceed/],
    ["/vault/proof/consistency?from=1&to=5", 404, /exceeds the log size/],
    ["/vault/proof/consistency?from=1", 400, /"to" is required/],
    ["/vault/blobs/zz", 400, /64 hex/],
  ];
  for (const [path, status, reason] of cases) {
    const res = await fetch(`${server.url}${path}`);
    const body = await res.json();
    assert.equal(res.status, status, path);
    assert.match(body.error.message, reason, path);
  }
});

Deno.test("vault HTTP: /vault/checkpoint is 404 until something is sealed", async () => {
  await using server = await startServer();
  const res = await fetch(`${server.url}/vault/checkpoint`);
  assert.equal(res.status, 404);
  await res.body?.cancel();
});

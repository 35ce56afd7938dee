// deno-lint-ignore-file no-explicit-any -- envelopes and vault entries are probed field by field
/**
 * Racing seal_vault (issue 9 §3): concurrent calls for one governed session, from two MCP
 * sessions of one process and from two processes on one KV file. Exactly one seals; every other
 * answers that the session is already sealed, naming the winner's vault index; the vault holds
 * one session_seal entry.
 */
import assert from "node:assert/strict";
import { runCli as cli } from "../_helpers/cli.ts";
import { type Client, connectStreamable, envelopeOf } from "../_helpers/client.ts";
import { sealedEntries, spawnServer, startServer } from "../_helpers/server.ts";

const TOKEN = "a-test-token-of-24-chars";
const auth = { headers: { authorization: `Bearer ${TOKEN}` } };

/** Walks a governed session up to apex_judge; returns its id and governance token. */
async function judgedSession(client: Client): Promise<{ sessionId: string; token: string }> {
  const call = async (name: string, args: Record<string, unknown>) => {
    const env = envelopeOf(await client.callTool({ name, arguments: args }));
    assert.equal(env.status, "OK", `${name}: ${env.message}`);
    return env;
  };
  const sessionId = (await call("anchor_session", { query: "Publish the release notes" })).data
    .session_id;
  await call("reason_mind", {
    session_id: sessionId,
    query: "The release notes were reviewed",
    grounding: [sessionId],
  });
  await call("simulate_heart", { session_id: sessionId, query: "publish the release notes" });
  await call("critique_thought", { session_id: sessionId, plan: { steps: ["publish notes"] } });
  const judged = await call("apex_judge", { session_id: sessionId, query: "ready?" });
  assert.ok(judged.data.governance_token, judged.message);
  return { sessionId, token: judged.data.governance_token };
}

/** Fires every seal at once; returns the envelopes. */
async function race(clients: Client[], sessionId: string, token: string, each: number) {
  const calls = clients.flatMap((client) =>
    Array.from({ length: each }, (_, i) =>
      client.callTool({
        name: "seal_vault",
        arguments: { session_id: sessionId, summary: `seal ${i}`, governance_token: token },
      }).then(envelopeOf))
  );
  return await Promise.all(calls);
}

function assertOneSealed(envs: any[]): number {
  const won = envs.filter((e) => e.status === "OK");
  // A seal is not a warning: the governance token it carries is no secret (F6).
  for (const e of envs) assert.notEqual(e.policy_verdict, "PARTIAL", e.message);
  assert.equal(won.length, 1, envs.map((e) => e.message).join("\n"));
  const index = won[0].data.index;
  for (const lost of envs.filter((e) => e.status !== "OK")) {
    assert.equal(lost.status, "ERROR");
    assert.match(lost.message, new RegExp(`already sealed at vault index ${index} `));
  }
  return index;
}

Deno.test("seal_vault race: of six concurrent calls from two MCP sessions, one seals and the others name its index", async () => {
  await using server = await startServer();
  const a = (await connectStreamable(server.url)).client;
  const b = (await connectStreamable(server.url)).client;
  const { sessionId, token } = await judgedSession(a);
  const index = assertOneSealed(await race([a, b], sessionId, token, 3));
  const seals = await sealedEntries(server, "session_seal");
  assert.deepEqual(seals.map((e) => [e.session_id, e.index]), [[sessionId, index]]);
  // Every call was still governed and recorded as a call.
  const calls = (await sealedEntries(server, "tool_call")).filter((e) => e.tool === "seal_vault");
  assert.equal(calls.length, 6);
  await a.close();
  await b.close();
});

Deno.test("seal_vault race: two processes on one KV file seal a session once", async () => {
  const dir = await Deno.makeTempDir();
  const common = ["--kv", `${dir}/shared.db`, "--token", TOKEN];
  const p1 = await spawnServer(common);
  const p2 = await spawnServer(common);
  try {
    const a = (await connectStreamable(p1.url, auth)).client;
    const b = (await connectStreamable(p2.url, auth)).client;
    // Three sessions, each judged in one process and sealed from both. SQLite's write lock
    // between the processes ("database is locked") once made seal_vault fault in the session
    // update or the checkpoint signature.
    const sealed: [string, number][] = [];
    for (const judge of [a, b, a]) {
      const { sessionId, token } = await judgedSession(judge);
      sealed.push([sessionId, assertOneSealed(await race([a, b], sessionId, token, 3))]);
    }
    await a.close();
    await b.close();
    await p1.stop();
    await p2.stop();
    const out = await cli(["export", "--kv", `${dir}/shared.db`, "--out", `${dir}/bundle.json`]);
    assert.equal(out.code, 0, out.stderr);
    const bundle = JSON.parse(await Deno.readTextFile(`${dir}/bundle.json`));
    const seals = bundle.entries.map((e: string) =>
      JSON.parse(new TextDecoder().decode(Uint8Array.fromBase64(e)))
    ).filter((e: any) => e.type === "session_seal");
    assert.deepEqual(seals.map((e: any) => [e.session_id, e.index]), sealed);
  } finally {
    await p1.stop();
    await p2.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("seal_vault: a call whose claim was taken over cannot seal a second time when it resumes; its answer names the seal and heals the record", async () => {
  await using server = await startServer();
  const { client } = await connectStreamable(server.url);
  const { sessionId, token } = await judgedSession(client);
  const seal = (summary: string) =>
    client.callTool({
      name: "seal_vault",
      arguments: { session_id: sessionId, summary, governance_token: token },
    }).then(envelopeOf);
  const won = await seal("first");
  assert.equal(won.status, "OK", won.message);
  // A call that claimed the session before, stalled past the claim's 60 s and resumes now sees
  // the record as it was then: not sealed, its own claim gone. The same state as a process
  // that died between the vault's append and the record's update.
  const key = ["gov_session", sessionId];
  const record = (await server.kv.get<Record<string, unknown>>(key)).value!;
  const { sealed: _sealed, sealing: _sealing, ...unsealed } = record;
  await server.kv.set(key, { ...unsealed, sealing: { claim: "old", atMs: Date.now() - 61_000 } });
  const late = await seal("second");
  assert.equal(late.status, "ERROR", late.message);
  assert.match(
    late.message,
    new RegExp(`already sealed at vault index ${won.data.index} .*by another seal_vault call`),
  );
  const seals = await sealedEntries(server, "session_seal");
  assert.deepEqual(seals.map((e) => e.index), [won.data.index], "one session_seal");
  // The record says sealed again, at the vault's index.
  const healed = (await server.kv.get<any>(key)).value;
  assert.equal(healed.sealed.index, won.data.index);
  assert.equal(healed.sealed.leafHash, won.data.leaf_hash);
  await client.close();
});

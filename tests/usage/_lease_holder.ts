/**
 * A limiter in a process of its own, for the crash test of
 * limiter_lease_test.ts: it opens the KV file it is given, makes `warm`
 * sequential calls (each released, so that it comes to hold spare slots and
 * rate tokens), admits `hold` more that it never releases, prints what it
 * admitted as one JSON line, and waits to be killed.
 *
 * Usage: deno run -A _lease_holder.ts <kv path> <policy JSON> <leaseMs> <warm> <hold>
 */
import { parsePolicy } from "../../src/governance/mod.ts";
import { createKvLimiter } from "../../src/usage/mod.ts";

const [path, policyJson, leaseMs, warm, hold] = Deno.args;
const kv = await Deno.openKv(path);
const limiter = createKvLimiter(kv, {
  policy: parsePolicy(JSON.parse(policyJson)),
  leaseMs: Number(leaseMs),
});
const subject = { principal: "alice", tool: "t" };
let admitted = 0;
for (let i = 0; i < Number(warm); i++) {
  const a = await limiter.acquire(subject);
  if (a.admitted) admitted++;
  await a.release();
}
const held = [];
for (let i = 0; i < Number(hold); i++) {
  const a = await limiter.acquire(subject);
  if (a.admitted) {
    admitted++;
    held.push(a);
  }
}
await limiter.snapshot(subject);
console.log(JSON.stringify({ admitted, held: held.length }));
// Killed here (SIGKILL): nothing it holds is given back.
setInterval(() => {}, 60_000);

/**
 * The physical floor of "acknowledged only after a durable commit": serial
 * one-set `kv.atomic()` commits on a fresh KV file (SQLite WAL + fsync), timed
 * one by one. Prints one JSON line: {commits, p50_ms, p99_ms}.
 *
 * Usage: deno run -A tests/bench/_kv_commit.ts <dir> [durationMs]
 */
const dir = Deno.args[0] ?? Deno.cwd();
const durationMs = Number(Deno.args[1] ?? 1000);
const path = `${dir}/commit-${crypto.randomUUID().slice(0, 8)}.db`;
const kv = await Deno.openKv(path);
const value = { payload: "x".repeat(256) };
const times: number[] = [];
const end = performance.now() + durationMs;
let i = 0;
while (performance.now() < end) {
  const t = performance.now();
  await kv.atomic().set(["bench", i++], value).commit();
  times.push(performance.now() - t);
}
kv.close();
for (const suffix of ["", "-wal", "-shm"]) await Deno.remove(path + suffix).catch(() => {});
times.sort((a, b) => a - b);
const pct = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))];
console.log(JSON.stringify({ commits: times.length, p50_ms: pct(0.5), p99_ms: pct(0.99) }));

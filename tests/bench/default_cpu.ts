/**
 * CPU per call of the default path, not throughput (issue 13): starts Warden from each ROOT given
 * (checkouts of different commits; the default configuration with F5's limits lifted, `MODE`
 * sse or json responses), opens one 2025 session on each, and in interleaved rounds sends CALLS
 * `calculate` calls C at a time, reading the server's utime+stime from /proc around each round.
 * CPU time per call moves far less than req/s on a shared machine, so it is the figure to compare
 * two commits by in the same run. Prints the median per root and the wall time per call slot.
 *
 * `deno run -A tests/bench/default_cpu.ts BEFORE_ROOT AFTER_ROOT` (Warden runs with `deno task
 * start`'s V8 flags; a root `ROOT#FLAGS` with those V8 flags instead) — env `MODE` (sse), `CALLS`
 * (3000), `ROUNDS` (3), `C` (16), `PROF` (a directory: run each Warden under `--cpu-prof` there).
 * Linux only (/proc).
 */
import { cpuMs, listening } from "./_cpu.ts";
import { WARDEN_V8_FLAGS } from "./_launch.ts";

const MODE = Deno.env.get("MODE") ?? "sse";
const CALLS = Number(Deno.env.get("CALLS") ?? 3000);
const ROUNDS = Number(Deno.env.get("ROUNDS") ?? 3);
const C = Number(Deno.env.get("C") ?? 16);
const PROF = Deno.env.get("PROF");
const ACCEPT = "application/json, text/event-stream";
const VERSION = "2025-11-25";

const dir = Deno.makeTempDirSync({ prefix: "warden_cpu_" });
Deno.writeTextFileSync(
  `${dir}/policy.json`,
  JSON.stringify({
    rate_limits: {
      per_principal_per_minute: 0,
      per_tool_per_minute: 0,
      max_concurrent_per_principal: 0,
    },
  }),
);

interface Server {
  readonly root: string;
  readonly child: Deno.ChildProcess;
  readonly url: string;
  headers: Record<string, string>;
  readonly cpu: number[];
  readonly wall: number[];
}

async function start(spec: string, i: number): Promise<Server> {
  // `ROOT#FLAGS` runs that checkout with V8 flags (to weigh a flag on the same commit).
  const [root, v8] = spec.split("#");
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      ...(v8 ? [`--v8-flags=${v8}`] : WARDEN_V8_FLAGS),
      ...(PROF ? ["--cpu-prof", "--cpu-prof-dir", PROF] : []),
      `${root}/main.ts`,
      "serve",
      "--port",
      "0",
      "--kv",
      `${dir}/kv${i}.db`,
      "--response-mode",
      MODE,
      "--policy",
      `${dir}/policy.json`,
    ],
    stdout: "piped",
    stderr: "piped",
    cwd: dir,
  }).spawn();
  const url = await listening(child);
  return { root: spec, child, url, headers: {}, cpu: [], wall: [] };
}

async function openSession(s: Server): Promise<void> {
  const init = await fetch(`${s.url}/mcp`, {
    method: "POST",
    headers: { accept: ACCEPT, "content-type": "application/json" },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: {
        protocolVersion: VERSION,
        capabilities: {},
        clientInfo: { name: "cpu", version: "1" },
      },
    }),
  });
  await init.text();
  s.headers = {
    accept: ACCEPT,
    "content-type": "application/json",
    "mcp-session-id": init.headers.get("mcp-session-id")!,
    "mcp-protocol-version": VERSION,
  };
  const ack = await fetch(`${s.url}/mcp`, {
    method: "POST",
    headers: s.headers,
    body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }),
  });
  await ack.text();
}

async function load(s: Server, n: number): Promise<void> {
  let id = 10;
  let next = 0;
  let wrong = 0;
  await Promise.all(Array.from({ length: C }, async () => {
    while (next++ < n) {
      const res = await fetch(`${s.url}/mcp`, {
        method: "POST",
        headers: s.headers,
        body: JSON.stringify({
          jsonrpc: "2.0",
          id: id++,
          method: "tools/call",
          params: { name: "calculate", arguments: { expression: "6*7" } },
        }),
      });
      if (!(await res.text()).includes('"result":42')) wrong++;
    }
  }));
  if (wrong > 0) throw new Error(`${s.root}: ${wrong} calls did not answer 42`);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const servers: Server[] = [];
for (const [i, root] of Deno.args.entries()) servers.push(await start(root, i));
for (const s of servers) {
  await openSession(s);
  await load(s, 500); // warm-up
}
for (let r = 0; r < ROUNDS; r++) {
  for (const s of servers) {
    const before = cpuMs(s.child.pid);
    const started = performance.now();
    await load(s, CALLS);
    s.wall.push((performance.now() - started) / CALLS * C);
    s.cpu.push((cpuMs(s.child.pid) - before) / CALLS);
  }
}
const out: Record<string, unknown> = {};
for (const s of servers) {
  out[s.root] = {
    mode: MODE,
    concurrency: C,
    median_cpu_ms_per_call: Number(median(s.cpu).toFixed(3)),
    rounds: s.cpu.map((x) => Number(x.toFixed(3))),
    median_wall_ms_per_call_slot: Number(median(s.wall).toFixed(3)),
  };
}
console.log(JSON.stringify(out, null, 2));
for (const s of servers) s.child.kill(PROF ? "SIGINT" : "SIGKILL");
await Promise.all(servers.map((s) => s.child.status));
Deno.exit(0);

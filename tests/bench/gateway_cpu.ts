/**
 * CPU per routed call, not throughput: starts server-everything, Warden as
 * pure routing (every floor off, `--sealing off`, `--response-mode json` unless `CPU_MODE`) and
 * the naive SDK relay and a raw byte-forwarding proxy (`_raw_proxy.ts`, the floor
 * of one extra hop), then in interleaved rounds sends N sequential (c=1) and
 * N concurrent (c=32) `echo` calls through each on a 2025 session and reads
 * the process's utime+stime from /proc before and after. On a shared machine
 * CPU time per call moves far less than latency or req/s, so it is the figure
 * to compare a change by; the medians are printed as JSON, with each target's
 * c=1 p50 latency per round and server-everything itself (`everything-direct`)
 * as the floor both hops are measured against.
 *
 * `deno run -A tests/bench/gateway_cpu.ts [BEFORE_ROOT]` — BEFORE_ROOT, a
 * checkout of another commit, adds its Warden to the same rounds. Env:
 * `CPU_CALLS` (default 1000), `CPU_ROUNDS` (default 3), `CPU_MODE` (Warden's
 * `--response-mode`, default json), `CPU_PROF_DIR`
 * (run Warden under `--cpu-prof` there). Linux only (/proc).
 */
import { startEverything } from "../_helpers/upstreams.ts";
import { initializeRaw } from "../_helpers/raw.ts";
import { cpuMs, listening } from "./_cpu.ts";
import { WARDEN_V8_FLAGS } from "./_launch.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const CALLS = Number(Deno.env.get("CPU_CALLS") ?? 1000);
const ROUNDS = Number(Deno.env.get("CPU_ROUNDS") ?? 3);
const PROF = Deno.env.get("CPU_PROF_DIR");
const MODE = Deno.env.get("CPU_MODE") ?? "json";
const ACCEPT = "application/json, text/event-stream";

async function session(url: string): Promise<Record<string, string>> {
  const { sessionId } = await initializeRaw(url, "2025-11-25");
  return {
    accept: ACCEPT,
    "content-type": "application/json",
    "mcp-session-id": sessionId,
    "mcp-protocol-version": "2025-11-25",
  };
}

interface Target {
  name: string;
  child: Deno.ChildProcess;
  tool: string;
  url: string;
  headers: Record<string, string>;
}

async function calls(t: Target, n: number, concurrency: number, lat?: number[]): Promise<void> {
  let sent = 0;
  let id = 10;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (sent < n) {
      sent++;
      const t0 = performance.now();
      const res = await fetch(`${t.url}/mcp`, {
        method: "POST",
        headers: t.headers,
        body: JSON.stringify({
          jsonrpc: "2.0",
          id: id++,
          method: "tools/call",
          params: { name: t.tool, arguments: { message: "hi" } },
        }),
      });
      const text = await res.text();
      if (!text.includes("Echo: hi")) throw new Error(`${t.name}: ${text.slice(0, 300)}`);
      lat?.push(performance.now() - t0);
    }
  }));
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

const dir = await Deno.makeTempDir({ prefix: "warden-gateway-cpu-" });
const up = await startEverything("streamableHttp");
const spawned: Deno.ChildProcess[] = [];
const spawn = (args: string[], flags: string[] = []) => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, ...(args[0].endsWith("main.ts") ? WARDEN_V8_FLAGS : []), "-A", ...args],
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", WARDEN_LOG_LEVEL: "warn" },
  }).spawn();
  spawned.push(child);
  return child;
};
try {
  Deno.writeTextFileSync(
    `${dir}/upstreams.json`,
    JSON.stringify([{ name: "ev", transport: "streamable-http", url: up.url }]),
  );
  const off = Object.fromEntries(
    Array.from({ length: 13 }, (_, i) => [`F${i + 1}`, { mode: "off" }]),
  );
  Deno.writeTextFileSync(
    `${dir}/floors-off.json`,
    JSON.stringify({
      rate_limits: {
        per_principal_per_minute: 0,
        per_tool_per_minute: 0,
        max_concurrent_per_principal: 0,
      },
      floors: off,
    }),
  );
  const warden = (root: string, kv: string, flags: string[] = []) =>
    spawn([
      `${root}main.ts`,
      "serve",
      "--port",
      "0",
      "--kv",
      kv,
      "--upstreams",
      "upstreams.json",
      "--policy",
      "floors-off.json",
      "--sealing",
      "off",
      "--response-mode",
      MODE,
    ], flags);
  const plan: [string, Deno.ChildProcess, string][] = [
    [
      "warden-routing-only",
      warden(ROOT, "after.db", PROF ? ["--cpu-prof", `--cpu-prof-dir=${PROF}`] : []),
      "ev__echo",
    ],
    ["naive-sdk-relay", spawn([`${ROOT}tests/bench/_naive_relay.ts`, up.url]), "echo"],
    ["raw-proxy", spawn([`${ROOT}tests/bench/_raw_proxy.ts`, up.url]), "echo"],
  ];
  const before = Deno.args[0];
  if (before) {
    const root = before.endsWith("/") ? before : `${before}/`;
    plan.push(["warden-routing-only-before", warden(root, "before.db"), "ev__echo"]);
  }
  const targets: Target[] = [];
  for (const [name, child, tool] of plan) {
    const url = await listening(child);
    const t = { name, child, tool, url, headers: await session(url) };
    await calls(t, 300, 1);
    targets.push(t);
  }
  {
    const url = `http://127.0.0.1:${up.port}`;
    targets.unshift({
      name: "everything-direct",
      child: up.process,
      tool: "echo",
      url,
      headers: await session(url),
    });
  }
  const samples: Record<string, number[]> = {};
  const p50s: Record<string, number[]> = {};
  for (let round = 0; round < ROUNDS; round++) {
    for (const concurrency of [1, 32]) {
      for (const t of targets) {
        const before = cpuMs(t.child.pid);
        const lat: number[] = [];
        await calls(t, CALLS, concurrency, concurrency === 1 ? lat : undefined);
        if (lat.length > 0) (p50s[t.name] ??= []).push(median(lat));
        (samples[`${t.name} c=${concurrency}`] ??= []).push(
          (cpuMs(t.child.pid) - before) / CALLS,
        );
      }
    }
  }
  const out: Record<string, unknown> = {};
  for (const [name, xs] of Object.entries(p50s)) {
    out[`${name} c=1 p50 ms`] = {
      median: Number(median(xs).toFixed(3)),
      rounds: xs.map((x) => Number(x.toFixed(3))),
    };
  }
  for (const [key, xs] of Object.entries(samples)) {
    const sorted = [...xs].sort((a, b) => a - b);
    out[key] = {
      median_cpu_ms_per_call: Number(sorted[Math.floor(sorted.length / 2)].toFixed(3)),
      rounds: xs.map((x) => Number(x.toFixed(3))),
    };
  }
  console.log(JSON.stringify(out, null, 2));
} finally {
  // SIGINT: Warden shuts down cleanly (and writes its --cpu-prof).
  for (const child of spawned) {
    try {
      child.kill("SIGINT");
    } catch {
      // already gone
    }
  }
  await Promise.allSettled(spawned.map((c) => c.status));
  await up.stop();
  await Deno.remove(dir, { recursive: true });
}

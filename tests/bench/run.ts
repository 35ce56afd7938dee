/**
 * `deno task bench`: every server variant is started in its own process and
 * loaded by a separate load-generator process, in interleaved rounds on the
 * same machine in one run, so ratios between variants are meaningful even on
 * a noisy 2-core box. Prints a Markdown table and writes bench/results/latest.json.
 *
 * Environment: BENCH_ROUNDS (default 5), BENCH_DURATION_MS (default 3000),
 * BENCH_WARMUP_MS (default 1000), BENCH_ONLY (comma-separated suite names),
 * BENCH_VAULT_ENTRIES (default 1000000: the size of the vault-scale log).
 */
import { gatewaySuite } from "./_gateway.ts";
import { runVaultScale } from "./_vault_scale.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const rounds = Number(Deno.env.get("BENCH_ROUNDS") ?? 5);
const durationMs = Number(Deno.env.get("BENCH_DURATION_MS") ?? 3000);
const warmupMs = Number(Deno.env.get("BENCH_WARMUP_MS") ?? 1000);
const only = (Deno.env.get("BENCH_ONLY") ?? "").split(",").filter(Boolean);
const ACCEPT = "application/json, text/event-stream";

interface Variant {
  readonly name: string;
  /** deno run arguments (after `run -A`). */
  readonly args: string[];
  /** MCP servers need a session; raw does not. */
  readonly mcp: boolean;
  readonly tool: string;
  readonly toolArgs: Record<string, unknown>;
  readonly expect: string;
}

interface Running {
  readonly variant: Variant;
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly child: Deno.ChildProcess;
}

interface Sample {
  rps: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
  first_error?: string;
}

async function firstLine(
  stream: ReadableStream<Uint8Array>,
  pick: (line: string) => string | undefined,
) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`process ended before it was ready:\n${buf}`);
    buf += value;
    for (const line of buf.split("\n")) {
      const hit = pick(line);
      if (hit) {
        // Keep draining so the child never blocks on a full pipe.
        (async () => {
          for (;;) if ((await reader.read()).done) break;
        })();
        return hit;
      }
    }
  }
}

async function start(variant: Variant, tmp: string): Promise<Running> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...variant.args],
    cwd: tmp,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", WARDEN_LOG_LEVEL: "warn" },
  }).spawn();
  const pick = (line: string) => {
    try {
      const rec = JSON.parse(line);
      if (typeof rec.port === "number") return `http://127.0.0.1:${rec.port}`;
      if (rec.msg === "listening") return String(rec.url).replace(/\/mcp$/, "");
    } catch {
      // not JSON
    }
    return undefined;
  };
  // Warden logs to stderr; the bench servers print their port on stdout.
  const url = await Promise.any([firstLine(child.stdout, pick), firstLine(child.stderr, pick)]);
  const headers: Record<string, string> = { accept: ACCEPT, "content-type": "application/json" };
  if (variant.mcp) {
    const init = await fetch(`${url}/mcp`, {
      method: "POST",
      headers,
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: {
          protocolVersion: "2025-11-25",
          capabilities: {},
          clientInfo: { name: "bench", version: "1" },
        },
      }),
    });
    await init.text();
    const sid = init.headers.get("mcp-session-id");
    if (!sid) throw new Error(`${variant.name}: no session id`);
    headers["mcp-session-id"] = sid;
    headers["mcp-protocol-version"] = "2025-11-25";
    const ack = await fetch(`${url}/mcp`, {
      method: "POST",
      headers,
      body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }),
    });
    await ack.text();
  }
  return { variant, url, headers, child };
}

async function load(run: Running, concurrency: number): Promise<Sample> {
  const spec = {
    url: `${run.url}/mcp`,
    method: "POST",
    headers: run.headers,
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: "__ID__",
      method: "tools/call",
      params: { name: run.variant.tool, arguments: run.variant.toolArgs },
    }).replace('"__ID__"', "__ID__"),
    concurrency,
    durationMs,
    warmupMs,
    expect: run.variant.expect,
  };
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}tests/bench/_load.ts`, JSON.stringify(spec)],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const FLOORS_ON = "policy-floors-on.json";
const FLOORS_OFF = "policy-floors-off.json";
const LIMITS_DEFAULT = "policy-limits-default.json";
const LIMITS_BUDGET = "policy-limits-budget.json";

const wardenVariant = (name: string, extra: string[]): Variant => ({
  name,
  args: wardenArgs(extra),
  mcp: true,
  tool: "calculate",
  toolArgs: { expression: "2+3*4" },
  expect: '"result":14',
});

const wardenArgs = (extra: string[] = []) => [
  `${ROOT}main.ts`,
  "serve",
  "--port",
  "0",
  "--kv",
  "bench.db",
  "--response-mode",
  "json",
  ...extra,
];

/** Suites: each compares variants measured in the same interleaved rounds. */
const SUITES: Record<
  string,
  {
    variants: Variant[];
    ratios: [string, string, number][];
    concurrency?: number[];
    setup?: (dir: string) => void;
  }
> = {
  foundation: {
    variants: [
      {
        name: "raw-deno-serve",
        args: [`${ROOT}tests/bench/_raw_server.ts`],
        mcp: false,
        tool: "echo",
        toolArgs: { text: "hi" },
        expect: '"result"',
      },
      {
        name: "bare-hono-sdk-echo",
        args: [`${ROOT}tests/bench/_bare_sdk_server.ts`],
        mcp: true,
        tool: "echo",
        toolArgs: { text: "hi" },
        expect: '"result"',
      },
      // Sessions only: what this suite measures is the cost of KV-backed sessions.
      wardenVariant("warden-calculate", ["--sealing", "off", "--policy", FLOORS_OFF]),
    ],
    // [numerator, denominator, target ratio (0 = informational)]
    ratios: [
      ["warden-calculate", "bare-hono-sdk-echo", 0.9],
      ["warden-calculate", "raw-deno-serve", 0],
    ],
  },
  vault: {
    variants: [
      wardenVariant("warden-sealed", ["--policy", FLOORS_OFF]),
      wardenVariant("warden-unsealed", ["--sealing", "off", "--policy", FLOORS_OFF]),
    ],
    ratios: [["warden-sealed", "warden-unsealed", 0.85]],
    // Group commit can only batch what is in flight: the curve over concurrency is the point.
    concurrency: [1, 32, 128],
  },
  governance: {
    variants: [
      wardenVariant("warden-governed", ["--policy", FLOORS_ON]),
      wardenVariant("warden-floors-off", ["--policy", FLOORS_OFF]),
    ],
    ratios: [["warden-governed", "warden-floors-off", 0.85]],
  },
  // The shared KV limiter: the default policy on loopback counts calls in flight (one getMany
  // and two commits per call); the budget variant adds a daily call budget to the same commit.
  limiter: {
    variants: [
      wardenVariant("warden-default-limits", ["--policy", LIMITS_DEFAULT]),
      wardenVariant("warden-limits-budget", ["--policy", LIMITS_BUDGET]),
      wardenVariant("warden-no-limits", ["--policy", FLOORS_ON]),
    ],
    ratios: [
      ["warden-default-limits", "warden-no-limits", 0.95],
      ["warden-limits-budget", "warden-no-limits", 0],
    ],
  },
  // The gateway (issue 11): upstream echo direct, routed, governed and sealed, naive relay.
  gateway: gatewaySuite(ROOT, wardenArgs),
};

/**
 * Policies the variants run under, written into each suite's working
 * directory. Rate limits are lifted in both: the load generator is one
 * principal, and throttling it would measure F5's refusals, not the floors' cost.
 */
function writePolicies(dir: string): void {
  const unthrottled = {
    rate_limits: {
      per_principal_per_minute: 0,
      per_tool_per_minute: 0,
      max_concurrent_per_principal: 0,
    },
  };
  const off = Object.fromEntries(
    ["F1", "F2", "F3", "F4", "F5", "F6", "F7", "F8", "F9", "F10", "F11", "F12", "F13"].map((
      id,
    ) => [id, { mode: "off" }]),
  );
  Deno.writeTextFileSync(`${dir}/${FLOORS_ON}`, JSON.stringify(unthrottled));
  Deno.writeTextFileSync(`${dir}/${FLOORS_OFF}`, JSON.stringify({ ...unthrottled, floors: off }));
  Deno.writeTextFileSync(`${dir}/${LIMITS_DEFAULT}`, "{}");
  Deno.writeTextFileSync(
    `${dir}/${LIMITS_BUDGET}`,
    JSON.stringify({ budgets: { calls_per_day: 1_000_000_000 } }),
  );
}

const results: Record<string, unknown> = {};
const lines: string[] = [];
for (const [suiteName, suite] of Object.entries(SUITES)) {
  if (only.length && !only.includes(suiteName)) continue;
  const tmp = await Deno.makeTempDir({ prefix: "warden-bench-" });
  writePolicies(tmp);
  suite.setup?.(tmp);
  const levels = suite.concurrency ?? [1, 32];
  const samples: Record<string, Record<number, Sample[]>> = {};
  const running: Running[] = [];
  try {
    for (const v of suite.variants) running.push(await start(v, tmp));
    for (let r = 0; r < rounds; r++) {
      for (const concurrency of levels) {
        for (const run of running) {
          const s = await load(run, concurrency);
          if (s.errors > 0) {
            throw new Error(
              `${run.variant.name} c=${concurrency}: ${s.errors} errors, first: ${s.first_error}`,
            );
          }
          ((samples[run.variant.name] ??= {})[concurrency] ??= []).push(s);
          console.error(
            `round ${r + 1}/${rounds} ${run.variant.name} c=${concurrency}: ${
              s.rps.toFixed(0)
            } req/s p50 ${s.p50_ms.toFixed(2)} ms p99 ${s.p99_ms.toFixed(2)} ms`,
          );
        }
      }
    }
  } finally {
    for (const run of running) {
      try {
        run.child.kill("SIGTERM");
      } catch {
        // already gone
      }
      await run.child.status;
    }
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  const summary: Record<string, Record<number, { rps: number; p50_ms: number; p99_ms: number }>> =
    {};
  lines.push(
    `### ${suiteName}`,
    "",
    "| variant | concurrency | req/s (median) | p50 ms | p99 ms |",
    "|---|---|---|---|---|",
  );
  for (const v of suite.variants) {
    for (const c of levels) {
      const ss = samples[v.name][c];
      const row = {
        rps: median(ss.map((s) => s.rps)),
        p50_ms: median(ss.map((s) => s.p50_ms)),
        p99_ms: median(ss.map((s) => s.p99_ms)),
      };
      (summary[v.name] ??= {})[c] = row;
      lines.push(
        `| ${v.name} | ${c} | ${row.rps.toFixed(0)} | ${row.p50_ms.toFixed(2)} | ${
          row.p99_ms.toFixed(2)
        } |`,
      );
    }
  }
  lines.push("", "| ratio | concurrency | value | target |", "|---|---|---|---|");
  const ratios: Record<string, number> = {};
  for (const [num, den, target] of suite.ratios) {
    for (const c of levels) {
      // Ratio of medians of per-round ratios: both variants ran back to back in every round.
      const perRound = samples[num][c].map((s, i) => s.rps / samples[den][c][i].rps);
      const value = median(perRound);
      ratios[`${num}/${den}@c${c}`] = value;
      const verdict = target ? (value >= target ? `≥ ${target} ✓` : `≥ ${target} ✗`) : "—";
      lines.push(`| ${num} / ${den} | ${c} | ${value.toFixed(3)} | ${verdict} |`);
    }
  }
  lines.push("");
  results[suiteName] = { summary, ratios, rounds, durationMs, warmupMs };
}

if (!only.length || only.includes("vault-scale")) {
  const entries = Number(Deno.env.get("BENCH_VAULT_ENTRIES") ?? 1_000_000);
  const scale = await runVaultScale({ entries, appendSamples: 500 });
  lines.push(...scale.lines);
  results["vault-scale"] = scale.results;
}

const meta = {
  date: new Date().toISOString(),
  deno: Deno.version.deno,
  cpus: navigator.hardwareConcurrency,
  command: "deno task bench",
};
await Deno.mkdir(`${ROOT}tests/bench/results`, { recursive: true });
await Deno.writeTextFile(
  `${ROOT}tests/bench/results/latest.json`,
  JSON.stringify({ meta, results }, null, 2) + "\n",
);
console.log(
  `Run ${meta.date}, Deno ${meta.deno}, ${meta.cpus} CPUs, ${rounds} rounds × ${durationMs} ms\n`,
);
console.log(lines.join("\n"));

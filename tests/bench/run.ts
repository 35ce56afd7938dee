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
import { WARDEN_V8_FLAGS } from "./_launch.ts";
import { initializeRaw } from "../_helpers/raw.ts";
import { runVaultScale } from "./_vault_scale.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const rounds = Number(Deno.env.get("BENCH_ROUNDS") ?? 5);
const durationMs = Number(Deno.env.get("BENCH_DURATION_MS") ?? 3000);
const warmupMs = Number(Deno.env.get("BENCH_WARMUP_MS") ?? 1000);
const only = (Deno.env.get("BENCH_ONLY") ?? "").split(",").filter(Boolean);
const ACCEPT = "application/json, text/event-stream";
const MODERN_META = {
  "io.modelcontextprotocol/protocolVersion": "2026-07-28",
  "io.modelcontextprotocol/clientInfo": { name: "bench", version: "1" },
  "io.modelcontextprotocol/clientCapabilities": {},
};

interface Variant {
  readonly name: string;
  /** deno run arguments (after `run -A`). */
  readonly args: string[];
  /** MCP servers need a session; raw does not. */
  readonly mcp: boolean;
  /** 2026-07-28 requests: no session, per-request `_meta` and `Mcp-Method`/`Mcp-Name` headers. */
  readonly modern?: boolean;
  readonly tool: string;
  readonly toolArgs: Record<string, unknown>;
  readonly expect: string;
  /** V8 flags instead of `deno task start`'s (Warden variants). */
  readonly v8?: string[];
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
  // Each Warden its own KV file, as a lone deployment has: sharing one, the idle variants'
  // background writes (checkpoints, reaping) contended for its lock and its vault head.
  const args = variant.args.map((a, i) =>
    a === "bench.db" && variant.args[i - 1] === "--kv" ? `bench-${variant.name}.db` : a
  );
  const warden = args.some((a) => a.endsWith("main.ts"));
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...(warden ? variant.v8 ?? WARDEN_V8_FLAGS : []), ...args],
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
  if (variant.modern) {
    headers["mcp-protocol-version"] = "2026-07-28";
    headers["mcp-method"] = "tools/call";
    headers["mcp-name"] = variant.tool;
  } else if (variant.mcp) {
    const { sessionId } = await initializeRaw(url, "2025-11-25");
    if (!sessionId) throw new Error(`${variant.name}: no session id`);
    headers["mcp-session-id"] = sessionId;
    headers["mcp-protocol-version"] = "2025-11-25";
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
      params: {
        name: run.variant.tool,
        arguments: run.variant.toolArgs,
        ...(run.variant.modern ? { _meta: MODERN_META } : {}),
      },
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

interface VaultCommits {
  workers: number;
  commits: number;
  conflicts: number;
  entries: number;
}

/**
 * A Warden's vault commits as its /metrics says, summed over its `--workers` processes: the
 * shared port hands each scrape to one of them, so scrapes repeat until each worker index has
 * answered (at most 40). Undefined for a server without those metrics.
 */
async function vaultCommits(url: string, workers: number): Promise<VaultCommits | undefined> {
  const seen = new Map<string, { commits: number; conflicts: number; entries: number }>();
  const value = (text: string, name: string) =>
    Number(new RegExp(`^${name.replace(/[{}"]/g, "\\$&")} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
  // A new connection each time: a kept-alive one would reach the same process every time.
  using client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  for (let i = 0; i < 40 && seen.size < workers; i++) {
    const res = await fetch(`${url}/metrics`, { client }).catch(() => undefined);
    if (!res?.ok) return undefined;
    const text = await res.text();
    const worker = /^warden_worker_info\{worker="(\d+)"\} 1$/m.exec(text)?.[1];
    if (worker === undefined) return undefined;
    seen.set(worker, {
      commits: value(text, 'warden_vault_commits_total{outcome="ok"}'),
      conflicts: value(text, 'warden_vault_commits_total{outcome="conflict"}'),
      entries: value(text, "warden_vault_committed_entries_total"),
    });
  }
  const all = [...seen.values()];
  return {
    workers: seen.size,
    commits: all.reduce((a, c) => a + c.commits, 0),
    conflicts: all.reduce((a, c) => a + c.conflicts, 0),
    entries: all.reduce((a, c) => a + c.entries, 0),
  };
}

/** One round's durable-commit baseline (see _kv_commit.ts). */
async function commitBaseline(dir: string): Promise<{ p50_ms: number; p99_ms: number }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${ROOT}tests/bench/_kv_commit.ts`,
      dir,
      String(Math.min(durationMs, 2000)),
    ],
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
const LIMITS_COUNTED = "policy-limits-counted.json";

/** A Warden variant; `--response-mode json` unless `extra` names a response mode. */
const wardenVariant = (name: string, extra: string[], modern = false): Variant => ({
  name,
  args: wardenArgs(
    extra.includes("--response-mode") ? extra : ["--response-mode", "json", ...extra],
  ),
  mcp: true,
  modern,
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
  ...extra,
];

/** Suites: each compares variants measured in the same interleaved rounds. */
interface Suite {
  variants: Variant[];
  /** [numerator, denominator, target ratio (0 = informational)] of req/s. */
  ratios: [string, string, number][];
  concurrency?: number[];
  /**
   * c=1 p50 budgets: [variant, baseline, extra ms, commit?] — the variant's p50 must stay within
   * the baseline's p50 plus one durable KV commit's p50 (measured in the same rounds; left out
   * when `commit` is false) plus `extra`.
   */
  latencyBudgets?: [string, string, number, boolean?][];
  /** Writes what the suite's variants need into its working directory. */
  setup?: (dir: string) => void;
}

const bare = (name: string, mode: "json" | "sse" | "modern" | "v2-sse"): Variant => ({
  name,
  args: [`${ROOT}tests/bench/_bare_sdk_server.ts`, "--mode", mode],
  mcp: true,
  modern: mode === "modern",
  tool: "echo",
  toolArgs: { text: "hi" },
  expect: '"text":"hi"',
});

const SSE = ["--response-mode", "sse"];

const SUITES: Record<string, Suite> = {
  // Issue 13's table: the default configuration (SSE responses, all floors, sealed, resumable)
  // and each of its parts switched off, against the bare v1 SDK in the same response mode.
  default: {
    variants: [
      bare("bare-v1-sse", "sse"),
      bare("bare-v1-json", "json"),
      // The SDK line Warden's 2025 path is built on, bare: tells the SDK's own cost from Warden's.
      bare("bare-v2-sse", "v2-sse"),
      wardenVariant("warden-default", [...SSE, "--policy", FLOORS_ON]),
      wardenVariant("warden-sse-unsealed", [...SSE, "--sealing", "off", "--policy", FLOORS_ON]),
      wardenVariant("warden-sse-floors-off", [...SSE, "--policy", FLOORS_OFF]),
      wardenVariant("warden-sse-bare", [...SSE, "--sealing", "off", "--policy", FLOORS_OFF]),
      wardenVariant("warden-json", ["--response-mode", "json", "--policy", FLOORS_ON]),
      // The default without `deno task start`'s heap ceiling (V8 sizes the heap by the machine's
      // memory): what the ceiling that keeps the soak flat costs in throughput.
      {
        ...wardenVariant("warden-default-uncapped", [...SSE, "--policy", FLOORS_ON]),
        v8: [],
      },
      // The default configuration on both cores (issue 13, "use every core"): two processes on one
      // port and KV file. On a 2-core machine the load generator shares those cores.
      wardenVariant("warden-default-workers2", [...SSE, "--policy", FLOORS_ON, "--workers", "2"]),
    ],
    ratios: [
      ["warden-default", "bare-v1-sse", 0.6],
      ["warden-default-workers2", "bare-v1-sse", 0],
      ["warden-default", "warden-default-uncapped", 0],
      ["warden-default-workers2", "warden-default", 0],
      ["warden-json", "bare-v1-json", 0.75],
      ["warden-sse-unsealed", "bare-v1-sse", 0],
      ["warden-sse-floors-off", "bare-v1-sse", 0],
      ["warden-sse-bare", "bare-v1-sse", 0],
      ["bare-v2-sse", "bare-v1-sse", 0],
      ["warden-default", "bare-v2-sse", 0],
    ],
    latencyBudgets: [["warden-default", "bare-v1-sse", 0.3]],
  },
  // The 2026-07-28 path (stateless, no session): Warden (all floors, sealed) against the bare v2
  // `createMcpHandler`, and against Warden's own sessionful default path.
  modern: {
    variants: [
      bare("bare-v2-handler", "modern"),
      wardenVariant("warden-modern", [...SSE, "--policy", FLOORS_ON], true),
      wardenVariant("warden-sessionful", [...SSE, "--policy", FLOORS_ON]),
    ],
    ratios: [
      ["warden-modern", "bare-v2-handler", 1.0],
      ["warden-modern", "warden-sessionful", 0],
    ],
    // Informational here: each round's durable-commit timing shows how contended the disk was
    // (a sealed call waits for one; the bare handler never does).
    latencyBudgets: [["warden-modern", "bare-v2-handler", 0.3]],
  },
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
  // The shared KV limiter. The default policy leaves an anonymous loopback caller unthrottled
  // (nothing counted); "counted" lifts that exemption so the calls in flight are counted in KV
  // (one getMany and one commit per call, the release riding along the vault's commit); the
  // budget variant adds a daily call budget to the same commit.
  limiter: {
    variants: [
      wardenVariant("warden-default-limits", ["--policy", LIMITS_DEFAULT]),
      wardenVariant("warden-limits-counted", ["--policy", LIMITS_COUNTED]),
      wardenVariant("warden-limits-budget", ["--policy", LIMITS_BUDGET]),
      wardenVariant("warden-no-limits", ["--policy", FLOORS_ON]),
    ],
    ratios: [
      ["warden-default-limits", "warden-no-limits", 0.95],
      ["warden-limits-counted", "warden-no-limits", 0.95],
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
  // Counted like a remote caller: calls in flight only (a per-minute log would throttle the load).
  const counted = {
    rate_limits: { exempt_loopback: false, per_ip_per_minute: 0, max_concurrent_per_principal: 64 },
  };
  Deno.writeTextFileSync(`${dir}/${LIMITS_COUNTED}`, JSON.stringify(counted));
  Deno.writeTextFileSync(
    `${dir}/${LIMITS_BUDGET}`,
    JSON.stringify({ ...counted, budgets: { calls_per_day: 1_000_000_000 } }),
  );
}

const results: Record<string, unknown> = {};
const lines: string[] = [];
const vaultStats: Record<string, Record<string, VaultCommits>> = {};
for (const [suiteName, suite] of Object.entries(SUITES)) {
  if (only.length && !only.includes(suiteName)) continue;
  const tmp = await Deno.makeTempDir({ prefix: "warden-bench-" });
  writePolicies(tmp);
  suite.setup?.(tmp);
  const levels = suite.concurrency ?? [1, 32];
  const samples: Record<string, Record<number, Sample[]>> = {};
  const running: Running[] = [];
  const commits: { p50_ms: number; p99_ms: number }[] = [];
  try {
    for (const v of suite.variants) running.push(await start(v, tmp));
    for (let r = 0; r < rounds; r++) {
      if (suite.latencyBudgets) {
        const c = await commitBaseline(tmp);
        commits.push(c);
        console.error(
          `round ${r + 1}/${rounds} durable KV commit: p50 ${c.p50_ms.toFixed(2)} ms p99 ${
            c.p99_ms.toFixed(2)
          } ms`,
        );
      }
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
    // How the vault's group commit fared: one process, or --workers sharing the head.
    for (const run of running) {
      if (!run.variant.args.some((a) => a.endsWith("main.ts"))) continue;
      const w = run.variant.args.indexOf("--workers");
      const stats = await vaultCommits(run.url, w >= 0 ? Number(run.variant.args[w + 1]) : 1);
      if (stats && stats.entries > 0) (vaultStats[suiteName] ??= {})[run.variant.name] = stats;
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
  if (vaultStats[suiteName]) {
    lines.push(
      "",
      "| vault group commit | processes | commits | conflicts | entries per commit | conflicts per commit |",
      "|---|---|---|---|---|---|",
    );
    for (const [name, v] of Object.entries(vaultStats[suiteName])) {
      lines.push(
        `| ${name} | ${v.workers} | ${v.commits} | ${v.conflicts} | ${
          (v.entries / Math.max(1, v.commits)).toFixed(2)
        } | ${(v.conflicts / Math.max(1, v.commits)).toFixed(3)} |`,
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
  const spread = (xs: number[], digits: number) =>
    `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`;
  lines.push(
    "",
    "| variant | concurrency | req/s over rounds | p50 ms over rounds |",
    "|---|---|---|---|",
  );
  for (const v of suite.variants) {
    for (const c of levels) {
      const ss = samples[v.name][c];
      lines.push(
        `| ${v.name} | ${c} | ${spread(ss.map((s) => s.rps), 0)} | ${
          spread(ss.map((s) => s.p50_ms), 2)
        } |`,
      );
    }
  }
  const budgets: Record<string, unknown> = {};
  if (suite.latencyBudgets) {
    const commitP50 = median(commits.map((c) => c.p50_ms));
    lines.push(
      "",
      `Durable KV commit (serial one-set atomics on a fresh file): p50 ${
        commitP50.toFixed(3)
      } ms (rounds ${spread(commits.map((c) => c.p50_ms), 3)}), p99 ${
        median(commits.map((c) => c.p99_ms)).toFixed(3)
      } ms`,
      "",
      "| c=1 p50 | value ms | budget ms (baseline p50 + commit p50 + extra) | verdict |",
      "|---|---|---|---|",
    );
    for (const [name, base, extra, withCommit = true] of suite.latencyBudgets) {
      // Per round: the variant's p50 against that round's baseline p50 and commit p50.
      const commitOf = (i: number) => withCommit ? commits[i].p50_ms : 0;
      const over = samples[name][1].map((s, i) =>
        s.p50_ms - (samples[base][1][i].p50_ms + commitOf(i) + extra)
      );
      const value = median(samples[name][1].map((s) => s.p50_ms));
      const budget = median(samples[base][1].map((s) => s.p50_ms)) +
        (withCommit ? commitP50 : 0) + extra;
      const ok = median(over) <= 0;
      budgets[`${name} / ${base}`] = { value, budget, commitP50, withCommit, overPerRound: over };
      lines.push(
        `| ${name} | ${value.toFixed(2)} | ${budget.toFixed(2)} (${base}${
          withCommit ? " + commit" : ""
        } + ${extra}) | ${ok ? "✓" : "✗"} |`,
      );
    }
  }
  lines.push("", "| p99 / p50 at c=32 | value | target |", "|---|---|---|");
  for (const v of suite.variants) {
    if (!levels.includes(32) || v.name.startsWith("bare") || v.name.startsWith("raw")) continue;
    const ss = samples[v.name][32];
    const value = median(ss.map((s) => s.p99_ms / s.p50_ms));
    lines.push(`| ${v.name} | ${value.toFixed(2)} | ≤ 5 ${value <= 5 ? "✓" : "✗"} |`);
  }
  lines.push("");
  results[suiteName] = {
    summary,
    ratios,
    budgets,
    commits,
    vault_commits: vaultStats[suiteName] ?? {},
    rounds,
    durationMs,
    warmupMs,
  };
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

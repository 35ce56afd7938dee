/**
 * Soak (issue 13): SOAK_CALLS (default 100,000) sealed `calculate` calls on
 * ONE 2025 session, in SSE and in JSON response mode, against a real Warden
 * process (default configuration otherwise: all floors, sealed, resumable;
 * F5's limits lifted — one load generator is one principal). Reports the
 * server's RSS (from /proc) after a warm-up and at the end, and the growth
 * between them; the target is ≤ 40 MB per mode. A script, not a timed test:
 *
 *   deno run -A tests/bench/soak.ts            # both modes
 *   SOAK_CALLS=20000 SOAK_MODES=sse deno run -A tests/bench/soak.ts
 *   SOAK_LIVE=1 …   # also the heap after a full collection (the server runs with --inspect)
 */
import { inspect } from "./_inspector.ts";
import { WARDEN_V8_FLAGS } from "./_launch.ts";

const CALLS = Number(Deno.env.get("SOAK_CALLS") ?? 100_000);
const WARMUP = Math.min(5_000, Math.floor(CALLS / 10));
const CONCURRENCY = Number(Deno.env.get("SOAK_CONCURRENCY") ?? 8);
const LIVE = Deno.env.get("SOAK_LIVE") === "1";
const MODES = (Deno.env.get("SOAK_MODES") ?? "sse,json").split(",");
const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const ACCEPT = "application/json, text/event-stream";

function rssMb(pid: number, field = "VmRSS"): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return kb / 1024;
}

/** RSS and its parts: anonymous memory (heaps) and file-backed pages (the KV file's mappings). */
function memory(pid: number) {
  return { rss: rssMb(pid), anon: rssMb(pid, "RssAnon"), file: rssMb(pid, "RssFile") };
}

async function start(mode: string, dir: string) {
  await Deno.writeTextFile(
    `${dir}/policy.json`,
    JSON.stringify({
      rate_limits: {
        per_principal_per_minute: 0,
        per_tool_per_minute: 0,
        max_concurrent_per_principal: 0,
      },
    }),
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      ...(LIVE ? ["--inspect=127.0.0.1:0"] : []),
      // As `deno task start` runs it (its heap ceiling included), unless SOAK_V8_FLAGS says.
      ...(Deno.env.get("SOAK_V8_FLAGS")
        ? [`--v8-flags=${Deno.env.get("SOAK_V8_FLAGS")}`]
        : WARDEN_V8_FLAGS),
      MAIN,
      "serve",
      "--port",
      "0",
      "--kv",
      `${dir}/soak.db`,
      "--policy",
      `${dir}/policy.json`,
      "--response-mode",
      mode,
      "--log-level",
      "warn",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  while (true) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`server exited: ${buf}`);
    buf += value;
    const m = /"msg":"listening","url":"([^"]+)"/.exec(buf);
    if (m) {
      (async () => {
        while (!(await reader.read()).done) { /* drain */ }
      })();
      const ws = /Debugger listening on (ws:\/\/\S+)/.exec(buf)?.[1];
      return { child, url: m[1], inspector: ws ? await inspect(ws) : undefined };
    }
  }
}

async function post(url: string, session: string | undefined, body: unknown) {
  const res = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: ACCEPT,
      ...(session ? { "mcp-session-id": session, "mcp-protocol-version": "2025-11-25" } : {}),
    },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { res, text };
}

async function soak(mode: string) {
  const dir = await Deno.makeTempDir();
  const { child, url, inspector } = await start(mode, dir);
  try {
    const init = await post(url, undefined, {
      jsonrpc: "2.0",
      id: 0,
      method: "initialize",
      params: {
        protocolVersion: "2025-11-25",
        capabilities: {},
        clientInfo: { name: "soak", version: "1" },
      },
    });
    const session = init.res.headers.get("mcp-session-id")!;
    await post(url, session, { jsonrpc: "2.0", method: "notifications/initialized" });
    let next = 1;
    let errors = 0;
    let firstError = "";
    const run = async (count: number) => {
      const end = next + count;
      await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
        while (next < end) {
          const id = next++;
          const { text } = await post(url, session, {
            jsonrpc: "2.0",
            id,
            method: "tools/call",
            params: { name: "calculate", arguments: { expression: `${id % 997}+1` } },
          });
          if (!text.includes('"SEAL"')) {
            errors++;
            firstError ||= text.slice(0, 300);
          }
        }
      }));
    };
    const heap = async () => {
      const { text } = await post(url, session, {
        jsonrpc: "2.0",
        id: next++,
        method: "tools/call",
        params: { name: "check_vital", arguments: {} },
      });
      const field = (name: string) => {
        const m = new RegExp(`${name}\\\\?":\\s*(\\d+)`).exec(text);
        return m ? Number(m[1]) / 1048576 : NaN;
      };
      return { used: field("heap_used"), total: field("heap_total"), external: field("external") };
    };
    await run(WARMUP);
    const point = async () => ({
      ...memory(child.pid),
      heap: await heap(),
      live: await inspector?.liveHeapMb(),
    });
    const first = await point();
    const before = first.rss;
    const heapBefore = first.heap.used;
    const started = performance.now();
    // The curve, not two points: a leak grows every fifth, lazy heap growth and caches level off.
    const curve = [first];
    for (let i = 0; i < 5; i++) {
      await run(CALLS / 5);
      curve.push(await point());
    }
    const seconds = (performance.now() - started) / 1000;
    const after = curve[5].rss;
    const heapAfter = curve[5].heap.used;
    return {
      mode,
      calls: CALLS,
      seconds,
      before,
      after,
      heapBefore,
      heapAfter,
      curve,
      errors,
      firstError,
    };
  } finally {
    inspector?.close();
    child.kill("SIGTERM");
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
}

const rows = [];
for (const mode of MODES) {
  const r = await soak(mode);
  console.error(
    `${r.mode}: ${r.calls} calls in ${r.seconds.toFixed(0)} s, RSS ${r.before.toFixed(1)} → ${
      r.after.toFixed(1)
    } MB (${(r.after - r.before).toFixed(1)} MB), JS heap used ${r.heapBefore.toFixed(1)} → ${
      r.heapAfter.toFixed(1)
    } MB, ${r.errors} errors ${r.firstError}`,
  );
  console.error(
    `${r.mode} every ${CALLS / 5} calls: ${
      r.curve.map((m) =>
        `RSS ${m.rss.toFixed(0)} (anon ${m.anon.toFixed(0)}: V8 heap ${
          m.heap.total.toFixed(0)
        } of which used ${m.heap.used.toFixed(0)}${
          m.live === undefined ? "" : ` (live after a full GC ${m.live.toFixed(1)})`
        }, external ${m.heap.external.toFixed(0)}; file ${m.file.toFixed(0)})`
      ).join(" → ")
    } MB`,
  );
  rows.push(r);
}
console.log(
  "| mode | calls | s | RSS after warm-up MB | RSS at end MB | growth MB | of it anon / file MB | target |",
);
console.log("|---|---|---|---|---|---|---|---|");
for (const r of rows) {
  const growth = r.after - r.before;
  console.log(
    `| ${r.mode} | ${r.calls} | ${r.seconds.toFixed(0)} | ${r.before.toFixed(1)} | ${
      r.after.toFixed(1)
    } | ${growth.toFixed(1)} | ${(r.curve[5].anon - r.curve[0].anon).toFixed(1)} / ${
      (r.curve[5].file - r.curve[0].file).toFixed(1)
    } | ≤ 40 ${growth <= 40 ? "✓" : "✗"} |`,
  );
}
if (rows.some((r) => r.errors > 0)) Deno.exit(1);

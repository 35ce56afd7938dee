/**
 * A closed-loop HTTP load generator run in its own process: `concurrency`
 * workers each send one request at a time for `durationMs` after a warm-up,
 * and the process prints one JSON line with throughput and latency percentiles.
 *
 * Usage: deno run -A bench/_load.ts '<json spec>'
 * spec: {url, method, headers, body (with __ID__ replaced per request), concurrency,
 *        durationMs, warmupMs, expect (substring every response must contain)}
 */
interface Spec {
  url: string;
  method: string;
  headers: Record<string, string>;
  body?: string;
  concurrency: number;
  durationMs: number;
  warmupMs: number;
  expect?: string;
}

const spec: Spec = JSON.parse(Deno.args[0]);
let nextId = 1_000_000;
let errors = 0;
let firstError: string | undefined;

async function once(): Promise<number> {
  const id = nextId++;
  const started = performance.now();
  const res = await fetch(spec.url, {
    method: spec.method,
    headers: spec.headers,
    body: spec.body?.replaceAll("__ID__", String(id)),
  });
  const text = await res.text();
  const elapsed = performance.now() - started;
  if (res.status >= 400 || (spec.expect && !text.includes(spec.expect))) {
    errors++;
    firstError ??= `${res.status} ${text.slice(0, 300)}`;
  }
  return elapsed;
}

async function phase(ms: number, record: boolean): Promise<number[]> {
  const latencies: number[] = [];
  const end = performance.now() + ms;
  await Promise.all(Array.from({ length: spec.concurrency }, async () => {
    while (performance.now() < end) {
      const l = await once();
      if (record) latencies.push(l);
    }
  }));
  return latencies;
}

await phase(spec.warmupMs, false);
errors = 0;
const started = performance.now();
const latencies = await phase(spec.durationMs, true);
const elapsedS = (performance.now() - started) / 1000;
latencies.sort((a, b) => a - b);
const pct = (p: number) =>
  latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
console.log(JSON.stringify({
  requests: latencies.length,
  rps: latencies.length / elapsedS,
  p50_ms: pct(0.5),
  p99_ms: pct(0.99),
  errors,
  first_error: firstError,
}));

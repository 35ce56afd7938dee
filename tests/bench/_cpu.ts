/**
 * What the CPU-per-call scripts (gateway_cpu.ts, default_cpu.ts) share: a process's CPU time from
 * /proc, and the base URL a child server prints when it listens. Linux only.
 * @module
 */

const TICKS_PER_S = 100;

/** utime + stime of `pid` so far, in ms. */
export function cpuMs(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 1000 / TICKS_PER_S;
}

/** The base URL a child prints when it listens (Warden logs JSON to stderr, the relay stdout). */
export async function listening(child: Deno.ChildProcess): Promise<string> {
  const found = Promise.withResolvers<string>();
  for (const stream of [child.stdout, child.stderr]) {
    (async () => {
      let tail = "";
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        tail = (tail + chunk).slice(-8192);
        for (const line of tail.split("\n")) {
          try {
            const rec = JSON.parse(line);
            if (typeof rec.port === "number") found.resolve(`http://127.0.0.1:${rec.port}`);
            if (rec.msg === "listening") found.resolve(String(rec.url).replace(/\/mcp$/, ""));
          } catch {
            // not a JSON line
          }
        }
      }
    })().catch(() => {});
  }
  const timer = setTimeout(() => found.reject(new Error("no listening line in 60 s")), 60_000);
  return await found.promise.finally(() => clearTimeout(timer));
}

/**
 * Half-open connections (issue 9 §6): a flood of idle TCP connections that exhausts the file
 * descriptors killed Deno.serve's accept loop and the port stayed closed after the attacker
 * left. Now the listener is bound again: the real CLI in its own process, its descriptor limit
 * lowered with `ulimit -n` (as an attacker with ~20k sockets would exhaust a default limit),
 * 2000 idle sockets opened to it, then `/health` answers within seconds after they close.
 */
import assert from "node:assert/strict";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

async function startLimited(fdLimit: number) {
  const child = new Deno.Command("sh", {
    args: [
      "-c",
      `ulimit -n ${fdLimit} && exec "$0" run -A "$1" serve --port 0 --kv :memory:`,
      Deno.execPath(),
      MAIN,
    ],
    stdout: "null",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  const logs: string[] = [];
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  let url = "";
  const deadline = Date.now() + 30_000;
  while (!url && Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`server exited:\n${buf}`);
    buf += value;
    url = /"url":"(http:[^"]+)\/mcp"/.exec(buf)?.[1] ?? "";
  }
  logs.push(buf);
  (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      logs.push(value);
    }
  })();
  return { url, child, logs };
}

Deno.test("half-open: 2000 idle sockets exhaust the descriptors; after they close /health answers", async () => {
  const { url, child, logs } = await startLimited(512);
  const conns: Deno.Conn[] = [];
  try {
    const port = Number(new URL(url).port);
    let refused = 0;
    for (let i = 0; i < 2000; i++) {
      try {
        conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
      } catch {
        refused++;
      }
    }
    // The kernel's backlog takes what the server cannot accept: most sockets opened.
    assert.ok(conns.length + refused === 2000);
    for (const c of conns.splice(0)) {
      try {
        c.close();
      } catch {
        // already closed by the server
      }
    }
    const started = Date.now();
    let status = 0;
    while (Date.now() - started < 8000) {
      try {
        const r = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
        status = r.status;
        await r.body?.cancel();
        if (status === 200) break;
      } catch {
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    assert.equal(status, 200, `/health after the flood; logs:\n${logs.join("").slice(-2000)}`);
    assert.ok(Date.now() - started < 8000);
    // Deno raises the soft limit to the hard one; a low hard limit is named, with the remedy.
    assert.match(logs.join(""), /descriptor limit is 512.*ulimit -Hn/);
  } finally {
    for (const c of conns) {
      try {
        c.close();
      } catch {
        // closed
      }
    }
    child.kill("SIGTERM");
    await child.status;
  }
});

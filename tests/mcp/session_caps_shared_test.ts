/**
 * Session caps across processes (issue 9 §6): two Warden processes on one KV file hold
 * `--max-sessions`, `--max-sessions-per-ip` and `--max-sessions-per-principal` together, not
 * each — a session opened at one counts at the other; ending one frees its place everywhere; a
 * killed process's sessions stop counting once its published counts expire. Real processes,
 * raw fetch; client IPs come from X-Forwarded-For through `--trusted-proxies`.
 */
import assert from "node:assert/strict";
import { spawnServer } from "../_helpers/server.ts";
import { initializeRaw, postInitialize } from "../_helpers/raw.ts";
import { pollUntil } from "../_helpers/wait.ts";

const TOKEN = "cap-test-token-0123456789abcdef";

function initialize(url: string, headers: Record<string, string> = {}) {
  return postInitialize(url, "2025-06-18", headers);
}

async function refused(url: string, headers: Record<string, string>): Promise<[number, string]> {
  const res = await initialize(url, headers);
  const text = await res.text();
  return [res.status, res.status === 200 ? "" : JSON.parse(text).error.message];
}

const ip = (n: number) => ({ "x-forwarded-for": `198.51.100.${n}` });

Deno.test("session caps hold across two processes on one KV: per IP, in total, per principal, and a killed process stops counting", async () => {
  const dir = await Deno.makeTempDir();
  const common = [
    "--kv",
    `${dir}/shared.db`,
    "--trusted-proxies",
    "127.0.0.1",
    "--max-sessions",
    "5",
    "--max-sessions-per-ip",
    "2",
    "--max-sessions-per-principal",
    "2",
    // A reaper tick a second: a dead process's counts expire within ~3 s.
    "--session-ttl",
    "4",
  ];
  const a = await spawnServer(common);
  const b = await spawnServer(common);
  try {
    // Per IP: one session at each process, the third from that IP is refused at either.
    const first = await initializeRaw(a.url, "2025-06-18", ip(1));
    await initializeRaw(b.url, "2025-06-18", ip(1));
    const [status, message] = await refused(a.url, ip(1));
    assert.equal(status, 429);
    assert.match(
      message,
      /client 198\.51\.100\.1 holds 2 sessions across the servers sharing this KV.*--max-sessions-per-ip/,
    );
    // Ending one at A frees its place for B.
    const del = await fetch(`${a.url}/mcp`, {
      method: "DELETE",
      headers: {
        "mcp-session-id": first.sessionId,
        "mcp-protocol-version": "2025-06-18",
        ...ip(1),
      },
    });
    assert.equal(del.status, 200);
    await del.body?.cancel();
    await initializeRaw(b.url, "2025-06-18", ip(1));

    // In total: 2 so far; 3 more from other IPs reach 5, the sixth is refused at either process.
    await initializeRaw(a.url, "2025-06-18", ip(2));
    await initializeRaw(a.url, "2025-06-18", ip(3));
    await initializeRaw(b.url, "2025-06-18", ip(4));
    for (const server of [a, b]) {
      const [total, why] = await refused(server.url, ip(5));
      assert.equal(total, 503, why);
      assert.match(
        why,
        /servers sharing this KV hold their maximum of 5 sessions \(--max-sessions\)/,
      );
    }

    // A killed process's sessions (A holds 2) stop counting once its counts expire.
    await a.stop("SIGKILL");
    const [status6] = await pollUntil(() => refused(b.url, ip(6)), ([status]) => status === 200, {
      timeoutMs: 10_000,
      intervalMs: 500,
    });
    assert.equal(status6, 200, "A's sessions still counted 10 s after it was killed");
  } finally {
    await a.stop();
    await b.stop();
  }

  // Per principal, with a token: one session at each process, the third is refused.
  const auth = { authorization: `Bearer ${TOKEN}` };
  const withToken = [...common.slice(2), "--kv", `${dir}/shared2.db`, "--token", TOKEN];
  const c = await spawnServer(withToken);
  const d = await spawnServer(withToken);
  try {
    await initializeRaw(c.url, "2025-06-18", { ...auth, ...ip(10) });
    await initializeRaw(d.url, "2025-06-18", { ...auth, ...ip(11) });
    const [status, message] = await refused(c.url, { ...auth, ...ip(12) });
    assert.equal(status, 429);
    assert.match(
      message,
      /holds 2 sessions across the servers sharing this KV.*--max-sessions-per-principal/,
    );
  } finally {
    await c.stop();
    await d.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("session caps hold under a burst of concurrent initializes at two processes: never more than the cap admitted", async () => {
  const dir = await Deno.makeTempDir();
  const common = [
    "--kv",
    `${dir}/race.db`,
    "--trusted-proxies",
    "127.0.0.1",
    "--max-sessions",
    "6",
    "--max-sessions-per-ip",
    "4",
    "--max-sessions-per-principal",
    "1000",
  ];
  const a = await spawnServer(common);
  const b = await spawnServer(common);
  try {
    // Each round: 12 initializes at each process at once, from two IPs (4 each at most), against
    // a total of 6. Every answer is read whole; only 200s count as admitted.
    const statuses = await Promise.all(
      Array.from({ length: 24 }, async (_, i) => {
        const res = await initialize(i % 2 === 0 ? a.url : b.url, ip(20 + (i % 4 < 2 ? 0 : 1)));
        await res.body?.cancel();
        return res.status;
      }),
    );
    const admitted = statuses.filter((s) => s === 200).length;
    assert.ok(
      statuses.every((s) => s === 200 || s === 429 || s === 503),
      `unexpected statuses ${statuses}`,
    );
    assert.ok(admitted <= 6, `${admitted} sessions admitted against --max-sessions 6`);
    // Reservations are exact, not merely safe: every place is given out.
    assert.equal(admitted, 6, `only ${admitted} of 6 places given out`);
  } finally {
    await a.stop();
    await b.stop();
  }
  const perIp = [...common.slice(2), "--kv", `${dir}/race2.db`, "--max-sessions", "1000"];
  const c = await spawnServer(perIp);
  const d = await spawnServer(perIp);
  try {
    const statuses = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const res = await initialize(i % 2 === 0 ? c.url : d.url, ip(30));
        await res.body?.cancel();
        return res.status;
      }),
    );
    const admitted = statuses.filter((s) => s === 200).length;
    assert.ok(
      admitted <= 4,
      `${admitted} sessions from one IP admitted against --max-sessions-per-ip 4`,
    );
    assert.equal(admitted, 4, `only ${admitted} of 4 places given out`);
  } finally {
    await c.stop();
    await d.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

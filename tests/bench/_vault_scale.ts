/**
 * Vault micro- and scale benchmarks, run in this process against a real KV
 * file: group-commit append throughput vs one atomic per entry, inclusion-proof
 * latency at 100k and 1M entries, and `warden verify` time on a 1M-entry export.
 */
import { createLedger, exportBundle, type Ledger } from "../../src/vault/mod.ts";
import { fromBase64, fromHex } from "../../src/lib/mod.ts";
import { generateSigner, verifyInclusion } from "../../src/merkle/mod.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

async function openLedger(path: string): Promise<{ kv: Deno.Kv; ledger: Ledger; vkey: string }> {
  const kv = await Deno.openKv(path);
  const signer = await generateSigner("warden/bench");
  return { kv, ledger: createLedger(kv, { origin: "warden/bench", signer }), vkey: signer.vkey };
}

function entry(i: number) {
  // Shaped like a sealed tool call.
  return {
    type: "tool_call",
    session: "2f1c7c3e-6a4b-4b7e-9d59-0d3c6a1e8b21",
    principal: "anonymous",
    transport: "mcp",
    tool: "calculate",
    args_sha256: "792dfe319c0c5e9e9e93efbf0f55b8ed9716e3a392844f331cf564b00023bf52",
    result_sha256: "4dc3297f719efc39c687db360634a3771fdc58a5b1b1022bd5d4a0cedac69b8d",
    outcome: "ok",
    latency_us: 100 + (i % 900),
  };
}

/** Appends [from, to) with up to `parallel` appends in flight (group commit does the batching). */
async function fill(ledger: Ledger, from: number, to: number, parallel = 4000): Promise<void> {
  for (let start = from; start < to; start += parallel) {
    const end = Math.min(to, start + parallel);
    await Promise.all(
      Array.from({ length: end - start }, (_, k) => ledger.append(entry(start + k))),
    );
  }
}

async function proofLatency(ledger: Ledger, size: number, samples: number) {
  const head = await ledger.head();
  const root = fromBase64(head.root);
  const times: number[] = [];
  let proofLength = 0;
  for (let s = 0; s < samples; s++) {
    const index = Math.floor(Math.random() * size);
    const t = performance.now();
    const proof = await ledger.inclusionProof(index, size);
    times.push(performance.now() - t);
    proofLength = proof.length;
    if (size === head.size) {
      const e = (await ledger.entry(index))!;
      verifyInclusion({ index, size, leafHash: fromHex(e.leafHash), proof, root });
    }
  }
  times.sort((a, b) => a - b);
  return {
    p50_ms: percentile(times, 0.5),
    p99_ms: percentile(times, 0.99),
    proof_nodes: proofLength,
  };
}

/** Runs the suite; returns Markdown lines and raw results. */
export async function runVaultScale(
  options: { entries: number; appendSamples: number },
): Promise<{ lines: string[]; results: Record<string, unknown> }> {
  const dir = await Deno.makeTempDir({ prefix: "warden-vault-bench-" });
  const lines: string[] = [];
  const results: Record<string, unknown> = {};
  try {
    // 1. Append throughput: one atomic per entry vs group commit, interleaved rounds.
    const perEntry: number[] = [];
    const batched: number[] = [];
    for (let round = 0; round < 3; round++) {
      {
        const { kv, ledger } = await openLedger(`${dir}/seq-${round}.db`);
        const t = performance.now();
        for (let i = 0; i < options.appendSamples; i++) await ledger.append(entry(i));
        perEntry.push(options.appendSamples / ((performance.now() - t) / 1000));
        kv.close();
      }
      {
        const { kv, ledger } = await openLedger(`${dir}/batch-${round}.db`);
        const n = options.appendSamples * 10;
        const t = performance.now();
        await fill(ledger, 0, n, 2000);
        batched.push(n / ((performance.now() - t) / 1000));
        kv.close();
      }
      console.error(
        `append round ${round + 1}/3: one atomic per entry ${perEntry[round].toFixed(0)}/s, ` +
          `group commit ${batched[round].toFixed(0)}/s`,
      );
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[1];
    const appendRatio = med(batched.map((b, i) => b / perEntry[i]));
    results.append = {
      per_entry_per_s: med(perEntry),
      batched_per_s: med(batched),
      ratio: appendRatio,
    };
    lines.push(
      "### vault append throughput (KV file, entries shaped like sealed calls)",
      "",
      "| mode | entries/s (median of 3) |",
      "|---|---|",
      `| one atomic per entry (sequential appends) | ${med(perEntry).toFixed(0)} |`,
      `| group commit (2,000 appends in flight) | ${med(batched).toFixed(0)} |`,
      "",
      `Ratio group commit / one atomic per entry: **${appendRatio.toFixed(1)}×** (target ≥ 8×).`,
      "",
    );

    // 2. Inclusion-proof latency at 100k and the full size, and verify time.
    const { kv, ledger, vkey } = await openLedger(`${dir}/scale.db`);
    const fillStart = performance.now();
    const checkpoints = [100_000, options.entries].filter((n) => n <= options.entries);
    const latency: Record<number, unknown> = {};
    let filled = 0;
    for (const size of checkpoints) {
      await fill(ledger, filled, size);
      filled = size;
      await ledger.signCheckpoint();
      console.error(
        `filled ${size} entries (${((performance.now() - fillStart) / 1000).toFixed(0)} s)`,
      );
      latency[size] = await proofLatency(ledger, size, 2000);
    }
    results.proof_latency = latency;
    lines.push(
      "### inclusion-proof latency (KV reads of O(log n) stored nodes, 2,000 random leaves)",
      "",
      "| log size | proof nodes | p50 ms | p99 ms |",
      "|---|---|---|---|",
      ...checkpoints.map((size) => {
        const l = latency[size] as { p50_ms: number; p99_ms: number; proof_nodes: number };
        return `| ${size.toLocaleString("en")} | ${l.proof_nodes} | ${l.p50_ms.toFixed(3)} | ${
          l.p99_ms.toFixed(3)
        } |`;
      }),
      "",
    );
    const bundle = `${dir}/bundle.json`;
    const file = await Deno.open(bundle, { write: true, create: true });
    const writer = file.writable.getWriter();
    const enc = new TextEncoder();
    const exportStart = performance.now();
    await exportBundle(ledger, { vkey, write: (c) => writer.write(enc.encode(c)) });
    await writer.close();
    const exportS = (performance.now() - exportStart) / 1000;
    kv.close();
    const verifyStart = performance.now();
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}main.ts`, "verify", bundle],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const verifyS = (performance.now() - verifyStart) / 1000;
    const summary = new TextDecoder().decode(out.stdout).trim();
    if (out.code !== 0) throw new Error(`verify failed: ${new TextDecoder().decode(out.stderr)}`);
    const bytes = (await Deno.stat(bundle)).size;
    results.verify = {
      entries: options.entries,
      seconds: verifyS,
      export_seconds: exportS,
      bundle_bytes: bytes,
    };
    lines.push(
      `### warden verify on a ${options.entries.toLocaleString("en")}-entry export`,
      "",
      `\`warden verify bundle.json\` (a fresh process, ${(bytes / 1e6).toFixed(0)} MB bundle): **${
        verifyS.toFixed(1)
      } s** (${(verifyS * 1e6 / options.entries).toFixed(1)} µs per entry); the export took ${
        exportS.toFixed(1)
      } s.`,
      "",
      "```",
      summary,
      "```",
      "",
    );
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return { lines, results };
}

/**
 * The gateway suite: `tools/call` of server-everything's `echo` direct,
 * through Warden as pure routing (governance floors and sealing off), through
 * Warden fully governed and sealed, and through a naive SDK relay (a Client
 * forwarding to an McpServer). Issue 11's targets: pure routing adds ≤ 0.3 ms
 * p50 at c=1 and beats the naive relay's throughput at c=32. Warden's default SSE responses are
 * compared with the relay's JSON ones (the row the issue names) and, like for like, with the
 * relay answering in SSE; Warden in JSON mode with the relay's JSON.
 */
import { freePort } from "../_helpers/upstreams.ts";

/** A variant as run.ts starts it. */
export interface GatewayVariant {
  readonly name: string;
  readonly args: string[];
  readonly mcp: boolean;
  readonly tool: string;
  readonly toolArgs: Record<string, unknown>;
  readonly expect: string;
}

/** The suite; `setup` writes the upstreams file into the suite's working directory. */
export function gatewaySuite(root: string, wardenArgs: (extra: string[]) => string[]) {
  const port = freePort();
  const url = `http://127.0.0.1:${port}/mcp`;
  const echo = { tool: "echo", toolArgs: { message: "hi" }, expect: "Echo: hi", mcp: true };
  const warden = (name: string, policy: string, extra: string[] = []): GatewayVariant => ({
    name,
    args: wardenArgs(["--upstreams", "upstreams.json", "--policy", policy, ...extra]),
    ...echo,
    tool: "ev__echo",
  });
  return {
    variants: [
      {
        name: "everything-direct",
        args: [`${root}tests/bench/_everything.ts`, String(port)],
        ...echo,
      },
      warden("warden-routing-only", "policy-floors-off.json", ["--sealing", "off"]),
      // Like for like: each response mode against the relay answering in the same mode.
      warden("warden-routing-only-json", "policy-floors-off.json", [
        "--sealing",
        "off",
        "--response-mode",
        "json",
      ]),
      warden("warden-governed-sealed", "policy-floors-on.json"),
      { name: "naive-sdk-relay", args: [`${root}tests/bench/_naive_relay.ts`, url], ...echo },
      {
        name: "naive-sdk-relay-sse",
        args: [`${root}tests/bench/_naive_relay.ts`, url, "sse"],
        ...echo,
      },
      // The floor of one extra hop: bytes forwarded, nothing parsed.
      { name: "raw-proxy", args: [`${root}tests/bench/_raw_proxy.ts`, url], ...echo },
    ] as GatewayVariant[],
    ratios: [
      ["warden-routing-only", "naive-sdk-relay", 1],
      ["warden-routing-only", "naive-sdk-relay-sse", 1],
      ["warden-routing-only-json", "naive-sdk-relay", 1],
      ["warden-routing-only", "everything-direct", 0],
      ["warden-governed-sealed", "warden-routing-only", 0],
      ["raw-proxy", "everything-direct", 0],
      ["warden-routing-only", "raw-proxy", 0],
    ] as [string, string, number][],
    // Issue 11: pure routing adds ≤ 0.3 ms p50 at c=1; governed and sealed adds ≤ one durable
    // commit + 0.5 ms over it. The raw proxy's row shows what one hop costs at all.
    latencyBudgets: [
      ["warden-routing-only", "everything-direct", 0.3, false],
      ["warden-routing-only-json", "everything-direct", 0.3, false],
      ["raw-proxy", "everything-direct", 0.3, false],
      ["warden-governed-sealed", "warden-routing-only", 0.5],
    ] as [string, string, number, boolean?][],
    setup(dir: string) {
      Deno.writeTextFileSync(
        `${dir}/upstreams.json`,
        JSON.stringify([{ name: "ev", transport: "streamable-http", url }]),
      );
    },
  };
}

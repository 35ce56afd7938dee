import assert from "node:assert/strict";
// @ts-types="@modelcontextprotocol/sdk/client/stdio"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { Client, dataOf } from "../_helpers/client.ts";
import { spawnServer } from "../_helpers/server.ts";
import { npmBinary, runWithTimeout } from "./_external.ts";

const INSPECTOR = "@modelcontextprotocol/inspector@2.12.0";
const MCP_REMOTE = "mcp-remote@0.15.1";

Deno.test("real client: MCP Inspector CLI lists tools and calls calculate", async () => {
  const home = await Deno.makeTempDir();
  const server = await spawnServer(["--kv", `${home}/warden.db`]);
  try {
    const env = { HOME: home, PATH: Deno.env.get("PATH") ?? "" };
    const list = await runWithTimeout(
      await npmBinary(INSPECTOR, [
        "--cli",
        `${server.url}/mcp`,
        "--method",
        "tools/list",
        "--format",
        "json",
      ]),
      { env, timeoutMs: 180_000 },
    );
    assert.equal(list.code, 0, list.stderr.slice(-2000));
    const tools = JSON.parse(list.stdout.trim().split("\n").pop()!).result.tools;
    assert.ok(tools.some((t: { name: string }) => t.name === "calculate"));

    const call = await runWithTimeout(
      await npmBinary(INSPECTOR, [
        "--cli",
        `${server.url}/mcp`,
        "--method",
        "tools/call",
        "--tool-name",
        "calculate",
        "--tool-arg",
        "expression=6*7",
        "--format",
        "json",
      ]),
      { env, timeoutMs: 180_000 },
    );
    assert.equal(call.code, 0, call.stderr.slice(-2000));
    const result = JSON.parse(call.stdout.trim().split("\n").pop()!).result;
    assert.deepEqual(result.structuredContent.data, { expression: "6*7", result: 42 });
  } finally {
    await server.stop();
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("real client: mcp-remote (Claude Desktop's bridge) proxies initialize, tools/list and tools/call", async () => {
  const home = await Deno.makeTempDir();
  const server = await spawnServer(["--kv", `${home}/warden.db`]);
  const cmd = await npmBinary(MCP_REMOTE, [`${server.url}/mcp`, "--transport", "http-only"]);
  const transport = new StdioClientTransport({
    command: cmd.command,
    args: cmd.args,
    env: {
      HOME: home,
      PATH: Deno.env.get("PATH") ?? "",
      MCP_REMOTE_CONFIG_DIR: `${home}/mcp-auth`,
      NO_COLOR: "1",
    },
    stderr: "pipe",
  });
  const client = new Client({ name: "desktop-like", version: "1" });
  try {
    await client.connect(transport);
    assert.equal(client.getServerVersion()?.name, "warden");
    const { tools } = await client.listTools();
    assert.ok(tools.some((t) => t.name === "calculate"));
    const r = await client.callTool({ name: "calculate", arguments: { expression: "2^8" } });
    assert.deepEqual(dataOf(r), { expression: "2^8", result: 256 });
    const err = await client.callTool({ name: "calculate", arguments: { expression: "1/0" } });
    assert.equal(err.isError, true);
  } finally {
    await client.close().catch(() => {});
    await server.stop();
    await Deno.remove(home, { recursive: true });
  }
});

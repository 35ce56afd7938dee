/**
 * mcp-remote (Claude Desktop's bridge) completes its own OAuth flow against
 * `--auth oauth`, headless: its "open the browser" step runs a script that
 * logs in and consents over HTTP. Then initialize, tools/list, tools/call.
 */
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { startServer } from "../_helpers/server.ts";
import { npmBinary } from "../e2e/_external.ts";

const MCP_REMOTE = "mcp-remote@0.15.1";
const USER = { username: "alice", password: "correct horse battery staple" };
const verifyPassword = (name: string, pw: string) =>
  Promise.resolve(name === USER.username && pw === USER.password);
const LOGIN = new URL("./_login_browser.ts", import.meta.url).pathname;

Deno.test("oauth: mcp-remote discovers, registers, logs in headless, then lists and calls", async () => {
  const home = await Deno.makeTempDir();
  const s = await startServer({ args: ["--auth", "oauth"], verifyPassword });
  // `open` (used by mcp-remote) runs xdg-open, which falls back to $BROWSER without a desktop.
  const bin = `${home}/bin`;
  await Deno.mkdir(bin);
  const script =
    `#!/bin/sh\n"${Deno.execPath()}" run -A "${LOGIN}" "$1" >>"${home}/browser.out" 2>&1 &\n`;
  for (const name of ["xdg-open", "browser"]) {
    await Deno.writeTextFile(`${bin}/${name}`, script);
    await Deno.chmod(`${bin}/${name}`, 0o755);
  }
  const cmd = await npmBinary(MCP_REMOTE, [`${s.url}/mcp`, "--transport", "http-only"]);
  const transport = new StdioClientTransport({
    command: cmd.command,
    args: cmd.args,
    env: {
      HOME: home,
      PATH: `${bin}:${Deno.env.get("PATH") ?? ""}`,
      BROWSER: `${bin}/browser`,
      MCP_REMOTE_CONFIG_DIR: `${home}/mcp-auth`,
      NO_COLOR: "1",
      WARDEN_TEST_USER: USER.username,
      WARDEN_TEST_PASSWORD: USER.password,
      WARDEN_TEST_BROWSER_LOG: `${home}/browser.log`,
    },
    stderr: "pipe",
  });
  const client = new Client({ name: "desktop-like", version: "1" });
  try {
    await client.connect(transport);
    assert.equal(client.getServerVersion()?.name, "warden");
    const log = await Deno.readTextFile(`${home}/browser.log`);
    assert.match(log, /\/authorize\?/, "the login went through the headless browser");
    const { tools } = await client.listTools();
    assert.ok(tools.some((t: { name: string }) => t.name === "calculate"));
    const r = await client.callTool({ name: "calculate", arguments: { expression: "2^8" } });
    assert.match(JSON.stringify(r.content), /256/);
  } finally {
    await client.close().catch(() => {});
    await s.close();
    await Deno.remove(home, { recursive: true });
  }
});

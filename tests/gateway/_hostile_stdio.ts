/**
 * A stdio MCP server (2025-06-18) whose `big` tool answers one line of about 24 MiB: past any
 * per-message bound. `small` answers "ok". For tests/gateway/stdio_message_cap_test.ts.
 * @module
 */
const encoder = new TextEncoder();
const write = async (text: string) => {
  const bytes = encoder.encode(text);
  for (let at = 0; at < bytes.length;) at += await Deno.stdout.write(bytes.subarray(at));
};
const answer = (id: unknown, result: unknown) =>
  write(JSON.stringify({ jsonrpc: "2.0", id, result }) + "\n");

let pending = "";
for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
  pending += chunk;
  for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n")) {
    const m = JSON.parse(pending.slice(0, nl));
    pending = pending.slice(nl + 1);
    if (m.id === undefined) continue;
    if (m.method === "initialize") {
      await answer(m.id, {
        protocolVersion: "2025-06-18",
        capabilities: { tools: {} },
        serverInfo: { name: "hostile-stdio", version: "1.0.0" },
      });
    } else if (m.method === "tools/list") {
      await answer(m.id, {
        tools: ["small", "big"].map((name) => ({
          name,
          description: `answers ${name}`,
          inputSchema: { type: "object" },
        })),
      });
    } else if (m.method === "tools/call" && m.params?.name === "big") {
      const head = `{"jsonrpc":"2.0","id":${
        JSON.stringify(m.id)
      },"result":{"content":[{"type":"text","text":"`;
      await write(head);
      const block = "a".repeat(1 << 20);
      for (let i = 0; i < 24; i++) await write(block);
      await write(`"}]}}\n`);
    } else if (m.method === "tools/call") {
      await answer(m.id, { content: [{ type: "text", text: "ok" }] });
    } else {
      await write(
        JSON.stringify({ jsonrpc: "2.0", id: m.id, error: { code: -32601, message: "no" } }) +
          "\n",
      );
    }
  }
}

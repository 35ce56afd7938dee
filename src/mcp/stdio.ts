/**
 * `warden stdio`: the same server over stdin/stdout for local clients. stdout
 * carries only JSON-RPC; every log line goes to stderr.
 */
import { StdioServerTransport } from "@modelcontextprotocol/server/stdio";
import type { McpServer } from "@modelcontextprotocol/server";
import type { Logger } from "../lib/mod.ts";

/**
 * Connects a server to this process's stdin/stdout and resolves when stdin
 * closes (the client went away).
 */
export async function serveStdio(server: McpServer, logger: Logger): Promise<void> {
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => {
    transport.onclose = () => resolve();
  });
  transport.onerror = (e: Error) => logger.warn("stdio transport error", { error: e.message });
  await server.connect(transport);
  // The SDK transport does not notice EOF on every runtime; end when stdin ends.
  const ended = new Promise<void>((resolve) => {
    const stdin =
      (globalThis as unknown as { process: { stdin: { on(e: string, f: () => void): void } } })
        .process.stdin;
    stdin.on("end", () => resolve());
    stdin.on("close", () => resolve());
  });
  logger.info("serving MCP over stdio");
  await Promise.race([closed, ended]);
  await server.close();
}

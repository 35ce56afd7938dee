/**
 * Runs tests/_helpers/auth_upstream.ts (an MCP upstream demanding a
 * credential and recording what it was sent) as its own process on a free port.
 */
import { freePort } from "./upstreams.ts";

/** Starts the upstream with `env` (EXPECT_BEARER, or EXPECT_HEADER and EXPECT_VALUE). */
export async function startAuthUpstream(env: Record<string, string>) {
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./auth_upstream.ts", import.meta.url).pathname],
    env: { PORT: String(port), ...env },
    stdout: "piped",
    stderr: "inherit",
    stdin: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!seen.includes("listening on port")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`auth upstream exited: ${seen}`);
    seen += value;
  }
  reader.releaseLock();
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    expect: async (bearer: string) => {
      const r = await fetch(`http://127.0.0.1:${port}/expect?bearer=${bearer}`, {
        method: "POST",
      });
      await r.body?.cancel();
    },
    seen: async () =>
      (await (await fetch(`http://127.0.0.1:${port}/seen`)).json()) as {
        authorization: string | null;
        header: string | null;
      }[],
    async stop() {
      child.kill("SIGKILL");
      await child.status;
      await child.stdout.cancel().catch(() => {});
    },
  };
}

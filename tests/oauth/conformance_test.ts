/**
 * The MCP conformance suite's authorization-server scenarios against
 * `--auth oauth`: `authorization-server-metadata-endpoint` and
 * `authorization-code-grant`. The suite prints the authorization URL and
 * waits on its own loopback callback; the test plays the browser (login and
 * consent over HTTP) and lets the redirect reach the suite's callback.
 */
import assert from "node:assert/strict";
import { startServer } from "../_helpers/server.ts";
import { browse } from "./_browser.ts";

const USER = { username: "alice", password: "correct horse battery staple" };
const verifyPassword = (name: string, pw: string) =>
  Promise.resolve(name === USER.username && pw === USER.password);

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

Deno.test("conformance: @modelcontextprotocol/conformance@0.2.0-alpha.12 authorization-server scenarios pass", async () => {
  const s = await startServer({ args: ["--auth", "oauth"], verifyPassword });
  const outDir = await Deno.makeTempDir();
  try {
    const callbackPort = freePort();
    const reg = await fetch(`${s.url}/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        client_name: "conformance",
        redirect_uris: [`http://127.0.0.1:${callbackPort}/callback`],
        token_endpoint_auth_method: "none",
      }),
    });
    const clientId = (await reg.json()).client_id as string;
    // Without --scenario the suite runs every authorization-server scenario in order; the
    // code grant reads the endpoints the metadata scenario found.
    for (const scenario of ["all"]) {
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "npm:@modelcontextprotocol/conformance@0.2.0-alpha.12",
          "authorization",
          "--url",
          s.url,
          "--client-id",
          clientId,
          "--resource",
          `${s.url}/mcp`,
          "--port",
          String(callbackPort),
          "--output-dir",
          outDir,
        ],
        stdout: "piped",
        stderr: "piped",
        stdin: "null",
        env: { NO_COLOR: "1" },
      }).spawn();
      let out = "";
      let browsed: Promise<void> | undefined;
      const reader = (async () => {
        for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
          out += chunk;
          const m = /(http:\/\/127\.0\.0\.1:\d+\/authorize\?\S+)/.exec(out);
          if (m && !browsed) {
            browsed = (async () => {
              const { location } = await browse(m[1], USER);
              // The redirect lands on the suite's own callback server, as a browser's would.
              const cb = await fetch(location);
              await cb.body?.cancel();
            })();
          }
        }
      })();
      const errText = new Response(child.stderr).text();
      const status = await child.status;
      await reader;
      if (browsed) await browsed;
      const err = await errText;
      assert.equal(status.code, 0, `${scenario} failed:\n${out}\n${err}`);
      assert.doesNotMatch(out, /FAILURE|FAILED/, out);
      assert.match(out, /✓ authorization-server-metadata-endpoint: [1-9]\d* passed, 0 failed/, out);
      assert.match(out, /✓ authorization-code-grant: [1-9]\d* passed, 0 failed/, out);
    }
  } finally {
    await s.close();
    await Deno.remove(outDir, { recursive: true });
  }
});

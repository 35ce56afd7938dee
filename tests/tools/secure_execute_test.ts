// deno-lint-ignore-file no-explicit-any -- envelopes and vault entries are probed field by field
/**
 * `secure_execute` kind code through a real server and the SDK's clients in
 * both eras: hostile programs are each contained with a clear failure, the
 * server answers another tool after every one, and the vault records the
 * code's digest, never the code.
 */
import assert from "node:assert/strict";
import { createToken } from "../../src/identity/mod.ts";
import { sha256HexOfText } from "../../src/lib/mod.ts";
import { connectModernAs, connectV1As } from "../_helpers/client.ts";
import { startServer, type TestServer } from "../_helpers/server.ts";

const POLICY = {
  rate_limits: { per_principal_per_minute: 0, per_ip_per_minute: 0 },
  execution: { code: { timeout_ms: 4000, heap_mb: 64, max_output_bytes: 32768 } },
  store_bodies: true,
};

async function vaultEntries(server: TestServer): Promise<any[]> {
  const head = await server.app.ledger.head();
  const out = [];
  for await (const e of server.app.ledger.entries(0, head.size)) {
    out.push(JSON.parse(new TextDecoder().decode(e.bytes)));
  }
  return out;
}

Deno.test({
  name: "secure_execute contains hostile programs in both eras; the server answers after each",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const server = await startServer({ policy: POLICY });
    const dir = await Deno.makeTempDir({ prefix: "warden_exec_" });
    const marker = `secret-${crypto.randomUUID()}`;
    await Deno.writeTextFile(`${dir}/secret.txt`, marker);
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    let accepted = 0;
    const accepting = (async () => {
      for await (const conn of listener) {
        accepted++;
        conn.close();
      }
    })();
    try {
      const { secret } = await createToken(server.kv, { name: "alice" });
      const hostile: [string, string, RegExp][] = [
        ["read a file", `console.log(Deno.readTextFileSync("${dir}/secret.txt"))`, /read access/],
        [
          "import a file",
          `import s from "${dir}/secret.txt" with { type: "text" }; console.log(s)`,
          /may not import local files/,
        ],
        [
          "socket to loopback",
          `await Deno.connect({ hostname: "127.0.0.1", port: ${port} })`,
          /net access to "127\.0\.0\.1:\d+"/,
        ],
        ["read env", `console.log(JSON.stringify(Deno.env.toObject()))`, /env access/],
        ["spawn", `new Deno.Command("/bin/sh", { args: ["-c", "id"] }).outputSync()`, /run access/],
        ["infinite loop", `while (true) {}`, /killed after the 4000 ms wall-clock limit/],
        [
          "allocate 4 GB",
          `const a = new Uint8Array(4 * 2 ** 30); a.fill(1); console.log("filled")`,
          /over the 1024 MiB process limit|out of memory/,
        ],
        [
          "print 100 MB",
          `const l = "y".repeat(1023); for (let i = 0; i < 100 * 1024; i++) console.log(l);`,
          /wrote more than 32768 bytes/,
        ],
      ];
      for (const connect of [connectV1As, connectModernAs]) {
        const client: any = await connect(server.url, secret, "secure-execute");
        try {
          const ok = await client.callTool({
            name: "secure_execute",
            arguments: { code: "const n: number = 6 * 7; console.log(n)" },
          });
          const env = ok.structuredContent;
          assert.equal(env.policy_verdict, "SEAL", JSON.stringify(ok));
          assert.equal(env.data.status, "OK");
          assert.equal(env.data.stdout, "42\n");
          assert.equal(env.data.runtime.permissions, "none");
          for (const [what, code, failure] of hostile) {
            const r = await client.callTool({ name: "secure_execute", arguments: { code } });
            const data = r.structuredContent?.data;
            assert.equal(data?.status, "ERROR", `${what}: ${JSON.stringify(r).slice(0, 400)}`);
            assert.match(data.failure, failure, what);
            assert.match(r.content[0].text, /^SEAL · Program failed: /, what);
            assert.doesNotMatch(JSON.stringify(r), new RegExp(marker), what);
            // The server is unaffected: another tool answers at once.
            const after = await client.callTool({
              name: "calculate",
              arguments: { expression: "2+2" },
            });
            assert.equal(after.structuredContent.data.result, 4, `after ${what}`);
          }
        } finally {
          await client.close();
        }
      }
      assert.equal(accepted, 0, "no program reached the loopback listener");
      // The vault has the code's digest and the output's size, never their text.
      const entries = (await vaultEntries(server)).filter((e) => e.tool === "secure_execute");
      const code = hostile[0][1];
      const sealed = entries.find((e) =>
        e.type === "tool_call" &&
        JSON.parse(e.body ?? "{}").arguments?.code_sha256 === sha256HexOfText(code)
      );
      assert.ok(sealed, "the call on the read-a-file program is sealed by the code's digest");
      assert.doesNotMatch(JSON.stringify(entries), /readTextFileSync|"stdout":"42/);
    } finally {
      listener.close();
      await accepting.catch(() => {});
      await Deno.remove(dir, { recursive: true });
      await server.close();
    }
  },
});

Deno.test({
  name: "secure_execute on Deno Deploy, or disabled by policy, is refused (VOID) with the reason",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    for (
      const [options, reason] of [
        [{ env: { DENO_DEPLOYMENT_ID: "test-deployment" } }, /cannot run on Deno Deploy/],
        [{ policy: { execution: { code: { enabled: false } } } }, /execution\.code\.enabled/],
      ] as const
    ) {
      const server = await startServer(options);
      try {
        const res = await server.app.registry.call("secure_execute", { code: "console.log(1)" }, {
          principal: "anonymous",
          transport: "test",
        });
        assert.equal(res.verdict, "VOID");
        assert.match(res.text, reason);
        const vital = await server.app.registry.call("get_time", {}, { principal: "anonymous" });
        assert.equal(vital.isError, false);
      } finally {
        await server.close();
      }
    }
  },
});

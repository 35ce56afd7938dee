// deno-lint-ignore-file no-explicit-any -- MCP results are probed field by field
/**
 * Upstream resources and prompts pass through Warden beside its own:
 * server-everything (a real upstream over Streamable HTTP) lists resources
 * and prompts; through Warden they appear as `upstream://ev/<uri>` and
 * `ev__<prompt>`, read and get route back, every read/get is sealed with a
 * digest (never the content), and a principal whose roles grant nothing of
 * `ev__` sees none of them and cannot read them — in both eras. Resource
 * links and embedded resources in ev's tool results name the same
 * `upstream://ev/` URIs, and read back through Warden.
 */
import assert from "node:assert/strict";
import { parseUpstreamUri, upstreamUri } from "../../src/mcp/mod.ts";
import { createToken } from "../../src/identity/mod.ts";
import { connectModernAs, connectV1As } from "../_helpers/client.ts";
import { sealedEntries } from "../_helpers/server.ts";
import { withEverything } from "../_helpers/upstreams.ts";

Deno.test("content: upstream URIs are namespaced and parsed back", () => {
  assert.equal(upstreamUri("ev", "demo://resource/1"), "upstream://ev/demo://resource/1");
  assert.deepEqual(parseUpstreamUri("upstream://ev/demo://resource/1"), {
    server: "ev",
    uri: "demo://resource/1",
  });
  for (
    const bad of ["upstream://", "upstream://ev", "upstream://ev/", "upstream:///x", "demo://x"]
  ) {
    assert.equal(parseUpstreamUri(bad), undefined, bad);
  }
});

const POLICY = {
  roles: {
    ops: { tools: ["get_time", "ev__*"] },
    dev: { tools: ["get_time", "ev__echo"] },
  },
  rate_limits: { per_principal_per_minute: 0, per_ip_per_minute: 0 },
};

Deno.test({
  name: "content: upstream resources and prompts through Warden, by role, sealed, in both eras",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withEverything({
      policy: POLICY,
    }, async (server) => {
      const alice = await createToken(server.kv, { name: "alice", roles: ["ops"] });
      const bob = await createToken(server.kv, { name: "bob", roles: ["dev"] });
      const base = server.url;
      for (
        const [era, connect] of [
          ["2025 session", connectV1As],
          ["2026-07-28", connectModernAs],
        ] as const
      ) {
        const a: any = await connect(base, alice.secret);
        const b: any = await connect(base, bob.secret);
        try {
          const resources = (await a.listResources()).resources as any[];
          const own = resources.filter((r) => !r.uri.startsWith("upstream://"));
          const theirs = resources.filter((r) => r.uri.startsWith("upstream://ev/"));
          assert.ok(own.length > 0, `${era}: Warden's own resources stay`);
          assert.ok(theirs.length > 0, `${era}: ${JSON.stringify(resources).slice(0, 500)}`);
          const first = theirs[0];
          const read = await a.readResource({ uri: first.uri });
          assert.equal(read.contents[0].uri, first.uri, era);
          assert.ok(
            (read.contents[0].text ?? read.contents[0].blob ?? "").length > 0,
            `${era}: ${JSON.stringify(read).slice(0, 300)}`,
          );

          // A tool result's resource links and embedded resources name Warden's URIs, which
          // read back through Warden (ev's own URIs would name nothing a client can read here).
          const links: any = await a.callTool({
            name: "ev__get-resource-links",
            arguments: { count: 2 },
          });
          const linked = (links.content as any[]).filter((c) => c.type === "resource_link");
          assert.equal(linked.length, 2, `${era}: ${JSON.stringify(links).slice(0, 500)}`);
          for (const link of linked) {
            assert.match(link.uri, /^upstream:\/\/ev\/demo:\/\/resource\/dynamic\//, era);
            const back = await a.readResource({ uri: link.uri });
            assert.equal(back.contents[0].uri, link.uri, era);
            assert.ok((back.contents[0].text ?? back.contents[0].blob ?? "").length > 0, era);
          }
          const ref: any = await a.callTool({
            name: "ev__get-resource-reference",
            arguments: { resourceType: "Text", resourceId: 3 },
          });
          const embedded = (ref.content as any[]).find((c) => c.type === "resource");
          assert.equal(
            embedded?.resource?.uri,
            "upstream://ev/demo://resource/dynamic/text/3",
            `${era}: ${JSON.stringify(ref).slice(0, 500)}`,
          );
          const refBack = await a.readResource({ uri: embedded.resource.uri });
          // The upstream stamps each read of a dynamic resource with the time of day
          // ("… created at 2:30:01 PM"): two reads straddling a second differ only there.
          const untimed = (text: string) => text.replace(/created at .*$/, "created at <time>");
          assert.equal(untimed(refBack.contents[0].text), untimed(embedded.resource.text), era);
          assert.match(refBack.contents[0].text, /^Resource 3: This is a plaintext resource/);

          const prompts = (await a.listPrompts()).prompts as any[];
          const upstreamPrompts = prompts.filter((p) => p.name.startsWith("ev__"));
          assert.ok(upstreamPrompts.length > 0, `${era}: ${JSON.stringify(prompts)}`);
          assert.ok(prompts.some((p) => !p.name.startsWith("ev__")), `${era}: own prompt stays`);
          const simple = upstreamPrompts.find((p) =>
            !(p.arguments ?? []).some((x: any) => x.required)
          );
          assert.ok(simple, `${era}: a prompt without required arguments`);
          const got = await a.getPrompt({ name: simple.name });
          assert.ok(got.messages.length > 0, era);

          // bob's roles grant nothing of ev__ beyond one tool: no upstream content at all.
          const bobResources = (await b.listResources()).resources as any[];
          assert.ok(!bobResources.some((r) => r.uri.startsWith("upstream://")), era);
          const bobPrompts = (await b.listPrompts()).prompts as any[];
          assert.ok(!bobPrompts.some((p) => p.name.startsWith("ev__")), era);
          await assert.rejects(b.readResource({ uri: first.uri }), /not found/, era);
          await assert.rejects(b.getPrompt({ name: simple.name }), /not found/, era);
          // Unknown upstreams and malformed URIs are a clean -32602.
          await assert.rejects(a.readResource({ uri: "upstream://nope/x://y" }), /not found/);
        } finally {
          await a.close();
          await b.close();
        }
      }
      const reads = await sealedEntries(server, "upstream_resource_read");
      const gets = await sealedEntries(server, "upstream_prompt_get");
      assert.equal(reads.length, 2 * 4, "per era: one listed, two linked, one embedded");
      assert.equal(gets.length, 2);
      for (const r of [...reads, ...gets]) {
        assert.equal(r.upstream, "ev");
        assert.equal(r.principal, "alice");
        assert.match(r.result_sha256, /^[0-9a-f]{64}$/);
        assert.equal(r.contents, undefined, "the content itself is never sealed");
      }
    });
  },
});

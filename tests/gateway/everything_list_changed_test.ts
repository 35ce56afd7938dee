// deno-lint-ignore-file no-explicit-any -- results are probed field by field
/**
 * A real server-everything changes its resource list while Warden is
 * connected: its `gzip-file-as-resource` tool (called through Warden, on a
 * data: URI so nothing leaves the machine) registers a session resource and
 * ev sends `notifications/resources/list_changed` to Warden's pooled session.
 * Warden's own clients are told — a 2025 session (v1 Client) and a
 * 2026-07-28 listener (v2 Client, subscriptions/listen) — and the new
 * resource is listed and read back in the `upstream://ev/` space.
 */
import assert from "node:assert/strict";
// @ts-types="@modelcontextprotocol/sdk/types"
import { ResourceListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { connectStreamable } from "../_helpers/client.ts";
import { withEverything } from "../_helpers/upstreams.ts";

function within(p: Promise<void>, what: string): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no ${what} in 10 s`)), 10_000);
    }),
  ]).finally(() => clearTimeout(timer));
}

Deno.test({
  name: "gateway: server-everything's resources list_changed reaches both eras of Warden's clients",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withEverything({}, async (server) => {
      const { client } = await connectStreamable(server.url);
      const modernTold = Promise.withResolvers<void>();
      const modern = new Client({ name: "listener", version: "1.0.0" }, {
        versionNegotiation: { mode: { pin: "2026-07-28" } },
        listChanged: {
          resources: { autoRefresh: false, onChanged: () => modernTold.resolve() },
        },
      });
      await modern.connect(new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`)));
      try {
        const told = Promise.withResolvers<void>();
        client.setNotificationHandler(ResourceListChangedNotificationSchema, () => told.resolve());
        const uri = "upstream://ev/demo://resource/session/warden-note.txt.gz";
        const before = (await client.listResources()).resources.map((r) => r.uri);
        assert.ok(!before.includes(uri), before.join(","));
        const made: any = await client.callTool({
          name: "ev__gzip-file-as-resource",
          arguments: {
            name: "warden-note.txt.gz",
            data: "data:text/plain;base64,aGVsbG8gd2FyZGVu",
            outputType: "resourceLink",
          },
        });
        assert.equal(made.isError, undefined, JSON.stringify(made));
        assert.equal(made._meta["warden/governance"].policy_verdict, "SEAL", JSON.stringify(made));
        await within(told.promise, "2025 resources/list_changed");
        await within(modernTold.promise, "2026 resources/list_changed");
        const after = (await client.listResources()).resources.map((r) => r.uri);
        assert.ok(after.includes(uri), after.join(","));
        const read: any = await client.readResource({ uri });
        assert.equal(read.contents[0].uri, uri);
        assert.equal(read.contents[0].mimeType, "application/gzip");
        const bytes = Uint8Array.from(atob(read.contents[0].blob), (c) => c.charCodeAt(0));
        const text = await new Response(
          new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip")),
        ).text();
        assert.equal(text, "hello warden");
      } finally {
        await client.close();
        await modern.close();
      }
    });
  },
});

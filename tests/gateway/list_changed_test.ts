// deno-lint-ignore-file no-explicit-any -- results are probed field by field
/**
 * An upstream that adds a tool while connected sends `tools/list_changed`;
 * Warden re-lists that upstream, the new tool appears as `<server>__<tool>`
 * (pinned, governed), and Warden's own clients are notified: a 2025 session
 * (v1 Client) and a 2026-07-28 listener (v2 Client, subscriptions/listen).
 * The same upstream then adds a prompt and a resource: its prompts and
 * resources list_changed reach both eras, and the new prompt routes.
 */
import assert from "node:assert/strict";
// @ts-types="@modelcontextprotocol/sdk/types"
import {
  PromptListChangedNotificationSchema,
  ResourceListChangedNotificationSchema,
  ToolListChangedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { connectStreamable } from "../_helpers/client.ts";
import { startServer } from "../_helpers/server.ts";
import { denoDir } from "../_helpers/upstreams.ts";

const UPSTREAM = new URL("../_helpers/changing_upstream.ts", import.meta.url).pathname;

Deno.test({
  name:
    "gateway: an upstream's tools, prompts and resources list_changed re-list it and notify Warden's clients",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const server = await startServer({
      upstreams: [{
        name: "chg",
        transport: "stdio",
        command: Deno.execPath(),
        args: ["run", "-A", "--quiet", UPSTREAM],
        env: { GROW: "1", DENO_DIR: denoDir() },
        // This project's own test server: trusted, run unsandboxed.
        sandbox: { enabled: false },
      }],
    });
    const { client } = await connectStreamable(server.url);
    const modernNotified = Promise.withResolvers<string[]>();
    const modernPrompts = Promise.withResolvers<void>();
    const modernResources = Promise.withResolvers<void>();
    const modern = new Client({ name: "listener", version: "1.0.0" }, {
      versionNegotiation: { mode: { pin: "2026-07-28" } },
      listChanged: {
        tools: {
          onChanged: (_error, tools) => {
            const names = (tools ?? []).map((t) => t.name);
            if (names.includes("chg__extra")) modernNotified.resolve(names);
          },
        },
        prompts: { autoRefresh: false, onChanged: () => modernPrompts.resolve() },
        resources: { autoRefresh: false, onChanged: () => modernResources.resolve() },
      },
    });
    await modern.connect(new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`)));
    try {
      assert.equal(modern.getNegotiatedProtocolVersion(), "2026-07-28");
      const before = (await client.listTools()).tools.map((t) => t.name);
      assert.ok(before.includes("chg__grow"), before.join(","));
      assert.ok(!before.includes("chg__extra"));
      const notified = Promise.withResolvers<void>();
      client.setNotificationHandler(ToolListChangedNotificationSchema, () => notified.resolve());
      const promptsNotified = Promise.withResolvers<void>();
      const resourcesNotified = Promise.withResolvers<void>();
      client.setNotificationHandler(
        PromptListChangedNotificationSchema,
        () => promptsNotified.resolve(),
      );
      client.setNotificationHandler(
        ResourceListChangedNotificationSchema,
        () => resourcesNotified.resolve(),
      );
      // Served by a GET stream: open it by making the first request after the handler is set.
      const grown: any = await client.callTool({ name: "chg__grow", arguments: {} });
      assert.equal(grown._meta["warden/governance"].policy_verdict, "SEAL", JSON.stringify(grown));
      const timer = setTimeout(() => notified.reject(new Error("no list_changed in 10 s")), 10_000);
      await notified.promise.finally(() => clearTimeout(timer));
      const t2 = setTimeout(() => modernNotified.reject(new Error("no 2026 list_changed")), 10_000);
      assert.ok(
        (await modernNotified.promise.finally(() => clearTimeout(t2))).includes("chg__extra"),
      );
      // The upstream's prompts and resources list_changed reach both eras too.
      const within = (p: Promise<void>, what: string) => {
        let timer: ReturnType<typeof setTimeout> | undefined;
        return Promise.race([
          p,
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`no ${what} in 10 s`)), 10_000);
          }),
        ]).finally(() => clearTimeout(timer));
      };
      await within(promptsNotified.promise, "2025 prompts/list_changed");
      await within(resourcesNotified.promise, "2025 resources/list_changed");
      await within(modernPrompts.promise, "2026 prompts/list_changed");
      await within(modernResources.promise, "2026 resources/list_changed");
      const prompts = (await client.listPrompts()).prompts.map((p) => p.name);
      assert.ok(prompts.includes("chg__extra-prompt"), prompts.join(","));
      const extraPrompt: any = await client.getPrompt({ name: "chg__extra-prompt" });
      assert.equal(extraPrompt.messages[0].content.text, "extra prompt");
      const resources = (await client.listResources()).resources.map((r) => r.uri);
      assert.ok(resources.includes("upstream://chg/changing://extra"), resources.join(","));
      const after = (await client.listTools()).tools.map((t) => t.name);
      assert.ok(after.includes("chg__extra"), after.join(","));
      const extra: any = await client.callTool({ name: "chg__extra", arguments: {} });
      assert.equal(extra.content[0].text, "extra exists");
      assert.equal(extra._meta["warden/governance"].policy_verdict, "SEAL");
      const status = await (await fetch(`${server.url}/api/servers/chg`)).json();
      assert.equal(status.tools.find((t: any) => t.upstream_tool === "extra").state, "ok");
    } finally {
      await client.close();
      await modern.close();
      await server.close();
    }
  },
});

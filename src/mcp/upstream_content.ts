/**
 * Upstream resources and prompts, passed through beside Warden's own:
 * `resources/list` and `prompts/list` add every upstream's (fetched on
 * demand, in parallel, each within the upstream's timeout; an upstream that
 * fails is left out of that answer and logged, never failing the list), with
 * resource URIs namespaced as `upstream://<server>/<original URI>` and
 * prompts named `<prefix><name>` like the upstream's tools.
 * `resources/read` and `prompts/get` route back by that name.
 *
 * Access follows the policy's role grants: a principal sees and reads an
 * upstream's resources when it may call `<prefix>resources/read`, and its
 * prompts when it may call `<prefix>prompts/get` (so a grant of `ev__*`
 * covers both, and a principal without grants sees none). Every read and get
 * is sealed (`upstream_resource_read`, `upstream_prompt_get`: server, URI or
 * name, principal, the SHA-256 of the answer — never its content).
 *
 * @module
 */
import {
  type McpServer,
  ProtocolError,
  ProtocolErrorCode,
  type ServerContext,
} from "@modelcontextprotocol/server";
import type { UpstreamContent } from "../gateway/mod.ts";
import { type Logger, sha256HexOfText } from "../lib/mod.ts";
import type { CallerOf, ServerExtension } from "./server.ts";

/** The scheme upstream resource URIs are namespaced under. */
export const UPSTREAM_URI_SCHEME = "upstream://";
/** An upstream answer larger than this (as JSON) is refused rather than relayed. */
export const MAX_UPSTREAM_CONTENT_BYTES = 4 * 1024 * 1024;
const MAX_ITEMS_PER_UPSTREAM = 1000;
const MAX_URI_CHARS = 4096;

/** What the extension needs: the gateway's sources, role checks, the vault. */
export interface UpstreamContentDeps {
  readonly content: () => readonly UpstreamContent[];
  /** The upstream owning an exposed prompt name (the gateway's catalogue), if any. */
  readonly prompt: (name: string) => { source: UpstreamContent; prompt: string } | undefined;
  /** Tells the catalogue what an upstream just listed, so a new prompt becomes routable. */
  readonly notePrompts: (server: string, names: readonly string[]) => void;
  readonly permits: (principal: string, name: string) => boolean;
  readonly record: (fields: Record<string, unknown>) => Promise<unknown>;
  readonly logger: Logger;
}

/** `upstream://ev/demo://x` → `{ server: "ev", uri: "demo://x" }`; undefined for other URIs. */
export function parseUpstreamUri(uri: string): { server: string; uri: string } | undefined {
  if (!uri.startsWith(UPSTREAM_URI_SCHEME)) return undefined;
  const rest = uri.slice(UPSTREAM_URI_SCHEME.length);
  const slash = rest.indexOf("/");
  if (slash <= 0 || slash === rest.length - 1) return undefined;
  return { server: rest.slice(0, slash), uri: rest.slice(slash + 1) };
}

/** The namespaced form of an upstream's resource URI. */
export function upstreamUri(server: string, uri: string): string {
  return `${UPSTREAM_URI_SCHEME}${server}/${uri}`;
}

type RawHandler = (request: unknown, ctx: ServerContext) => Promise<Record<string, unknown>>;

/** Refuses an upstream answer larger (as JSON) than is relayed. */
function checkSize(answer: Record<string, unknown>, server: string): void {
  const text = JSON.stringify(answer);
  if (text.length > MAX_UPSTREAM_CONTENT_BYTES) {
    throw new ProtocolError(
      ProtocolErrorCode.InternalError,
      `upstream ${server} answered ${text.length} bytes, over the ${MAX_UPSTREAM_CONTENT_BYTES} relayed`,
    );
  }
}

/** Rewrites the `uri` of every resource in a list, read result or prompt message. */
function rewriteUris(value: unknown, server: string): unknown {
  if (Array.isArray(value)) return value.map((v) => rewriteUris(v, server));
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = (k === "uri" || k === "uriTemplate") && typeof v === "string"
      ? upstreamUri(server, v)
      : rewriteUris(v, server);
  }
  return out;
}

function invalid(message: string): never {
  throw new ProtocolError(ProtocolErrorCode.InvalidParams, message);
}

/**
 * The extension: wraps the resources and prompts handlers Warden's own
 * extension installed, so it must be applied after it.
 */
export function upstreamContentExtension(deps: UpstreamContentDeps): ServerExtension {
  return (server: McpServer, caller: CallerOf) => {
    const low = server.server as unknown as {
      _getRequestHandler(method: string): RawHandler | undefined;
    };
    const own = {
      listResources: low._getRequestHandler("resources/list"),
      readResource: low._getRequestHandler("resources/read"),
      listPrompts: low._getRequestHandler("prompts/list"),
      getPrompt: low._getRequestHandler("prompts/get"),
    };
    const raw = (ctx: ServerContext, method: string, params: unknown) => ({
      jsonrpc: "2.0",
      id: ctx.mcpReq.id,
      method,
      ...(params !== undefined ? { params } : {}),
    });
    const visible = (principal: string, what: "resources/read" | "prompts/get") =>
      deps.content().filter((s) => deps.permits(principal, `${s.prefix}${what}`));

    /**
     * One read or get's answer, size-checked, with its URIs namespaced, sealed by the digest
     * of what the caller receives.
     */
    async function relay(
      source: UpstreamContent,
      answer: Record<string, unknown>,
      fields: Record<string, unknown>,
    ): Promise<Record<string, unknown>> {
      checkSize(answer, source.server);
      const result = rewriteUris(answer, source.server) as Record<string, unknown>;
      await deps.record({
        ...fields,
        upstream: source.server,
        result_sha256: sha256HexOfText(JSON.stringify(result)),
      });
      return result;
    }

    async function gather(
      sources: readonly UpstreamContent[],
      method: "resources/list" | "prompts/list",
      pick: (answer: Record<string, unknown>, s: UpstreamContent) => unknown[],
    ): Promise<unknown[]> {
      const lists = await Promise.all(sources.map(async (s) => {
        try {
          const answer = await s.request(method, undefined);
          if (answer === null) return [];
          checkSize(answer, s.server);
          return pick(answer, s).slice(0, MAX_ITEMS_PER_UPSTREAM);
        } catch (e) {
          deps.logger.warn("upstream list left out", {
            upstream: s.server,
            method,
            error: e,
          });
          return [];
        }
      }));
      return lists.flat();
    }

    server.server.setRequestHandler("resources/list", async (request, ctx) => {
      const mine = own.listResources
        ? await own.listResources(raw(ctx, "resources/list", request.params), ctx)
        : { resources: [] };
      const theirs = await gather(
        visible(caller(ctx), "resources/read"),
        "resources/list",
        (a, s) => rewriteUris(a.resources ?? [], s.server) as unknown[],
      );
      return {
        ...mine,
        resources: [...(mine.resources as unknown[] ?? []), ...theirs],
      } as never;
    });

    server.server.setRequestHandler("resources/read", async (request, ctx) => {
      const uri = String(request.params.uri ?? "");
      const target = parseUpstreamUri(uri);
      if (target === undefined) {
        if (!own.readResource) invalid(`Resource ${uri.slice(0, 200)} not found`);
        return await own.readResource(raw(ctx, "resources/read", request.params), ctx) as never;
      }
      if (uri.length > MAX_URI_CHARS) invalid(`resource URI over ${MAX_URI_CHARS} characters`);
      const principal = caller(ctx);
      const source = visible(principal, "resources/read").find((s) => s.server === target.server);
      // An upstream the caller may not read is reported exactly like one that does not exist.
      if (!source) invalid(`Resource ${uri.slice(0, 200)} not found`);
      const answer = await source.request("resources/read", { uri: target.uri });
      if (answer === null) invalid(`upstream ${target.server} serves no resources`);
      return await relay(source, answer, {
        type: "upstream_resource_read",
        uri: uri.slice(0, 500),
        principal,
      }) as never;
    });

    server.server.setRequestHandler("prompts/list", async (request, ctx) => {
      const mine = own.listPrompts
        ? await own.listPrompts(raw(ctx, "prompts/list", request.params), ctx)
        : { prompts: [] };
      const ownNames = new Set(
        ((mine.prompts ?? []) as { name?: unknown }[]).map((p) => String(p?.name)),
      );
      const theirs = await gather(
        visible(caller(ctx), "prompts/get"),
        "prompts/list",
        (a, s) => {
          const listed = Array.isArray(a.prompts) ? a.prompts as Record<string, unknown>[] : [];
          deps.notePrompts(s.server, listed.map((p) => p?.name as string));
          // Only the names the catalogue gives this upstream: a name Warden or an upstream
          // ranked before it holds is not listed twice (and would not route here).
          return listed
            .map((p) => ({ ...p, name: `${s.prefix}${p.name}` }))
            .filter((p) =>
              !ownNames.has(p.name) && deps.prompt(p.name)?.source.server === s.server
            );
        },
      );
      return { ...mine, prompts: [...(mine.prompts as unknown[] ?? []), ...theirs] } as never;
    });

    server.server.setRequestHandler("prompts/get", async (request, ctx) => {
      const name = String(request.params.name ?? "");
      const principal = caller(ctx);
      // The catalogue routes every exposed name, empty prefixes included; it never hands out
      // Warden's own prompt names.
      const route = deps.prompt(name);
      if (!route) {
        if (!own.getPrompt) invalid(`Prompt ${name.slice(0, 200)} not found`);
        return await own.getPrompt(raw(ctx, "prompts/get", request.params), ctx) as never;
      }
      const source = route.source;
      if (!deps.permits(principal, `${source.prefix}prompts/get`)) {
        invalid(`Prompt ${name.slice(0, 200)} not found`);
      }
      const answer = await source.request("prompts/get", {
        name: route.prompt,
        ...(request.params.arguments ? { arguments: request.params.arguments } : {}),
      });
      if (answer === null) invalid(`upstream ${source.server} serves no prompts`);
      return await relay(source, answer, {
        type: "upstream_prompt_get",
        prompt: name.slice(0, 200),
        principal,
      }) as never;
    });
  };
}

/**
 * Upstream resource URIs, namespaced `upstream://<server>/<original URI>`:
 * the one form for resources/list, resources/read and tool results alike, so
 * a `resource_link` block or an embedded `resource` in an upstream's
 * `tools/call` result names a URI a client can read back through Warden
 * (src/mcp/ routes `upstream://` reads back to the upstream).
 *
 * @module
 */
import type { CallToolResult } from "@modelcontextprotocol/client";

/** The scheme upstream resource URIs are namespaced under. */
export const UPSTREAM_URI_SCHEME = "upstream://";

/** The namespaced form of an upstream's resource URI. */
export function upstreamUri(server: string, uri: string): string {
  return `${UPSTREAM_URI_SCHEME}${server}/${uri}`;
}

/** `upstream://ev/demo://x` → `{ server: "ev", uri: "demo://x" }`; undefined for other URIs. */
export function parseUpstreamUri(uri: string): { server: string; uri: string } | undefined {
  if (!uri.startsWith(UPSTREAM_URI_SCHEME)) return undefined;
  const rest = uri.slice(UPSTREAM_URI_SCHEME.length);
  const slash = rest.indexOf("/");
  if (slash <= 0 || slash === rest.length - 1) return undefined;
  return { server: rest.slice(0, slash), uri: rest.slice(slash + 1) };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** One content block with its resource URI namespaced (`resource_link`, embedded `resource`). */
function namespaceBlock(block: unknown, server: string): unknown {
  if (!isObject(block)) return block;
  if (block.type === "resource_link" && typeof block.uri === "string") {
    return { ...block, uri: upstreamUri(server, block.uri) };
  }
  if (block.type === "resource" && isObject(block.resource)) {
    const resource = block.resource;
    if (typeof resource.uri === "string") {
      return { ...block, resource: { ...resource, uri: upstreamUri(server, resource.uri) } };
    }
  }
  return block;
}

/**
 * A `tools/call` result with the URIs of its resource links and embedded
 * resources namespaced as resources/list namespaces them; everything else
 * (text, `structuredContent`, `_meta`) untouched. The same object when no
 * block names a resource.
 *
 * @example
 * ```ts
 * import { namespaceResultUris } from "./upstream_uri.ts";
 * const out = namespaceResultUris(
 *   { content: [{ type: "resource_link", uri: "demo://a", name: "a" }] },
 *   "ev",
 * );
 * if ((out.content[0] as { uri: string }).uri !== "upstream://ev/demo://a") throw new Error();
 * ```
 */
export function namespaceResultUris(result: CallToolResult, server: string): CallToolResult {
  const content = result.content as unknown;
  if (!Array.isArray(content)) return result;
  if (!content.some((b) => isObject(b) && (b.type === "resource_link" || b.type === "resource"))) {
    return result;
  }
  return { ...result, content: content.map((b) => namespaceBlock(b, server)) } as CallToolResult;
}

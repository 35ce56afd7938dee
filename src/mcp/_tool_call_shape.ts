/**
 * The JSON shape both direct `tools/call` paths start from (the 2026-07-28 one in modern.ts and
 * the 2025 session one in session_direct.ts): each then adds its era's own conditions.
 * @module
 */

/** An object that is not an array or null. */
export const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

/** Whether every key of `o` is one of `allowed`. */
export const onlyKeys = (o: Record<string, unknown>, allowed: ReadonlySet<string>): boolean => {
  for (const k in o) if (!allowed.has(k)) return false;
  return true;
};

const REQUEST_KEYS = new Set(["jsonrpc", "id", "method", "params"]);
const PARAMS_KEYS = new Set(["name", "arguments", "_meta"]);

/** The parts of a plain `tools/call` message. */
export interface ToolCallShape {
  readonly id: string | number;
  readonly name: string;
  readonly args: Record<string, unknown> | undefined;
  /** `params._meta` as sent (each path checks it its own way). */
  readonly meta: unknown;
}

/**
 * A single JSON-RPC `tools/call` request with nothing but `jsonrpc`, `id` (a string of at most
 * 256 characters or a safe integer) and `params` holding a name of at most 256 characters, an
 * arguments object or none, and `_meta`; undefined for anything else.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { toolCallShape } from "./_tool_call_shape.ts";
 * const call = { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "calculate" } };
 * assert.equal(toolCallShape(call)?.name, "calculate");
 * assert.equal(toolCallShape({ ...call, extra: 1 }), undefined);
 * ```
 */
export function toolCallShape(body: unknown): ToolCallShape | undefined {
  if (!isPlainObject(body) || !onlyKeys(body, REQUEST_KEYS)) return;
  if (body.jsonrpc !== "2.0" || body.method !== "tools/call") return;
  const id = body.id;
  if (!(typeof id === "string" && id.length <= 256) && !Number.isSafeInteger(id)) return;
  const params = body.params;
  if (!isPlainObject(params) || !onlyKeys(params, PARAMS_KEYS)) return;
  const name = params.name;
  if (typeof name !== "string" || name.length > 256) return;
  const args = params.arguments;
  if (args !== undefined && !isPlainObject(args)) return;
  return { id: id as string | number, name, args, meta: params._meta };
}

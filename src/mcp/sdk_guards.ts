/**
 * Cheaper "no" answers for three of the SDK's message guards.
 *
 * The v2 SDK's transport and protocol layer ask of every message whether it is
 * an `initialize` request, a result response or an error response
 * (`isInitializeRequest`, `isJSONRPCResultResponse`, `isJSONRPCErrorResponse`:
 * each a full zod `safeParse` of the message). For a `tools/call` every one of
 * those answers is "no", and a zod parse that fails is the expensive kind: it
 * walks every field, builds each issue with its message and wraps them in an
 * error — 8 to 40 µs per question here, about 60 µs of a call's CPU in all.
 *
 * Each of the three schemas has a necessary condition that one property read
 * decides: an `initialize` request has `method: "initialize"` (a literal), a
 * result response a `result` member, an error response an `error` member, and
 * all three are objects. When the condition fails the schema's own answer is
 * certainly a failure, so it is given at once; the error object zod would have
 * built is still there, built on first read from the schema's own parse, so
 * nothing that reads it sees a difference. Every other value goes to the
 * schema as before. The schemas are the SDK's shared instances
 * (`specTypeSchemas`, the ones its guards call), so this covers the server,
 * the gateway's client and the legacy transports alike;
 * `tests/mcp/sdk_guards_test.ts` holds the fast answers to the schemas' over a
 * corpus of message shapes.
 *
 * @module
 */
import { specTypeSchemas } from "@modelcontextprotocol/server";

type SafeParse = (data: unknown, params?: unknown) => { success: boolean };

/** Necessary conditions, on an object value, of each schema accepting it. */
const NECESSARY: Readonly<Record<string, (value: Record<string, unknown>) => boolean>> = {
  InitializeRequest: (v) => v.method === "initialize",
  JSONRPCResultResponse: (v) => v.result !== undefined,
  JSONRPCErrorResponse: (v) => v.error !== undefined,
};

const installed = new WeakSet<object>();

/**
 * Gives the three guards' schemas a fast failure for values that miss their
 * necessary condition. Idempotent; returns how many schemas it changed.
 *
 * @example
 * ```ts
 * import { isInitializeRequest } from "@modelcontextprotocol/server";
 * import { installFastGuards } from "./sdk_guards.ts";
 * installFastGuards();
 * const call = { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "x" } };
 * if (isInitializeRequest(call)) throw new Error("a tools/call is not an initialize request");
 * ```
 */
export function installFastGuards(): number {
  let changed = 0;
  const schemas = specTypeSchemas as unknown as Record<string, { safeParse: SafeParse }>;
  for (const [name, necessary] of Object.entries(NECESSARY)) {
    const schema = schemas[name];
    if (!schema || installed.has(schema)) continue;
    const parse = schema.safeParse.bind(schema) as SafeParse;
    schema.safeParse = (data: unknown, params?: unknown) => {
      if (typeof data === "object" && data !== null && necessary(data as Record<string, unknown>)) {
        return parse(data, params);
      }
      let error: unknown;
      let built = false;
      return {
        success: false,
        get error() {
          if (!built) {
            error = (parse(data, params) as { error?: unknown }).error;
            built = true;
          }
          return error;
        },
      };
    };
    installed.add(schema);
    changed++;
  }
  return changed;
}

import type { ToolDefinition } from "../calls/mod.ts";
import type { ExecutionReceipt } from "../vault/mod.ts";

/** Signs execution receipts with the vault's key (secure_execute verified/fortress, evidence chain). */
export interface ReceiptSigner {
  readonly vkey: string;
  /** Where the vault's signing key comes from (security_audit). */
  readonly keySource: "configured" | "kv" | "generated";
  sign(receipt: ExecutionReceipt): Promise<string>;
}

/**
 * The up-front check each tool family's factory makes: every service it was written against is
 * there, or a TypeError naming the missing ones (when the tools are made, not at a first call).
 */
export function requireServices<S extends object>(
  family: string,
  services: S | undefined,
  names: readonly (keyof S & string)[],
): S {
  const missing = names.filter((name) => services?.[name] === undefined);
  if (services === undefined || missing.length > 0) {
    throw new TypeError(`Cannot create the ${family} tools: missing ${missing.join(", ")}`);
  }
  return services;
}

/**
 * A tool family's factory: given `services`, checks it holds every one of `names` (see
 * {@link requireServices}), then makes each of `tools` from it, in order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { toolFamily } from "./_services.ts";
 * const createClockTools = toolFamily<{ now: () => number }>("clock", ["now"], []);
 * assert.deepEqual(createClockTools({ now: Date.now }), []);
 * assert.throws(() => createClockTools({} as never), /Cannot create the clock tools: missing now/);
 * ```
 */
export function toolFamily<S extends object>(
  family: string,
  names: readonly (keyof S & string)[],
  tools: readonly ((services: S) => ToolDefinition)[],
): (services: S) => ToolDefinition[] {
  return (services) => {
    requireServices(family, services, names);
    return tools.map((make) => make(services));
  };
}

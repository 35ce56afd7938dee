// Shared inputs for the governance tests: a harmless call to a registered
// read-only tool, quiet rates and a successful result, each overridable.

import assert from "node:assert/strict";
import {
  type CallFacts,
  DEFAULT_POLICY,
  type FloorId,
  type FloorResult,
  parsePolicy,
  type Policy,
  type RateFacts,
  type ResultFacts,
  type ToolFacts,
} from "../../src/governance/mod.ts";

export function makeCall(overrides: Partial<CallFacts> = {}): CallFacts {
  return {
    tool: "get_time",
    arguments: { timezone: "Europe/London" },
    principal: "alice",
    roles: ["user"],
    actor: "human",
    argumentBytes: 28,
    schemaIssues: [],
    ...overrides,
  };
}

export function makeTool(overrides: Partial<ToolFacts> = {}): ToolFacts {
  return {
    name: "get_time",
    registered: true,
    annotations: { readOnlyHint: true },
    hasOutputSchema: true,
    ...overrides,
  };
}

export function makeRates(overrides: Partial<RateFacts> = {}): RateFacts {
  return {
    principalCallsLastMinute: 0,
    toolCallsLastMinute: 0,
    principalInFlight: 0,
    ...overrides,
  };
}

export function makeResult(overrides: Partial<ResultFacts> = {}): ResultFacts {
  return {
    isError: false,
    text: "12:00",
    data: { time: "12:00" },
    outputSchemaIssues: [],
    wellFormed: true,
    ...overrides,
  };
}

/** A policy from a partial document, or the default one. */
export function policyWith(json?: unknown): Policy {
  return json === undefined ? DEFAULT_POLICY : parsePolicy(json);
}

/** A policy with floor `id` in `mode`. */
export function withMode(id: FloorId, mode: "hard" | "soft" | "off"): Policy {
  return parsePolicy({ floors: { [id]: { mode } } });
}

export function floorOf(results: readonly FloorResult[], id: FloorId): FloorResult {
  const found = results.find((r) => r.id === id);
  if (!found) throw new Error(`no result for ${id}`);
  return found;
}

/** The off-by-policy result every floor returns in mode off. */
export function assertOff(result: FloorResult): void {
  assert.deepEqual(
    { ...result, name: undefined },
    {
      id: result.id,
      name: undefined,
      score: 1,
      pass: true,
      evaluated: false,
      applicable: false,
      reason: "off by policy",
    },
  );
}

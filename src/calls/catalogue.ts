/**
 * The catalogue: the own tools, checked and described once at start (JSON
 * Schemas, definition hashes for F10), beside the upstream tools the gateway
 * re-exposes. Own tools take precedence and names never collide.
 *
 * @module
 */
import { z } from "zod";
import type { UpstreamToolEntry } from "../gateway/mod.ts";
import { digestJson } from "../lib/mod.ts";
import { envelopeSchema } from "./envelope.ts";
import type { ToolDefinition } from "./tool.ts";
import type { ToolDescriptor } from "./types.ts";

/**
 * The gateway's side of the catalogue: upstream tools re-exposed beside the
 * own tools and governed by the same call path.
 */
export interface UpstreamCatalogue {
  list(): readonly ToolDescriptor[];
  get(name: string): UpstreamToolEntry | undefined;
}

/** What a call looks up: an own tool with its definition hash, or an upstream tool. */
export interface Catalogue {
  /** The own tool called `name`. */
  own(name: string): ToolDefinition | undefined;
  /** The definition hash of the own tool `name` (F10 pins it). */
  hashOf(name: string): string | undefined;
  /** The upstream tool `name`, unless an own tool has that name. */
  upstream(name: string): UpstreamToolEntry | undefined;
  /** Own tool names, in registration order. */
  readonly names: readonly string[];
  /** Own descriptors, then the upstreams' current ones. */
  list(): readonly ToolDescriptor[];
}

function jsonSchemaOf(schema: z.ZodType, io: "input" | "output"): Record<string, unknown> {
  const json = z.toJSONSchema(schema, { io, unrepresentable: "any" }) as Record<string, unknown>;
  delete json.$schema;
  return json;
}

/**
 * Builds the catalogue. Names must be unique and match MCP's tool-name rules
 * (a TypeError names the offending tool otherwise).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { z } from "zod";
 * import { createCatalogue } from "./catalogue.ts";
 * import { defineTool } from "./tool.ts";
 * const echo = defineTool({
 *   name: "echo",
 *   title: "Echo",
 *   description: "Echoes its text",
 *   inputSchema: z.object({ text: z.string() }),
 *   annotations: { readOnlyHint: true },
 *   handler: ({ text }) => ({ data: { text }, text }),
 * });
 * const catalogue = createCatalogue([echo]);
 * assert.equal(catalogue.own("echo"), echo);
 * assert.match(catalogue.hashOf("echo")!, /^[0-9a-f]{64}$/);
 * assert.throws(() => createCatalogue([echo, echo]), /already registered/);
 * ```
 */
export function createCatalogue(
  tools: readonly ToolDefinition[],
  upstreams?: UpstreamCatalogue,
): Catalogue {
  const byName = new Map<string, ToolDefinition>();
  for (const tool of tools) {
    if (!/^[A-Za-z0-9_.-]{1,128}$/.test(tool.name)) {
      throw new TypeError(`Cannot register tool "${tool.name}": invalid tool name`);
    }
    if (byName.has(tool.name)) {
      throw new TypeError(`Cannot register tool "${tool.name}": name already registered`);
    }
    byName.set(tool.name, tool as ToolDefinition);
  }
  const descriptors: ToolDescriptor[] = [];
  const hashes = new Map<string, string>();
  for (const t of byName.values()) {
    const envelope = envelopeSchema(t.outputSchema);
    const descriptor: ToolDescriptor = {
      name: t.name,
      title: t.title,
      description: t.description,
      inputSchema: jsonSchemaOf(t.inputSchema, "input"),
      outputSchema: jsonSchemaOf(envelope, "output"),
      annotations: { title: t.title, ...t.annotations },
    };
    descriptors.push(descriptor);
    hashes.set(t.name, digestJson(descriptor));
  }
  const names = [...byName.keys()];
  return {
    own: (name) => byName.get(name),
    hashOf: (name) => hashes.get(name),
    upstream: (name) => byName.has(name) ? undefined : upstreams?.get(name),
    names,
    list: () => {
      const up = upstreams?.list() ?? [];
      return up.length === 0 ? descriptors : [...descriptors, ...up];
    },
  };
}

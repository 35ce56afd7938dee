/**
 * The one call path: the catalogue (own tools and the gateway's upstream
 * tools), the facts governance judges, execution with containment and the
 * call deadline, the response envelope, the hold prompt and the metabolic
 * step hook; and the tool definition contract the tool adapters implement.
 * Every route into a call (MCP, REST `/invoke`, stdio, nested calls, the
 * gateway) goes through `createToolRegistry`; nothing else calls a handler.
 *
 * @module
 */
export * from "./tool.ts";
export * from "./envelope.ts";
export type {
  CallContext,
  CallErrorKind,
  CallFacts,
  CallOutcome,
  ToolDescriptor,
  ToolRegistry,
} from "./types.ts";
export { type Catalogue, createCatalogue, type UpstreamCatalogue } from "./catalogue.ts";
export { describeIssues } from "./facts.ts";
export { elicitHold, holdMessage } from "./hold_prompt.ts";
export { createToolRegistry, type RegistryServices } from "./registry.ts";

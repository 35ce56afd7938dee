/**
 * KV key builders and small storage helpers shared by every feature.
 * @module
 */
export * from "./keys.ts";
export * from "./retry.ts";
export * from "./batch_writer.ts";
export * from "./carrier.ts";
export * from "./gov_sessions.ts";
export * from "./evidence.ts";
export * from "./executions.ts";

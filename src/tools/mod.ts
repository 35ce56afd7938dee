/**
 * Tools: definitions, the registry every call goes through, and the built-in tool sets.
 * @module
 */
export * from "./tool.ts";
export * from "./registry.ts";
export { utilityTools } from "./utilities.ts";

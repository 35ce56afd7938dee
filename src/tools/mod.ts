/**
 * Tools: definitions, the registry every call goes through, and the built-in tool sets.
 * @module
 */
export * from "./tool.ts";
export * from "./registry.ts";
export { utilityTools } from "./utilities.ts";
export { conformanceTools, FIXTURE_PNG_BASE64, FIXTURE_WAV_BASE64 } from "./conformance.ts";

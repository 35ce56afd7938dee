/** Warden's version, reported by /health and at MCP initialize. Keep in step with deno.json. */
export const VERSION = "0.1.0";

/**
 * Every Deno KV key tuple Warden uses is built here, so the key space can be
 * read in one place and no two features collide.
 *
 * Layout (tuple keys, `[entity, id]` for records):
 * - `["session", id]` → session record (with `expireIn` = idle TTL)
 * - `["mcp_event", sessionId, seq]` → one SSE event kept for resumption (`seq` sorts by time);
 *   `["mcp_event", sessionId, seq, n]` → chunk n of an event too large for one value
 */

/** The key of one MCP session record. */
export function sessionKey(id: string): Deno.KvKey {
  return ["session", id];
}

/** Prefix of every session record (for listing). */
export function sessionPrefix(): Deno.KvKey {
  return ["session"];
}

/** The key of one stored SSE event. */
export function eventKey(sessionId: string, seq: string): Deno.KvKey {
  return ["mcp_event", sessionId, seq];
}

/** Prefix of every stored event of a session. */
export function eventSessionPrefix(sessionId: string): Deno.KvKey {
  return ["mcp_event", sessionId];
}

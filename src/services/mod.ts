/**
 * State services behind the `memory_*` and `file_*` tools: domain cores over
 * Deno KV, with no MCP, HTTP or governance in them. Tools in `src/tools/`
 * are their adapters; every call still goes through the governed call path.
 *
 * @module
 */
export {
  checkMemoryKey,
  createMemoryService,
  DEFAULT_MEMORY_LIMITS,
  MAX_MEMORY_KEY_CHARS,
  type MemoryEntry,
  MemoryError,
  type MemoryHit,
  type MemoryLimits,
  type MemoryService,
  type SearchResult,
  type StoreResult,
} from "./memory.ts";

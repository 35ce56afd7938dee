/**
 * State services behind the `memory_*`, `file_*`, `context_*` and `bus_*` tools: domain cores over
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
export {
  createFileService,
  DEFAULT_FILE_LIMITS,
  FILE_CHUNK_BYTES,
  type FileCaller,
  type FileLimits,
  type FileService,
  FileServiceError,
  type FileVersion,
  type Lease,
  type ListEntry,
  MAX_FILE_PATH_CHARS,
  type ReadResult,
  type WriteResult,
} from "./files.ts";
export {
  type AddResult,
  type ContextHit,
  type ContextKv,
  type ContextLimits,
  type ContextSearchResult,
  type ContextService,
  createContextService,
  DEFAULT_CONTEXT_LIMITS,
  type GraphNode,
  type GraphResult,
  type RelationInput,
} from "./context/mod.ts";
export { ContextError, EmbeddingError, openEmbeddings } from "./context/mod.ts";
export {
  BusError,
  type BusLimits,
  type BusMessage,
  type BusService,
  createBusService,
  DEFAULT_BUS_LIMITS,
  type PublishResult,
  type SubscribeResult,
  TOPIC_PATTERN,
} from "./bus.ts";
export {
  DEFAULT_EVENT_BUS_LIMITS,
  type EventBus,
  type EventBusLimits,
  type InstanceEvent,
  openEventBus,
} from "./events.ts";

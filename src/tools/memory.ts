/**
 * The memory tools (SPEC §5 "State services"): `memory_store`,
 * `memory_retrieve`, `memory_search`, `memory_expire` — thin adapters over
 * `src/services/memory.ts`. The caller's principal is the namespace; no
 * argument can name another. The vault records a stored value's digest and
 * size, never the value, and a read's digest, never what was read.
 *
 * @module
 */
import { z } from "zod";
import { MAX_MEMORY_KEY_CHARS, MemoryError, type MemoryService } from "../services/mod.ts";
import { digestJson } from "../lib/mod.ts";
import { defineTool } from "../calls/mod.ts";
import { IDEMPOTENT_WRITE, READ_ONLY } from "./_annotations.ts";
import { toolFamily } from "./_services.ts";

const key = z.string().min(1).max(MAX_MEMORY_KEY_CHARS).describe(
  "The key, 1-256 characters (no control characters). Keys are private to the caller.",
);
const ttl = z.number().int().min(1).describe(
  "Seconds the value lives; defaults to the policy's memory.default_ttl_seconds (3600), " +
    "at most memory.max_ttl_seconds (30 days).",
);

/** The `memory_store` tool. */
function memoryStoreTool({ memory }: MemoryToolServices) {
  return defineTool({
    name: "memory_store",
    title: "Store a memory",
    description: "Store a JSON value under a key in the caller's own memory, with a TTL. " +
      "Another principal can neither read nor list it. Storing an existing key replaces its " +
      "value and TTL. The vault records the value's SHA-256 and size, not the value.",
    inputSchema: z.object({
      key,
      value: z.unknown().refine((v) => v !== undefined, "a value is required").describe(
        "Any JSON value (object, array, string, number, boolean, null), at most " +
          "memory.max_value_bytes (32768) bytes as JSON.",
      ),
      ttl: ttl.optional(),
    }),
    outputSchema: z.object({
      key: z.string(),
      ttl_s: z.number().int().describe("Seconds the value lives."),
      expires_at: z.string().describe("When it expires (ISO 8601)."),
      value_sha256: z.string().describe("SHA-256 of the value's canonical JSON."),
      bytes: z.number().int().describe("Size of the value as JSON."),
      replaced: z.boolean().describe("Whether a live value was replaced."),
      indexed: z.boolean().describe("Whether memory_search can find it by text."),
    }),
    // A write, reversible in the sense F1 means: every value has a TTL by design, the vault keeps
    // the digest of each one, and a replaced value can be stored again.
    annotations: IDEMPOTENT_WRITE,
    recordArguments: ({ key, value, ttl }) => ({
      key,
      ...(ttl !== undefined ? { ttl } : {}),
      value_sha256: digestOrNull(value),
      value_bytes: jsonBytes(value),
    }),
    expectedErrors: [MemoryError],
    handler: async ({ key, value, ttl }, ctx) => {
      const data = await memory.store(ctx.principal, { key, value, ttl });
      return {
        data,
        text: `${
          data.replaced ? "Replaced" : "Stored"
        } "${key}" (${data.bytes} bytes) until ${data.expires_at}`,
      };
    },
  });
}

function digestOrNull(value: unknown): string | null {
  try {
    return digestJson(value);
  } catch {
    return null;
  }
}

function jsonBytes(value: unknown): number {
  try {
    return new TextEncoder().encode(JSON.stringify(value) ?? "").byteLength;
  } catch {
    return 0;
  }
}

/** The `memory_retrieve` tool. */
function memoryRetrieveTool({ memory }: MemoryToolServices) {
  return defineTool({
    name: "memory_retrieve",
    title: "Retrieve a memory",
    description: "Read the value stored under a key in the caller's own memory. An expired value " +
      "is never returned: the answer is then found=false.",
    inputSchema: z.object({ key }),
    outputSchema: z.object({
      key: z.string(),
      found: z.boolean(),
      value: z.unknown().optional().describe("The stored JSON value (when found)."),
      value_sha256: z.string().optional(),
      bytes: z.number().int().optional(),
      stored_at: z.string().optional(),
      expires_at: z.string().optional(),
      ttl_remaining_s: z.number().int().optional(),
    }),
    annotations: READ_ONLY,
    recordResult: (data) => {
      const { value: _value, ...rest } = data;
      return rest;
    },
    expectedErrors: [MemoryError],
    handler: async ({ key }, ctx) => {
      const entry = await memory.retrieve(ctx.principal, key);
      if (!entry) return { data: { key, found: false }, text: `No live value under "${key}"` };
      return {
        data: { found: true, ...entry },
        text: `"${key}" (${entry.bytes} bytes, expires ${entry.expires_at}): ${
          JSON.stringify(entry.value).slice(0, 500)
        }`,
      };
    },
  });
}

/** The `memory_search` tool. */
function memorySearchTool({ memory }: MemoryToolServices) {
  return defineTool({
    name: "memory_search",
    title: "Search memories",
    description:
      "Search the caller's own memory by key prefix and/or by text. Text is matched by " +
      "words through a BM25 index of each value's key and JSON (lower-cased letter/digit runs, " +
      "common English stopwords dropped, no stemming; the first 16 KiB of a value), best first. " +
      "Returns keys with a 200-character preview; read a whole value with memory_retrieve.",
    inputSchema: z.object({
      prefix: z.string().max(MAX_MEMORY_KEY_CHARS).optional().describe(
        "Only keys starting with this.",
      ),
      query: z.string().max(1000).optional().describe(
        "Words to find in the key or the value's JSON (case-insensitive); hits ranked by BM25.",
      ),
      limit: z.number().int().min(1).max(100).default(20).describe("Most hits, 1-100."),
    }),
    outputSchema: z.object({
      hits: z.array(z.object({
        key: z.string(),
        preview: z.string(),
        value_sha256: z.string(),
        bytes: z.number().int(),
        expires_at: z.string(),
        score: z.number().optional().describe("BM25 score (text searches)."),
      })),
      scanned: z.number().int().describe(
        "Value records read (a text search: its best candidates').",
      ),
      truncated: z.boolean().describe("More values matched than the limit."),
    }),
    annotations: READ_ONLY,
    recordResult: (data) => ({
      hits: data.hits.map((h) => ({ key: h.key, value_sha256: h.value_sha256 })),
      scanned: data.scanned,
      truncated: data.truncated,
    }),
    expectedErrors: [MemoryError],
    handler: async ({ prefix, query, limit }, ctx) => {
      const data = await memory.search(ctx.principal, { prefix, query, limit });
      const keys = data.hits.map((h) => h.key).join(", ");
      return {
        data,
        text: data.hits.length === 0
          ? "No matching memories"
          : `${data.hits.length}${data.truncated ? "+" : ""} matching: ${keys}`,
      };
    },
  });
}

/** The `memory_expire` tool. */
function memoryExpireTool({ memory }: MemoryToolServices) {
  return defineTool({
    name: "memory_expire",
    title: "Expire a memory",
    description:
      "End a value in the caller's own memory now, or (with ttl) move its expiry to ttl " +
      "seconds from now.",
    inputSchema: z.object({
      key,
      ttl: ttl.optional().describe("New lifetime in seconds from now; absent ends the value now."),
    }),
    outputSchema: z.object({
      key: z.string(),
      found: z.boolean().describe("Whether a live value was there."),
      expires_at: z.string().optional().describe("The new expiry (when ttl was given)."),
    }),
    // Ending a value early does what its TTL does anyway; memory is ephemeral by contract. A
    // policy that disagrees says `tools.memory_expire.reversible: false` and gets a hold.
    annotations: IDEMPOTENT_WRITE,
    expectedErrors: [MemoryError],
    handler: async ({ key, ttl }, ctx) => {
      const data = await memory.expire(ctx.principal, { key, ttl });
      return {
        data,
        text: !data.found
          ? `No live value under "${key}"`
          : data.expires_at
          ? `"${key}" now expires ${data.expires_at}`
          : `Expired "${key}"`,
      };
    },
  });
}

/** The services the memory tools use: the per-principal memory store, and nothing else. */
export interface MemoryToolServices {
  readonly memory: MemoryService;
}

/**
 * The four memory tools, in the order SPEC.md lists them, given the memory store (checked here,
 * when the tools are made).
 */
export const createMemoryTools = toolFamily<MemoryToolServices>(
  "memory",
  ["memory"],
  [memoryStoreTool, memoryRetrieveTool, memorySearchTool, memoryExpireTool],
);

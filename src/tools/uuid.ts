/**
 * The `generate_uuid` and `validate_uuid` tools. Version 4 comes from
 * `crypto.randomUUID`; version 7 (RFC 9562 §5.7) is built here because the
 * runtime has no generator for it.
 *
 * @module
 */
import { z } from "zod";
import { defineTool } from "../calls/mod.ts";
import { READ_ONLY } from "./_annotations.ts";

/** The UUID versions `generate_uuid` can produce. */
export type GeneratedVersion = "v4" | "v7";

/** Sources a v7 generator reads; tests replace them to pin the output. */
export interface UuidV7GeneratorOptions {
  /** Current Unix time in milliseconds; defaults to `Date.now`. */
  readonly now?: () => number;
  /** Fills a buffer with random bytes; defaults to `crypto.getRandomValues`. */
  readonly fillRandom?: (bytes: Uint8Array) => void;
}

const RANDOM_BITS = 74n; // rand_a (12) + rand_b (62)
const RANDOM_LIMIT = 1n << RANDOM_BITS;
const RAND_B_MASK = (1n << 62n) - 1n;
const MAX_TIMESTAMP = 2 ** 48 - 1;

function randomBigInt(bits: bigint, fillRandom: (bytes: Uint8Array) => void): bigint {
  const bytes = new Uint8Array(Math.ceil(Number(bits) / 8));
  fillRandom(bytes);
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  return value & ((1n << bits) - 1n);
}

function formatUuid(value: bigint): string {
  const hex = value.toString(16).padStart(32, "0");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${
    hex.slice(20)
  }`;
}

/**
 * Create a UUID v7 generator with its own monotonic state. Each id holds the
 * 48-bit Unix millisecond timestamp, version 7, the RFC variant and 74 random
 * bits. Within one millisecond — or if the clock steps back — the random
 * field grows by a random amount instead of being redrawn (RFC 9562 §6.2,
 * method 2), so ids from one generator sort in the order they were made
 * while staying unguessable.
 *
 * @example
 * ```ts
 * const next = createUuidV7Generator();
 * next() < next(); // true
 * ```
 */
export function createUuidV7Generator(options: UuidV7GeneratorOptions = {}): () => string {
  const now = options.now ?? Date.now;
  const fillRandom = options.fillRandom ??
    ((bytes: Uint8Array) => void crypto.getRandomValues(bytes));
  let lastMs = -1;
  let random = 0n;

  // The top random bit starts clear, leaving at least 2^73 of headroom for
  // increments before the field could overflow.
  const fresh = () => randomBigInt(RANDOM_BITS - 1n, fillRandom);

  return function nextUuidV7(): string {
    const ms = Math.floor(now());
    if (!(ms >= 0 && ms <= MAX_TIMESTAMP)) {
      throw new RangeError(`Cannot encode timestamp ${ms} in 48 bits`);
    }
    if (ms > lastMs) {
      lastMs = ms;
      random = fresh();
    } else {
      random += 1n + randomBigInt(32n, fillRandom);
      if (random >= RANDOM_LIMIT) {
        // Borrowing the next millisecond keeps order; RFC 9562 §6.2 allows it.
        lastMs++;
        random = fresh();
      }
    }
    const randA = random >> 62n;
    const randB = random & RAND_B_MASK;
    return formatUuid(
      (BigInt(lastMs) << 80n) | (0x7n << 76n) | (randA << 64n) | (0b10n << 62n) | randB,
    );
  };
}

const nextUuidV7 = createUuidV7Generator();

/**
 * Generate `count` UUIDs of one version. Version 7 ids share the process-wide
 * generator, so every v7 id this process hands out sorts after the ones
 * before it.
 *
 * @throws {RangeError} when `count` is not an integer from 1 to 100.
 *
 * @example
 * ```ts
 * generateUuids("v7", { count: 3 }).length; // 3
 * ```
 */
export function generateUuids(
  version: GeneratedVersion,
  options: { readonly count?: number } = {},
): string[] {
  const count = options.count ?? 1;
  if (!Number.isInteger(count) || count < 1 || count > 100) {
    throw new RangeError(`Cannot generate ${count} UUIDs: count must be an integer from 1 to 100`);
  }
  const next = version === "v7" ? nextUuidV7 : () => crypto.randomUUID();
  return Array.from({ length: count }, () => next());
}

/** Result of {@link validateUuid}. */
export interface UuidValidation {
  readonly valid: boolean;
  /** The version field (1–8 defined), or null when invalid or not the RFC 9562 variant. */
  readonly version: number | null;
  /** `rfc9562`, `ncs`, `microsoft`, `reserved_future`, `nil` or `max`; null when invalid. */
  readonly variant: string | null;
  /** Lower-case canonical form, or null when invalid. */
  readonly normalized: string | null;
}

const CANONICAL_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function variantOf(normalized: string): string {
  const bits = parseInt(normalized[19], 16);
  if ((bits & 0b1000) === 0) return "ncs";
  if ((bits & 0b0100) === 0) return "rfc9562";
  if ((bits & 0b0010) === 0) return "microsoft";
  return "reserved_future";
}

/**
 * Check that `text` is a UUID in canonical 8-4-4-4-12 hex form (either case)
 * and decode its variant and version. The nil and max UUIDs are valid with
 * variants `nil` and `max`; version is reported only for the RFC 9562 variant,
 * the only one whose version field has a defined meaning.
 *
 * @example
 * ```ts
 * validateUuid("00000000-0000-4000-8000-000000000000").version; // 4
 * ```
 */
export function validateUuid(text: string): UuidValidation {
  if (!CANONICAL_UUID.test(text)) {
    return { valid: false, version: null, variant: null, normalized: null };
  }
  const normalized = text.toLowerCase();
  const digits = normalized.replaceAll("-", "");
  if (/^0+$/.test(digits)) return { valid: true, version: null, variant: "nil", normalized };
  if (/^f+$/.test(digits)) return { valid: true, version: null, variant: "max", normalized };
  const variant = variantOf(normalized);
  const version = variant === "rfc9562" ? parseInt(normalized[14], 16) : null;
  return { valid: true, version, variant, normalized };
}

/** The `generate_uuid` tool. */
export const generateUuidTool = defineTool({
  name: "generate_uuid",
  title: "Generate UUIDs",
  description: "Generate one or more random UUIDs. v4 is fully random; v7 starts with the " +
    "current Unix time in milliseconds, so v7 ids sort by creation time (good database keys).",
  inputSchema: z.object({
    version: z.enum(["v4", "v7"]).default("v4").describe(
      'UUID version: "v4" (random) or "v7" (time-ordered); defaults to "v4".',
    ),
    count: z.number().int().min(1).max(100).default(1).describe(
      "How many UUIDs to generate, 1 to 100; defaults to 1.",
    ),
  }),
  outputSchema: z.object({
    version: z.enum(["v4", "v7"]).describe("The version generated."),
    uuids: z.array(z.string()).describe("The UUIDs, lower-case canonical form, in order made."),
  }),
  annotations: READ_ONLY,
  handler({ version, count }) {
    const uuids = generateUuids(version, { count });
    const text = uuids.length === 1
      ? uuids[0]
      : `${uuids.length} ${version} UUIDs:\n${uuids.join("\n")}`;
    return { data: { version, uuids }, text };
  },
});

/** The `validate_uuid` tool. */
export const validateUuidTool = defineTool({
  name: "validate_uuid",
  title: "Validate a UUID",
  description: "Check whether a string is a UUID in canonical 8-4-4-4-12 hexadecimal form " +
    "(either case) and report its version and variant. The nil and max UUIDs are valid.",
  inputSchema: z.object({
    uuid: z.string().max(256).describe(
      'The string to check, e.g. "550e8400-e29b-41d4-a716-446655440000".',
    ),
  }),
  outputSchema: z.object({
    valid: z.boolean().describe("Whether the string is a canonical UUID."),
    version: z.number().int().nullable().describe(
      "Version field (1-8 are defined); null if invalid, nil, max or not the RFC 9562 variant.",
    ),
    variant: z.string().nullable().describe(
      'Variant: "rfc9562", "ncs", "microsoft", "reserved_future", "nil" or "max"; null if invalid.',
    ),
    normalized: z.string().nullable().describe("Lower-case form; null if invalid."),
  }),
  annotations: READ_ONLY,
  handler({ uuid }) {
    const data = validateUuid(uuid);
    const version = data.version === null ? "" : `version ${data.version}, `;
    const text = data.valid
      ? `${data.normalized} is a valid UUID (${version}${data.variant} variant)`
      : `"${uuid}" is not a valid UUID`;
    return { data, text };
  },
});

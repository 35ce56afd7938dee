/**
 * Leaf helpers any layer may import: byte encodings (hex, strict base64),
 * SHA-256 digests, canonical JSON (RFC 8785) and its digests, the shared
 * deadline timer, the JSON-line logger and the version string. Nothing here
 * imports another folder of `src/` (only the log level's type from config).
 *
 * @module
 */

export { equalBytes, fromBase64, fromHex, toBase64, toHex, utf8ByteLength } from "./bytes.ts";
export { sha256, sha256HexOfText, toBytes } from "./digests.ts";
export {
  canonicalize,
  canonicalMembers,
  type CanonicalOptions,
  canonicalString,
  digestJson,
  lenientDigestJson,
} from "./canonical_json.ts";
export {
  type CancelDeadline,
  createDeadlineScheduler,
  type DeadlineScheduler,
} from "./deadline.ts";
export { createLogger, type Logger, silentLogger, withRedaction } from "./log.ts";
export { VERSION } from "./version.ts";

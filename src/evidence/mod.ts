/**
 * Evidence: what the evidence tools find out, apart from their MCP adapters —
 * the guarded fetch with HTML reduced to text, root-confined file inspection,
 * and the BM25-ranked corpus of the caller's own sessions, evidence and vault
 * entries.
 *
 * @module
 */
export { type FetchedEvidence, fetchEvidence, type FetchOptions } from "./fetch.ts";
export { htmlToText } from "./html_text.ts";
export {
  checkPattern,
  DEFAULT_MAX_HASH_BYTES,
  type DirectoryEntry,
  FileAccessError,
  type Inspection,
  type InspectOptions,
  inspectPath,
  MAX_PATTERN_LENGTH,
} from "./inspect.ts";
export {
  type CorpusDoc,
  type CorpusItem,
  type CorpusSources,
  rankBm25,
  searchCorpus,
} from "./corpus.ts";

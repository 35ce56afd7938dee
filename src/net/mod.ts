/**
 * Network safety shared by every feature that connects out: IP range
 * classification, host/CIDR allowlists, the capped body reader, the JSON POST
 * to an operator's API endpoint, the SSRF guard every fetch of a
 * caller-chosen URL passes, and the bound on what a response stream holds
 * for a client that stopped reading.
 *
 * @module
 */
export { isPrivateAddress } from "./ip_ranges.ts";
export { hostAllowed } from "./allowlist.ts";
export { type BodyRefusal, DEFAULT_BODY_TIMEOUT_MS, readCapped, readWithin } from "./body.ts";
export {
  capUnsent,
  type CapUnsentOptions,
  capUnsentResponse,
  DEFAULT_MAX_UNSENT_BYTES,
} from "./unsent.ts";
export {
  type CallDeadline,
  callDeadline,
  endpointUrl,
  type JsonPostOptions,
  postJson,
} from "./json_post.ts";
export {
  checkUrl,
  createUrlGuard,
  FetchFailedError,
  FetchRefusedError,
  type Resolver,
  resolveWithDeno,
  type UrlGuard,
  type UrlGuardOptions,
} from "./ssrf_guard.ts";

/**
 * Network safety shared by every feature that connects out: IP range
 * classification, host/CIDR allowlists, the capped body reader, the JSON POST
 * to an operator's API endpoint, and the SSRF guard every fetch of a
 * caller-chosen URL passes.
 *
 * @module
 */
export { isPrivateAddress } from "./ip_ranges.ts";
export { hostAllowed } from "./allowlist.ts";
export { type BodyRefusal, DEFAULT_BODY_TIMEOUT_MS, readCapped, readWithin } from "./body.ts";
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

/**
 * Network safety shared by every feature that connects out: IP range
 * classification, and host/CIDR allowlists.
 *
 * @module
 */
export { isPrivateAddress } from "./ip_ranges.ts";
export { hostAllowed } from "./allowlist.ts";
export { readCapped } from "./body.ts";

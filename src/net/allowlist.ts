/**
 * Host allowlists (`--registry-allow-hosts`): entries are host names (exact,
 * case-insensitive) or IP addresses/CIDRs.
 *
 * @module
 */
import { ipInCidr } from "./ip_ranges.ts";

/**
 * Whether a host (and the addresses it resolved to) is named by the list: the
 * name itself, or every resolved address inside one of the CIDR entries.
 *
 * @example
 * ```ts
 * hostAllowed("127.0.0.1", ["127.0.0.1"], ["127.0.0.0/8"]); // true
 * ```
 */
export function hostAllowed(
  host: string,
  addresses: readonly string[],
  list: readonly string[],
): boolean {
  const name = host.toLowerCase().replace(/^\[(.*)\]$/, "$1").replace(/\.$/, "");
  const entries = list.map((e) => e.trim().toLowerCase()).filter((e) => e.length > 0);
  if (entries.some((e) => e.replace(/^\[(.*)\]$/, "$1") === name)) return true;
  if (addresses.length === 0) return false;
  return addresses.every((ip) => entries.some((e) => ipInCidr(ip, e)));
}

/**
 * IP address classification for every SSRF guard (fetch_content, gateway
 * registration): which addresses are not public unicast, and why.
 *
 * @module
 */

type Range4 = readonly [base: number, prefix: number, reason: string];

// Checked in order, so the broadcast address is named before 240/4 swallows it.
const PRIVATE_V4: readonly Range4[] = [
  [ipv4(0, 0, 0, 0), 8, "this-network address"],
  [ipv4(10, 0, 0, 0), 8, "private address"],
  [ipv4(100, 64, 0, 0), 10, "shared (carrier-grade NAT) address"],
  [ipv4(127, 0, 0, 0), 8, "loopback address"],
  [ipv4(169, 254, 169, 254), 32, "link-local address (cloud metadata service)"],
  [ipv4(169, 254, 0, 0), 16, "link-local address"],
  [ipv4(172, 16, 0, 0), 12, "private address"],
  [ipv4(192, 0, 0, 0), 24, "IETF protocol assignment address"],
  [ipv4(192, 0, 2, 0), 24, "documentation address"],
  [ipv4(192, 168, 0, 0), 16, "private address"],
  [ipv4(198, 18, 0, 0), 15, "benchmarking address"],
  [ipv4(198, 51, 100, 0), 24, "documentation address"],
  [ipv4(203, 0, 113, 0), 24, "documentation address"],
  [ipv4(224, 0, 0, 0), 4, "multicast address"],
  [ipv4(255, 255, 255, 255), 32, "broadcast address"],
  [ipv4(240, 0, 0, 0), 4, "reserved address"],
];

function ipv4(a: number, b: number, c: number, d: number): number {
  return ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
}

function inRange4(address: number, base: number, prefix: number): boolean {
  const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
  return ((address & mask) >>> 0) === base;
}

/** Strict dotted-quad decimal; leading zeros are rejected (they mean octal to some parsers). */
function parseIpv4(text: string): number | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  let value = 0;
  for (const part of parts) {
    if (!/^(?:0|[1-9][0-9]{0,2})$/.test(part)) return null;
    const octet = Number(part);
    if (octet > 255) return null;
    value = value * 256 + octet;
  }
  return value;
}

function formatIpv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join(".");
}

/** Eight 16-bit groups, or null; accepts `::` compression and a trailing dotted quad. */
function parseIpv6(text: string): number[] | null {
  let source = text;
  const tail: number[] = [];
  if (source.includes(".")) {
    const colon = source.lastIndexOf(":");
    const v4 = parseIpv4(source.slice(colon + 1));
    if (colon < 0 || v4 === null) return null;
    tail.push(v4 >>> 16, v4 & 0xffff);
    // Keep a trailing ":" only when it belongs to a "::" before the dotted quad.
    source = source.slice(0, source.endsWith("::", colon + 1) ? colon + 1 : colon);
  }
  const halves = source.split("::");
  if (halves.length > 2) return null;
  const parse = (part: string): number[] | null => {
    if (part === "") return [];
    const groups: number[] = [];
    for (const group of part.split(":")) {
      if (!/^[0-9a-f]{1,4}$/i.test(group)) return null;
      groups.push(parseInt(group, 16));
    }
    return groups;
  };
  const head = parse(halves[0]);
  const rest = halves.length === 2 ? parse(halves[1]) : [];
  if (head === null || rest === null) return null;
  const given = head.length + rest.length + tail.length;
  if (halves.length === 1) return given === 8 ? [...head, ...tail] : null;
  if (given > 7) return null;
  return [...head, ...new Array(8 - given).fill(0), ...rest, ...tail];
}

function classifyV4(value: number): string | null {
  for (const [base, prefix, reason] of PRIVATE_V4) {
    if (inRange4(value, base, prefix)) return reason;
  }
  return null;
}

function classifyV6(groups: number[]): string | null {
  const [g0, g1, g2, g3, g4, g5, g6, g7] = groups;
  const embedded = ((g6 << 16) | g7) >>> 0;
  const firstFive = g0 | g1 | g2 | g3 | g4;
  if (firstFive === 0 && g5 === 0) {
    if (embedded === 0) return "unspecified address";
    if (embedded === 1) return "loopback address";
    return "IPv4-compatible address (deprecated)";
  }
  if (firstFive === 0 && g5 === 0xffff) {
    const reason = classifyV4(embedded);
    return reason === null ? null : `IPv4-mapped ${reason} (${formatIpv4(embedded)})`;
  }
  // NAT64: the well-known prefix 64:ff9b::/96 and the local-use 64:ff9b:1::/48
  // both carry the IPv4 destination in the last 32 bits.
  if (
    g0 === 0x64 && g1 === 0xff9b && ((g2 | g3 | g4 | g5) === 0 || g2 === 1)
  ) {
    const reason = classifyV4(embedded);
    return reason === null ? null : `NAT64 ${reason} (${formatIpv4(embedded)})`;
  }
  if (g0 === 0x2002) {
    // 6to4 carries an IPv4 address in bits 16..47.
    const v4 = ((g1 << 16) | g2) >>> 0;
    const reason = classifyV4(v4);
    return reason === null ? null : `6to4 ${reason} (${formatIpv4(v4)})`;
  }
  if ((g0 & 0xfe00) === 0xfc00) return "unique local address";
  if ((g0 & 0xffc0) === 0xfe80) return "link-local address";
  if ((g0 & 0xffc0) === 0xfec0) return "site-local address (deprecated)";
  if ((g0 & 0xff00) === 0xff00) return "multicast address";
  if (g0 === 0x0100 && (g1 | g2 | g3) === 0) return "discard-only address";
  if (g0 === 0x2001 && g1 === 0x0db8) return "documentation address";
  return null;
}

/**
 * Why `ip` is not a public unicast address, or null when it is. Accepts a
 * strict dotted-quad IPv4 address or an IPv6 address (optionally in
 * brackets); IPv4 embedded in IPv6 (mapped, NAT64, 6to4) is judged by the
 * embedded address. Anything unparseable is reported as such rather than
 * passed as public, so the guard fails closed.
 *
 * @example
 * ```ts
 * import { isPrivateAddress } from "../net/mod.ts";
 * isPrivateAddress("169.254.169.254"); // "link-local address (cloud metadata service)"
 * isPrivateAddress("::ffff:127.0.0.1"); // "IPv4-mapped loopback address (127.0.0.1)"
 * isPrivateAddress("8.8.8.8"); // null
 * ```
 */
export function isPrivateAddress(ip: string): string | null {
  let text = ip.trim();
  if (text.startsWith("[") && text.endsWith("]")) text = text.slice(1, -1);
  const v4 = parseIpv4(text);
  if (v4 !== null) return classifyV4(v4);
  // A zone index ("fe80::1%eth0") only ever qualifies a non-global address.
  const zone = text.indexOf("%");
  const groups = parseIpv6(zone < 0 ? text : text.slice(0, zone));
  if (groups === null) return "not a valid IP address";
  return classifyV6(groups);
}

/**
 * Whether `ip` lies in `cidr` ("10.0.0.0/8", "fd00::/8", or a bare address
 * meaning a single host). Either family; false for anything unparseable.
 */
export function ipInCidr(ip: string, cidr: string): boolean {
  const strip = (t: string) => t.trim().replace(/^\[(.*)\]$/, "$1");
  const [base, bitsText] = cidr.split("/");
  const a4 = parseIpv4(strip(ip));
  const b4 = parseIpv4(strip(base));
  if (a4 !== null || b4 !== null) {
    if (a4 === null || b4 === null) return false;
    const bits = bitsText === undefined ? 32 : Number(bitsText);
    if (!Number.isInteger(bits) || bits < 0 || bits > 32) return false;
    return inRange4(a4, (b4 & (bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0)) >>> 0, bits);
  }
  const a6 = parseIpv6(strip(ip));
  const b6 = parseIpv6(strip(base));
  if (a6 === null || b6 === null) return false;
  let bits = bitsText === undefined ? 128 : Number(bitsText);
  if (!Number.isInteger(bits) || bits < 0 || bits > 128) return false;
  for (let i = 0; i < 8 && bits > 0; i++, bits -= 16) {
    const take = Math.min(16, bits);
    const mask = (0xffff << (16 - take)) & 0xffff;
    if ((a6[i] & mask) !== (b6[i] & mask)) return false;
  }
  return true;
}

/** The SSRF guard of src/net/: address classification and checkUrl(), with no network (an injected resolver). */
import assert from "node:assert/strict";
import {
  checkUrl,
  createUrlGuard,
  FetchFailedError,
  FetchRefusedError,
  isPrivateAddress,
  type Resolver,
} from "../../src/net/mod.ts";

/** A resolver answering from `table`, recording every lookup. */
function resolver(table: Record<string, string[]>): Resolver & { asked: string[] } {
  const asked: string[] = [];
  const fn = (host: string) => {
    asked.push(host);
    return host in table
      ? Promise.resolve(table[host])
      : Promise.reject(new Error(`no such host ${host}`));
  };
  return Object.assign(fn, { asked });
}

function guard(allowHosts: string[], resolve: Resolver, signal = AbortSignal.timeout(5_000)) {
  return createUrlGuard({ allowHosts, resolve, signal });
}

Deno.test("checkUrl() refuses a private literal without a lookup and names the allowlist", async () => {
  const dns = resolver({});
  await assert.rejects(
    checkUrl(new URL("http://10.0.0.7:8080/x"), guard([], dns), null),
    (e: unknown) =>
      e instanceof FetchRefusedError && e.url === "http://10.0.0.7:8080/x" &&
      e.message ===
        'Refused: 10.0.0.7 is a private address (host "10.0.0.7"); add the host to policy fetch.allow_hosts to allow it',
  );
  await assert.rejects(
    checkUrl(new URL("http://[fe80::1]/"), guard([], dns), "https://example.org/start"),
    /Refused: fe80::1 is a link-local address \(host "\[fe80::1\]"\) \(redirected from https:\/\/example\.org\/start\)/,
  );
  // localhost is loopback whatever DNS would say (RFC 6761).
  await assert.rejects(
    checkUrl(new URL("http://api.localhost/"), guard([], dns), null),
    /loopback/,
  );
  assert.deepEqual(dns.asked, []);
});

Deno.test("checkUrl() refuses a name when any one of its addresses is private", async () => {
  const dns = resolver({ "mixed.example": ["93.184.216.34", "192.168.1.5"] });
  await assert.rejects(
    checkUrl(new URL("https://mixed.example/"), guard([], dns), null),
    /Refused: 192\.168\.1\.5 is a private address \(host "mixed\.example"\)/,
  );
  assert.deepEqual(dns.asked, ["mixed.example"]);
});

Deno.test("checkUrl() passes a name whose addresses are all public, and allowlisted hosts unresolved", async () => {
  const dns = resolver({ "public.example": ["93.184.216.34", "2606:2800:220:1::248"] });
  await checkUrl(new URL("https://public.example/a"), guard([], dns), null);
  // Allowlist entries are normalised as the URL parser spells hosts.
  const g = guard(["LOCALHOST", "::1", "Intranet.Example"], dns);
  await checkUrl(new URL("http://localhost:9/"), g, null);
  await checkUrl(new URL("http://[::1]:9/"), g, null);
  await checkUrl(new URL("http://intranet.example/"), g, null);
  assert.deepEqual(dns.asked, ["public.example"]);
});

Deno.test("checkUrl() refuses other schemes and credentials before any lookup", async () => {
  const dns = resolver({ "public.example": ["93.184.216.34"] });
  await assert.rejects(
    checkUrl(new URL("file:///etc/passwd"), guard([], dns), null),
    (e: unknown) =>
      e instanceof FetchRefusedError &&
      e.message === "Refused: file: URLs are not fetched, only http: and https:",
  );
  await assert.rejects(
    checkUrl(new URL("https://u:p@public.example/"), guard([], dns), null),
    /Refused: URLs with credentials are not fetched/,
  );
  assert.deepEqual(dns.asked, []);
});

Deno.test("checkUrl() reports an unresolvable or empty name as FetchFailedError", async () => {
  const dns = resolver({ "empty.example": [] });
  await assert.rejects(
    checkUrl(new URL("https://gone.example/"), guard([], dns), null),
    (e: unknown) =>
      e instanceof FetchFailedError &&
      /cannot resolve host "gone\.example": no such host gone\.example/.test(e.message),
  );
  await assert.rejects(
    checkUrl(new URL("https://empty.example/"), guard([], dns), null),
    (e: unknown) => e instanceof FetchFailedError && /has no addresses/.test(e.message),
  );
});

Deno.test("checkUrl() rethrows the signal's reason when aborted during a lookup", async () => {
  const controller = new AbortController();
  const reason = new Error("caller went away");
  const hanging: Resolver = () => new Promise(() => {});
  const pending = checkUrl(
    new URL("https://slow.example/"),
    guard([], hanging, controller.signal),
    null,
  );
  controller.abort(reason);
  await assert.rejects(pending, (e: unknown) => e === reason);
});

Deno.test("isPrivateAddress() classifies private, special and public addresses", () => {
  const cases: [string, string | null][] = [
    ["0.0.0.0", "this-network address"],
    ["10.1.2.3", "private address"],
    ["100.64.0.1", "shared (carrier-grade NAT) address"],
    ["100.128.0.1", null], // just past 100.64/10
    ["127.0.0.1", "loopback address"],
    ["127.255.255.254", "loopback address"],
    ["169.254.169.254", "link-local address (cloud metadata service)"],
    ["169.254.1.1", "link-local address"],
    ["172.16.0.1", "private address"],
    ["172.31.255.255", "private address"],
    ["172.32.0.1", null], // just past 172.16/12
    ["192.0.0.8", "IETF protocol assignment address"],
    ["192.168.0.1", "private address"],
    ["198.18.0.1", "benchmarking address"],
    ["198.19.255.255", "benchmarking address"],
    ["224.0.0.1", "multicast address"],
    ["239.255.255.250", "multicast address"],
    ["240.0.0.1", "reserved address"],
    ["255.255.255.255", "broadcast address"],
    ["93.184.216.34", null],
    ["8.8.8.8", null],
    ["1.1.1.1", null],
    ["::", "unspecified address"],
    ["::1", "loopback address"],
    ["[::1]", "loopback address"],
    ["0:0:0:0:0:0:0:1", "loopback address"],
    ["fc00::1", "unique local address"],
    ["fdff:ffff::1", "unique local address"],
    ["fe80::1", "link-local address"],
    ["fe80::1%eth0", "link-local address"],
    ["febf::1", "link-local address"],
    ["ff02::1", "multicast address"],
    ["::ffff:127.0.0.1", "IPv4-mapped loopback address (127.0.0.1)"],
    ["::ffff:7f00:1", "IPv4-mapped loopback address (127.0.0.1)"],
    ["::ffff:8.8.8.8", null],
    ["64:ff9b::10.0.0.1", "NAT64 private address (10.0.0.1)"],
    ["64:ff9b::8.8.8.8", null],
    ["2002:c0a8:0101::1", "6to4 private address (192.168.1.1)"],
    ["2606:2800:220:1::248", null],
    ["2001:4860:4860::8888", null],
    // Fail closed on anything that is not an address.
    ["example.com", "not a valid IP address"],
    ["010.0.0.1", "not a valid IP address"],
    ["256.0.0.1", "not a valid IP address"],
    ["1::2::3", "not a valid IP address"],
    ["1:2:3:4:5:6:7:8:9", "not a valid IP address"],
  ];
  for (const [ip, expected] of cases) assert.equal(isPrivateAddress(ip), expected, ip);
});

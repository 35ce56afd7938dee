/**
 * Where this server is reached: the Host and Origin allowlists for a bound port, and the public
 * base URL (the OAuth issuer; `<base>/mcp` the resource tokens name).
 * @module
 */
import { type Config, defaultAllowedHosts } from "../config.ts";

/** The hosts and origins the HTTP edge allows once the server listens on `port`. */
export function allowFor(
  config: Readonly<Config>,
  port: number,
): { hosts: string[]; origins: string[] } {
  const hosts = config.allowedHosts.length > 0
    ? config.allowedHosts.map((h) => h.toLowerCase())
    : defaultAllowedHosts(port);
  // Browsers always send the port in Origin unless it is the scheme's default, so by default
  // only pages served from this very port may call: not every local web app on localhost.
  const originHosts = config.allowedHosts.length > 0
    ? hosts
    : hosts.filter((h) => h.endsWith(`:${port}`));
  const origins = config.allowedOrigins.length > 0
    ? config.allowedOrigins.map((o) => o.toLowerCase())
    : originHosts.flatMap((h) => [`http://${h}`, `https://${h}`]);
  if (config.publicUrl !== undefined) {
    // The name clients use behind a proxy or a real hostname is allowed as well.
    const pub = new URL(config.publicUrl);
    hosts.push(pub.host.toLowerCase());
    origins.push(pub.origin.toLowerCase());
  }
  return { hosts, origins };
}

/** This server's public base URL when it listens on `boundPort`. */
export function publicBaseOf(config: Readonly<Config>, boundPort: number): string {
  if (config.issuer) return config.issuer;
  if (config.publicUrl) return config.publicUrl.replace(/\/+$/, "");
  const h = config.host.includes(":") ? `[${config.host}]` : config.host;
  return `http://${h === "0.0.0.0" || h === "[::]" ? "127.0.0.1" : h}:${boundPort}`;
}

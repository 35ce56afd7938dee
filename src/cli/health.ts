/**
 * `warden health`: asks a running server's /health.
 * @module
 */
import { type Config } from "../config.ts";
import { oneLine, serverBase } from "./_common.ts";

/** `warden health`: probes a running server's /health (the Docker HEALTHCHECK, no curl needed). */
export async function health(config: Readonly<Config>): Promise<number> {
  const host = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host;
  const shown = host.includes(":") ? `[${host}]` : host;
  // --url names the server explicitly (with or without /mcp); otherwise loopback on --host/--port,
  // and /health is exempt from the Host check, so this works whatever --allowed-hosts says.
  const target = config.url
    ? `${serverBase(config.url)}/health`
    : `http://${shown}:${config.port}/health`;
  try {
    const res = await fetch(target, {
      signal: AbortSignal.timeout(5000),
    });
    const body = await res.text();
    console.log(body);
    return res.ok ? 0 : 1;
  } catch (e) {
    console.error(`warden: health check failed (${target}): ${oneLine(e)}`);
    return 1;
  }
}

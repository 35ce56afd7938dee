/**
 * Runs server-everything over Streamable HTTP on the port in argv[0] and
 * prints `{"port": N}` once it listens (the bench reads that line); stops it
 * on SIGTERM.
 */
import { startEverything } from "../_helpers/upstreams.ts";

const up = await startEverything("streamableHttp", Number(Deno.args[0]));
console.log(JSON.stringify({ port: up.port }));
Deno.addSignalListener("SIGTERM", async () => {
  await up.stop();
  Deno.exit(0);
});

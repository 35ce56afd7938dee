/**
 * How the benches start Warden as `deno task start` does: with the V8 flags that task passes
 * (deno.json), so a bench and the soak measure the default configuration, heap ceiling and all.
 * @module
 */

const TASKS = JSON.parse(
  Deno.readTextFileSync(new URL("../../deno.json", import.meta.url)),
).tasks as Record<string, string>;

/** `--v8-flags=…` of `deno task start`, as `deno run` arguments (none when it passes none). */
export const WARDEN_V8_FLAGS: string[] = TASKS.start.split(" ").filter((a) =>
  a.startsWith("--v8-flags=")
);

/** Two Warden processes on one KV file and one policy, for the cross-process limit tests. */
import { spawnServer } from "../_helpers/server.ts";

/** Starts both (the first creates the vault identity); `stop()` ends them and removes the files. */
export async function twoServers(policy: unknown, args: string[] = []) {
  const dir = await Deno.makeTempDir();
  const policyFile = `${dir}/policy.json`;
  await Deno.writeTextFile(policyFile, JSON.stringify(policy));
  const common = ["--kv", `${dir}/shared.db`, "--policy", policyFile, ...args];
  // The first creates the vault identity in KV; the second finds it there.
  const a = await spawnServer(common);
  const b = await spawnServer(common);
  return {
    urls: [a.url, b.url],
    async stop() {
      await a.stop();
      await b.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

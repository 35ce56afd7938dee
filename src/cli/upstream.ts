/**
 * `warden upstream credential …`: the credentials Warden presents to
 * upstreams, encrypted in the --kv file under the credential key. A secret
 * is read from stdin (or `WARDEN_UPSTREAM_SECRET`), never from a flag, so it
 * stays out of shell history and process listings; nothing prints it back.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { readCapped } from "../net/mod.ts";
import {
  createCredentialStore,
  CredentialError,
  generateCredentialKeyString,
  loadCredentialKey,
} from "../gateway/mod.ts";

/** Usage of the credential commands, for `warden --help` and errors. */
export const CREDENTIAL_USAGE = [
  "warden upstream credential set NAME --bearer [--kv PATH] [--credential-key FILE]   (secret from stdin or WARDEN_UPSTREAM_SECRET)",
  "warden upstream credential set NAME --header HEADER [--kv PATH] [--credential-key FILE]",
  "warden upstream credential list [--kv PATH]",
  "warden upstream credential remove NAME [--kv PATH]",
  "warden upstream credential keygen   (prints a key for WARDEN_CREDENTIAL_KEY)",
].join("\n");

const UPSTREAM_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$/;

class Usage extends Error {}

async function readSecret(env: (name: string) => string | undefined): Promise<string> {
  const fromEnv = env("WARDEN_UPSTREAM_SECRET");
  if (fromEnv !== undefined) return fromEnv;
  const bytes = await readCapped(Deno.stdin.readable, 8192);
  if (bytes === undefined) throw new CredentialError("the secret on stdin exceeds 8192 bytes");
  const text = new TextDecoder().decode(bytes).replace(/\r?\n$/, "");
  if (text === "") throw new CredentialError("no secret on stdin (or WARDEN_UPSTREAM_SECRET)");
  return text;
}

/** Runs `warden upstream credential …`; resolves with the exit code. */
export async function credentialCommand(
  argv: readonly string[],
  env: (name: string) => string | undefined = (n) => Deno.env.get(n),
): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: {
        kv: { type: "string" },
        "credential-key": { type: "string" },
        bearer: { type: "boolean" },
        header: { type: "string" },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    console.error(`warden: ${(e as Error).message}\n\n${CREDENTIAL_USAGE}`);
    return 2;
  }
  const [group, sub, action, name] = parsed.positionals;
  const v = parsed.values;
  let kv: Deno.Kv | undefined;
  try {
    if (group !== "upstream" || sub !== "credential") {
      throw new Usage(`unknown command "${parsed.positionals.join(" ")}"`);
    }
    if (action === "keygen") {
      console.log(generateCredentialKeyString());
      return 0;
    }
    if (env("DENO_DEPLOYMENT_ID") !== undefined) {
      throw new CredentialError(
        "upstream credential commands manage a local --kv file; not available on Deno Deploy",
      );
    }
    const kvPath = v.kv ?? env("WARDEN_KV") ?? "./warden.db";
    const loaded = await loadCredentialKey({
      keyString: env("WARDEN_CREDENTIAL_KEY"),
      file: v["credential-key"],
      kvPath,
      onDeploy: false,
    });
    kv = await Deno.openKv(kvPath);
    const store = createCredentialStore(kv, loaded.key, loaded.unavailable);
    if (action === "set") {
      if (name === undefined || !UPSTREAM_NAME.test(name)) {
        throw new Usage("credential set needs the upstream's NAME");
      }
      if ((v.bearer === true) === (v.header !== undefined)) {
        throw new Usage("credential set needs exactly one of --bearer or --header HEADER");
      }
      const secret = await readSecret(env);
      const summary = await store.set(
        name,
        v.bearer === true
          ? { kind: "bearer", token: secret }
          : { kind: "headers", headers: { [v.header!]: secret } },
      );
      console.log(
        `stored a ${summary.kind} credential for upstream ${name} (headers: ${
          summary.header_names.join(", ")
        }), encrypted with ${loaded.file ?? "WARDEN_CREDENTIAL_KEY"}${
          loaded.created ? " (created now; keep it beside the KV, or move it to the env)" : ""
        }; a running Warden uses it from the upstream's next connection`,
      );
      return 0;
    }
    if (action === "list") {
      for (const c of await store.list()) {
        console.log(
          [c.upstream, c.kind, `headers=${c.header_names.join(",")}`, c.set_at].join("\t"),
        );
      }
      return 0;
    }
    if (action === "remove") {
      if (name === undefined) throw new Usage("credential remove needs the upstream's NAME");
      if (!(await store.remove(name))) {
        console.error(`warden: no credential for upstream "${name}"`);
        return 1;
      }
      console.log(`removed the credential for upstream ${name}`);
      return 0;
    }
    throw new Usage(`unknown command "${parsed.positionals.join(" ")}"`);
  } catch (e) {
    console.error(`warden: ${(e as Error).message}`);
    if (e instanceof Usage) console.error(`\n${CREDENTIAL_USAGE}`);
    return e instanceof Usage ? 2 : 1;
  } finally {
    kv?.close();
  }
}

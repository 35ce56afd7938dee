/**
 * `warden upstream credential …`: the credentials Warden presents to
 * upstreams, encrypted in the --kv file under the credential key. A secret
 * is read from stdin (or `WARDEN_UPSTREAM_SECRET`), never from a flag, so it
 * stays out of shell history and process listings; nothing prints it back.
 *
 * @module
 */
import {
  createCredentialStore,
  CredentialError,
  generateCredentialKeyString,
  loadCredentialKey,
} from "../gateway/mod.ts";
import { readSecretInput, runSubcommand, UsageError } from "./_common.ts";

/** Usage of the credential commands, for `warden --help` and errors. */
export const CREDENTIAL_USAGE = [
  "warden upstream credential set NAME --bearer [--kv PATH] [--credential-key FILE]   (secret from stdin or WARDEN_UPSTREAM_SECRET)",
  "warden upstream credential set NAME --header HEADER [--kv PATH] [--credential-key FILE]",
  "warden upstream credential list [--kv PATH]",
  "warden upstream credential remove NAME [--kv PATH]",
  "warden upstream credential keygen   (prints a key for WARDEN_CREDENTIAL_KEY)",
].join("\n");

const UPSTREAM_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$/;

async function readSecret(env: (name: string) => string | undefined): Promise<string> {
  const text = await readSecretInput(env("WARDEN_UPSTREAM_SECRET"), 8192);
  if (text === undefined) throw new CredentialError("the secret on stdin exceeds 8192 bytes");
  if (text === "") throw new CredentialError("no secret on stdin (or WARDEN_UPSTREAM_SECRET)");
  return text;
}

const OPTIONS = {
  kv: { type: "string" },
  "credential-key": { type: "string" },
  bearer: { type: "boolean" },
  header: { type: "string" },
} as const;

/** Runs `warden upstream credential …`; resolves with the exit code. */
export function credentialCommand(
  argv: readonly string[],
  env: (name: string) => string | undefined = (n) => Deno.env.get(n),
): Promise<number> {
  return runSubcommand(
    argv,
    { options: OPTIONS, usage: CREDENTIAL_USAGE },
    async (parsed, openKv) => {
      const [group, sub, action, name] = parsed.positionals;
      const v = parsed.values;
      if (group !== "upstream" || sub !== "credential") {
        throw new UsageError(`unknown command "${parsed.positionals.join(" ")}"`);
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
      const kv = await openKv(kvPath);
      const store = createCredentialStore(kv, loaded.key, loaded.unavailable);
      if (action === "set") {
        if (name === undefined || !UPSTREAM_NAME.test(name)) {
          throw new UsageError("credential set needs the upstream's NAME");
        }
        if ((v.bearer === true) === (v.header !== undefined)) {
          throw new UsageError("credential set needs exactly one of --bearer or --header HEADER");
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
        if (name === undefined) throw new UsageError("credential remove needs the upstream's NAME");
        if (!(await store.remove(name))) {
          console.error(`warden: no credential for upstream "${name}"`);
          return 1;
        }
        console.log(`removed the credential for upstream ${name}`);
        return 0;
      }
      throw new UsageError(`unknown command "${parsed.positionals.join(" ")}"`);
    },
  );
}

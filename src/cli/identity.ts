/**
 * `warden token …` and `warden user …`: manage principals in the --kv file.
 * Parsed apart from the server flags (they take their own), so a secret is
 * only ever printed by `token create`, once, alone on the last line.
 *
 * @module
 */
import {
  addUser,
  createToken,
  listTokens,
  listUsers,
  parseDuration,
  removeUser,
  revokeToken,
} from "../identity/mod.ts";
import { readSecretInput, runSubcommand, UsageError } from "./_common.ts";

/** Usage of the identity commands, for `warden --help`. */
export const IDENTITY_USAGE = [
  "warden token create --name NAME [--roles A,B] [--scopes S,T] [--expires 30d] [--kv PATH]",
  "warden token list [--kv PATH]",
  "warden token revoke ID|NAME [--kv PATH]",
  "warden user add NAME [--roles A,B] [--kv PATH]   (password from stdin or WARDEN_PASSWORD)",
  "warden user list [--kv PATH]",
  "warden user remove NAME [--kv PATH]",
].join("\n");

const list = (v: string | undefined) =>
  v === undefined ? [] : v.split(",").map((s) => s.trim()).filter((s) => s !== "");

async function readPassword(env: (name: string) => string | undefined): Promise<string> {
  const password = await readSecretInput(env("WARDEN_PASSWORD"), 4096);
  if (password === undefined) throw new Error("password on stdin exceeds 4096 bytes");
  return password;
}

const OPTIONS = {
  kv: { type: "string" },
  name: { type: "string" },
  roles: { type: "string" },
  scopes: { type: "string" },
  expires: { type: "string" },
} as const;

/** Runs `warden token|user …`; resolves with the exit code. */
export function identityCommand(
  argv: readonly string[],
  env: (name: string) => string | undefined = (n) => Deno.env.get(n),
): Promise<number> {
  return runSubcommand(
    argv,
    { options: OPTIONS, usage: IDENTITY_USAGE },
    async (parsed, openKv) => {
      const [group, action, arg] = parsed.positionals;
      const v = parsed.values;
      if (env("DENO_DEPLOYMENT_ID") !== undefined) {
        console.error(
          "warden: token/user commands manage a local --kv file; not available on Deno Deploy",
        );
        return 2;
      }
      const kv = await openKv(v.kv ?? env("WARDEN_KV") ?? "./warden.db");
      if (group === "token" && action === "create") {
        if (v.name === undefined) throw new UsageError("token create needs --name NAME");
        const { secret, record } = await createToken(kv, {
          name: v.name,
          roles: list(v.roles),
          scopes: list(v.scopes),
          ...(v.expires !== undefined ? { expiresInMs: parseDuration(v.expires) } : {}),
        });
        console.log(
          `created token ${record.id} for ${record.name} (roles: ${
            record.roles.join(",") || "none"
          }; expires: ${
            record.expires_ms !== undefined ? new Date(record.expires_ms).toISOString() : "never"
          }). The secret is shown once:`,
        );
        console.log(secret);
        return 0;
      }
      if (group === "token" && action === "list") {
        const now = Date.now();
        for (const t of await listTokens(kv)) {
          const state = t.revoked_ms !== undefined
            ? "revoked"
            : t.expires_ms !== undefined && t.expires_ms <= now
            ? "expired"
            : "active";
          console.log(
            [
              t.id,
              t.name,
              state,
              `roles=${t.roles.join(",")}`,
              `scopes=${t.scopes.join(",")}`,
              `expires=${
                t.expires_ms !== undefined ? new Date(t.expires_ms).toISOString() : "never"
              }`,
            ].join("\t"),
          );
        }
        return 0;
      }
      if (group === "token" && action === "revoke") {
        if (arg === undefined) throw new UsageError("token revoke needs an ID or NAME");
        const n = await revokeToken(kv, arg);
        if (n === 0) {
          console.error(`warden: no active token matches "${arg}"`);
          return 1;
        }
        console.log(`revoked ${n} token(s)`);
        return 0;
      }
      if (group === "user" && action === "add") {
        const name = arg ?? v.name;
        if (name === undefined) throw new UsageError("user add needs a NAME");
        const user = await addUser(kv, {
          name,
          password: await readPassword(env),
          roles: list(v.roles),
        });
        console.log(`added user ${user.name} (roles: ${user.roles.join(",") || "none"})`);
        return 0;
      }
      if (group === "user" && action === "list") {
        for (const u of await listUsers(kv)) console.log(`${u.name}\troles=${u.roles.join(",")}`);
        return 0;
      }
      if (group === "user" && action === "remove") {
        if (arg === undefined) throw new UsageError("user remove needs a NAME");
        if (!(await removeUser(kv, arg))) {
          console.error(`warden: no user "${arg}"`);
          return 1;
        }
        console.log(`removed user ${arg}`);
        return 0;
      }
      throw new UsageError(`unknown command "${parsed.positionals.join(" ")}"`);
    },
  );
}

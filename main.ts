/**
 * Warden's command line: parses the command and hands it to its file in src/cli/ (serve and
 * stdio in serve.ts, export/verify in vault.ts, approve/deny/approve-tool in holds.ts, keygen,
 * health, token/user, upstream). Opening resources (KV, the listening socket) and process-wide
 * handlers happen there, in the command that needs them.
 */
import { redact } from "./src/governance/mod.ts";
import { type Config, ConfigError, helpText, loadConfig } from "./src/config.ts";
import { createLogger, type Logger, withRedaction } from "./src/lib/mod.ts";
import { VaultIdentityError } from "./src/vault/mod.ts";
import {
  approveToolCommand,
  credentialCommand,
  decideCommand,
  exportCommand,
  health,
  identityCommand,
  keygenCommand,
  type MainOptions,
  serve,
  stdio,
  verifyCommand,
  withSigningKeyFile,
} from "./src/cli/mod.ts";

/** How many positional arguments each command takes after its name. */
const POSITIONALS: Readonly<Record<string, number>> = {
  serve: 0,
  stdio: 0,
  health: 0,
  export: 0,
  keygen: 0,
  verify: 1,
  approve: 1,
  deny: 1,
  "approve-tool": 2,
};

/** Runs the CLI and resolves with the process exit code. */
export async function main(argv: string[], options: MainOptions = {}): Promise<number> {
  if (argv[0] === "token" || argv[0] === "user") return await identityCommand(argv);
  if (argv[0] === "upstream") return await credentialCommand(argv);
  let config: Readonly<Config>;
  try {
    config = loadConfig(argv, (name) => Deno.env.get(name));
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`warden: ${e.message}\nRun 'warden --help' for usage.`);
      return 2;
    }
    throw e;
  }
  const allowed = POSITIONALS[config.command];
  if (allowed !== undefined && config.args.length > allowed) {
    console.error(
      `warden: ${config.command} takes ${allowed === 0 ? "no" : `at most ${allowed}`} ` +
        `positional argument${allowed === 1 ? "" : "s"}; unexpected: ${
          config.args.slice(allowed).map((a) => JSON.stringify(a)).join(" ")
        }\nRun 'warden --help' for usage.`,
    );
    return 2;
  }
  // Every line through the vault's secret detectors (the app's own wrapper is then this one).
  const logger = withRedaction(createLogger({ level: config.logLevel }), (v) => redact(v).value);
  try {
    config = await withSigningKeyFile(config);
  } catch (e) {
    console.error(`warden: cannot read --signing-key file: ${(e as Error).message}`);
    return 2;
  }
  try {
    return await dispatch(config, logger, options);
  } catch (e) {
    if (e instanceof ConfigError || e instanceof VaultIdentityError) {
      console.error(`warden: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

async function dispatch(
  config: Readonly<Config>,
  logger: Logger,
  options: MainOptions,
): Promise<number> {
  switch (config.command) {
    case "help":
      console.log(helpText());
      return 0;
    case "serve":
      return await serve(config, logger, options);
    case "stdio":
      await stdio(config, logger, options);
      return 0;
    case "health":
      return await health(config);
    case "export":
      return await exportCommand(config, logger);
    case "verify":
      return await verifyCommand(config);
    case "keygen":
      return await keygenCommand(config);
    case "approve":
    case "deny":
      return await decideCommand(config, config.command);
    case "approve-tool":
      return await approveToolCommand(config);
    default:
      console.error(`warden: unknown command "${config.command}"\n\n${helpText()}`);
      return 2;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}

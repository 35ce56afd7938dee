/**
 * Helpers the CLI commands share: opening the KV, the signing key file, reaching a running server,
 * running a subcommand of its own flags and reading a secret from stdin.
 * @module
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { type Config, ConfigError } from "../config.ts";
import { readCapped } from "../net/mod.ts";
import { type Logger } from "../lib/mod.ts";
import type { ToolDefinition } from "../calls/mod.ts";

/** Reads --signing-key FILE into the config (config.ts reads flags and env, never files). */
export async function withSigningKeyFile(config: Readonly<Config>): Promise<Readonly<Config>> {
  if (config.signingKeyFile === undefined) return config;
  const text = (await Deno.readTextFile(config.signingKeyFile)).trim();
  return { ...config, signingKey: text };
}

/** `<kv>.signing-key` beside a KV file; none for :memory: or Deno Deploy (key from env there). */
export function defaultSigningKeyFile(config: Readonly<Config>): string | undefined {
  if (config.kvPath === undefined || config.kvPath === ":memory:") return undefined;
  return `${config.kvPath}.signing-key`;
}

export async function openKv(config: Readonly<Config>, logger: Logger): Promise<Deno.Kv> {
  if (config.kvPath === undefined) {
    logger.info("opening Deno Deploy KV");
    return await Deno.openKv();
  }
  if (config.kvPath !== ":memory:") await requireParentDir("--kv", config.kvPath);
  try {
    return await Deno.openKv(config.kvPath);
  } catch (e) {
    throw new ConfigError(`cannot open --kv ${config.kvPath}: ${oneLine(e)}`);
  }
}

/** First line of an error's message: CLI errors are one line, never a stack trace. */
export function oneLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split("\n")[0];
}

/** The directory a file flag writes into must exist; a one-line error names the flag otherwise. */
export async function requireParentDir(flag: string, path: string): Promise<void> {
  const slash = path.lastIndexOf("/");
  const dir = slash < 0 ? "." : slash === 0 ? "/" : path.slice(0, slash);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(dir);
  } catch {
    throw new ConfigError(`${flag} ${path}: directory ${dir} does not exist`);
  }
  if (!info.isDirectory) throw new ConfigError(`${flag} ${path}: ${dir} is not a directory`);
}

/**
 * The server's base URL from whatever the operator pasted: the advertised
 * `…/mcp` endpoint or the bare origin, with or without a trailing slash.
 */
export function serverBase(url: string): string {
  return url.replace(/\/+$/, "").replace(/\/mcp$/, "").replace(/\/+$/, "");
}

/** Appends what to do about a 401/403 to a message about a remote call. */
export function authHint(message: string): string {
  return /\b(401|403)\b/.test(message)
    ? `${message} (the server requires a bearer token: pass --token SECRET or set WARDEN_TOKEN)`
    : message;
}

/** `warden/<hostname>`: the origin of a new log unless configured. */
export function defaultOrigin(): string {
  try {
    return `warden/${Deno.hostname()}`;
  } catch {
    return "warden/localhost";
  }
}

/** Test harnesses start the real CLI with extra tools; production passes none. */
export interface MainOptions {
  readonly extraTools?: readonly ToolDefinition[];
}

/** A wrong command line: the subcommand prints its usage after the message and exits 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/**
 * Runs a subcommand that takes its own flags (apart from the server's) and may open a --kv file:
 * `argv` parsed strictly with positionals allowed, then `run`. A flag error or a
 * {@link UsageError} prints `warden: <message>`, a blank line and `usage`, and resolves 2; any
 * other error prints `warden: <message>` and resolves 1. Every KV opened through `openKv` is
 * closed when `run` ends.
 */
export async function runSubcommand<O extends ParseArgsOptionsConfig>(
  argv: readonly string[],
  spec: { readonly options: O; readonly usage: string },
  run: (
    parsed: ReturnType<typeof parseArgs<{ options: O; allowPositionals: true; strict: true }>>,
    openKv: (path: string) => Promise<Deno.Kv>,
  ) => Promise<number>,
): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: spec.options,
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    console.error(`warden: ${(e as Error).message}\n\n${spec.usage}`);
    return 2;
  }
  const opened: Deno.Kv[] = [];
  try {
    return await run(parsed, async (path) => {
      const kv = await Deno.openKv(path);
      opened.push(kv);
      return kv;
    });
  } catch (e) {
    console.error(`warden: ${(e as Error).message}`);
    if (e instanceof UsageError) console.error(`\n${spec.usage}`);
    return e instanceof UsageError ? 2 : 1;
  } finally {
    for (const kv of opened) kv.close();
  }
}

/**
 * A secret given in an environment variable (`fromEnv`, taken as it is) or else on stdin: at most
 * `maxBytes`, one trailing newline dropped. Undefined when stdin holds more than `maxBytes`.
 */
export async function readSecretInput(
  fromEnv: string | undefined,
  maxBytes: number,
): Promise<string | undefined> {
  if (fromEnv !== undefined) return fromEnv;
  const bytes = await readCapped(Deno.stdin.readable, maxBytes);
  return bytes === undefined ? undefined : new TextDecoder().decode(bytes).replace(/\r?\n$/, "");
}

/**
 * Which directories file tools may read: policy `files.roots`, or by default
 * a dedicated `warden-files/` directory beside the KV file — never the
 * working directory, which is often a home directory or `/`. A root that
 * would expose Warden's own secrets (the KV file, the signing key, an
 * operator key directory) is refused at start-up.
 *
 * @module
 */

import { dirname, join, resolve } from "node:path";
import { isInside, OPERATOR_KEY_FILE } from "./confine.ts";

/** The default root's name, created beside the KV file. */
export const DEFAULT_FILES_DIR = "warden-files";

/** The roots file tools work in, resolved once at start-up. */
export interface FileRoots {
  /** Real paths of the roots; empty when file access is unavailable. */
  readonly roots: readonly string[];
  /** Real paths never opened, even inside a root. */
  readonly protectedPaths: readonly string[];
  /** Accept files with several hard links (policy files.allow_hardlinks). */
  readonly allowHardlinks: boolean;
  /** Why there are no roots, when there are none. */
  readonly unavailable?: string;
}

/** A configured root cannot be used; start-up stops with this message. */
export class FileRootError extends Error {
  override name = "FileRootError";
}

/** Entries examined per root when looking for operator key files at start-up. */
const MAX_SCAN = 20_000;

async function findKeyFile(root: string): Promise<string | undefined> {
  let scanned = 0;
  const queue = [root];
  while (queue.length > 0 && scanned < MAX_SCAN) {
    const dir = queue.shift()!;
    try {
      for await (const entry of Deno.readDir(dir)) {
        if (++scanned > MAX_SCAN) break;
        if (entry.name === OPERATOR_KEY_FILE) return dir;
        if (entry.isDirectory) queue.push(join(dir, entry.name));
      }
    } catch {
      // Unreadable directories are unreadable to the file tools too.
    }
  }
  return undefined;
}

async function realOrResolved(path: string): Promise<string> {
  try {
    return await Deno.realPath(path);
  } catch {
    return resolve(path);
  }
}

/**
 * Resolves the file roots. `configured` is policy `files.roots` (undefined
 * when the policy does not set it); `kvPath` the KV file (undefined on Deno
 * Deploy, ":memory:" for a throw-away store). The default root is created
 * (mode 0700) when missing. Throws `FileRootError` naming the root and the
 * secret it would expose.
 *
 * @example
 * ```ts
 * import { resolveFileRoots } from "./roots.ts";
 * const files = await resolveFileRoots({ kvPath: "/data/warden.db", protectedPaths: ["/data/warden.db"] });
 * files.roots; // ["/data/warden-files"]
 * ```
 */
export async function resolveFileRoots(options: {
  readonly configured?: readonly string[];
  readonly kvPath?: string;
  readonly onDeploy?: boolean;
  readonly protectedPaths?: readonly string[];
  readonly allowHardlinks?: boolean;
}): Promise<FileRoots> {
  const allowHardlinks = options.allowHardlinks === true;
  const protectedPaths = await Promise.all((options.protectedPaths ?? []).map(realOrResolved));
  if (options.onDeploy) {
    return {
      roots: [],
      protectedPaths,
      allowHardlinks,
      unavailable: "file inspection is not available on Deno Deploy (it has no local files)",
    };
  }
  let configured = options.configured;
  if (configured === undefined) {
    const kv = options.kvPath;
    if (kv === undefined || kv === ":memory:" || kv === "") {
      return {
        roots: [],
        protectedPaths,
        allowHardlinks,
        unavailable: "no file roots: policy files.roots is not set and the KV is not a file " +
          `(the default root is ${DEFAULT_FILES_DIR}/ beside the KV file)`,
      };
    }
    const dir = join(dirname(resolve(kv)), DEFAULT_FILES_DIR);
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    configured = [dir];
  }
  const roots: string[] = [];
  for (const root of configured) {
    let real: string;
    try {
      real = await Deno.realPath(root);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      // A root that does not exist (yet) contains nothing, and no secret.
      continue;
    }
    for (const secret of protectedPaths) {
      if (isInside(secret, real)) {
        throw new FileRootError(
          `policy files.roots entry ${JSON.stringify(root)} contains ${secret}, ` +
            "which holds Warden's own secrets; choose a directory that does not",
        );
      }
    }
    const keyDir = await findKeyFile(real);
    if (keyDir !== undefined) {
      throw new FileRootError(
        `policy files.roots entry ${JSON.stringify(root)} contains the operator key directory ` +
          `${keyDir}; move the key out of every file root or choose another root`,
      );
    }
    roots.push(real);
  }
  return {
    roots,
    protectedPaths,
    allowHardlinks,
    ...(roots.length === 0 ? { unavailable: "none of the configured file roots exists" } : {}),
  };
}

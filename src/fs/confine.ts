/**
 * Root confinement: opening a file or directory so that what was opened is
 * provably inside a root, whatever the file system does meanwhile.
 *
 * Checking a path and then opening it is a race: between the two, a
 * component can be swapped for a symbolic link to `/etc`. So the order here
 * is open first, check the opened object second:
 *
 * 1. the final component is opened with `O_NOFOLLOW` (a link swapped in at
 *    the last moment fails with ELOOP) and `O_NONBLOCK` (a FIFO cannot stall
 *    the open);
 * 2. the open descriptor's own path is read back from `/proc/self/fd` and
 *    must lie inside the root — so a swapped parent directory is caught too.
 *    Where `/proc` is unavailable, the opened file's device and inode must
 *    match those of the path's real location inside the root;
 * 3. a file with more than one hard link is refused unless allowed: another
 *    name for the same inode may live outside every root;
 * 4. paths that hold Warden's own secrets (KV file, signing key, operator
 *    key directories) are refused even inside a root.
 *
 * @module
 */

import { constants } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { basename, dirname, sep as SEPARATOR } from "node:path";

/** The name `warden keygen` gives an operator's private key file. */
export const OPERATOR_KEY_FILE = "operator.key";

/** Why an opened path was refused; `reason` never repeats the path. */
export class ConfinementError extends Error {
  override name = "ConfinementError";
  readonly reason: string;
  constructor(reason: string) {
    super(reason);
    this.reason = reason;
  }
}

/** Whether `path` is `root` or below it (both absolute, normalised). */
export function isInside(path: string, root: string): boolean {
  if (path === root) return true;
  const prefix = root.endsWith(SEPARATOR) ? root : root + SEPARATOR;
  return path.startsWith(prefix);
}

/** What a confined open needs to know. */
export interface ConfineOptions {
  /** The real path of the root the object must lie in. */
  readonly root: string;
  /** Real paths never to open, nor anything below them. */
  readonly protectedPaths?: readonly string[];
  /** Accept regular files with more than one hard link. */
  readonly allowHardlinks?: boolean;
}

/** An opened object and the facts checked about it. */
export interface Confined {
  readonly handle: FileHandle;
  /** Where the descriptor really points. */
  readonly real: string;
  readonly kind: "file" | "directory";
  readonly size: number;
  readonly mtime: Date | null;
  /**
   * A path that names exactly the opened object, immune to later renames
   * (`/proc/self/fd/N` where available, else `real`). Valid until closed.
   */
  readonly fdPath: string;
}

async function descriptorPath(fd: number): Promise<string | null> {
  try {
    const target = await Deno.readLink(`/proc/self/fd/${fd}`);
    // "/x/y (deleted)" or "pipe:[…]" cannot be checked by path.
    return target.startsWith("/") && !target.endsWith(" (deleted)") ? target : null;
  } catch {
    return null;
  }
}

/**
 * Refuses a real path that is, or is inside, a protected path, or that is
 * an operator key file or lies in a directory holding one.
 */
export async function checkNotSecret(
  real: string,
  protectedPaths: readonly string[] = [],
): Promise<void> {
  for (const secret of protectedPaths) {
    if (isInside(real, secret)) throw new ConfinementError("holds Warden's own secrets");
  }
  if (basename(real) === OPERATOR_KEY_FILE) {
    throw new ConfinementError("is an operator key file");
  }
  // A key directory is recognised by its key file, wherever keygen put it.
  for (const dir of [dirname(real)]) {
    try {
      const info = await Deno.lstat(dir + SEPARATOR + OPERATOR_KEY_FILE);
      if (info.isFile || info.isSymlink) {
        throw new ConfinementError("is inside an operator key directory");
      }
    } catch (e) {
      if (e instanceof ConfinementError) throw e;
    }
  }
}

/**
 * Opens `path` (already resolved to its real location) read-only without
 * following a symbolic link at its final component, then proves the opened
 * object is inside `options.root`. Throws `ConfinementError` when it is not,
 * when it is neither a regular file nor a directory, or when a regular file
 * has several hard links and `allowHardlinks` is false; file-system errors
 * (NotFound, PermissionDenied) pass through as Deno errors.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openConfined } from "./confine.ts";
 * const root = await Deno.realPath(await Deno.makeTempDir());
 * await Deno.writeTextFile(`${root}/a.txt`, "hi");
 * const opened = await openConfined(`${root}/a.txt`, { root });
 * try {
 *   assert.equal(opened.kind, "file");
 *   assert.equal(opened.size, 2);
 * } finally {
 *   await opened.handle.close();
 * }
 * await Deno.symlink("/etc/hostname", `${root}/link`);
 * await assert.rejects(openConfined(`${root}/link`, { root })); // a final symlink is refused
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function openConfined(path: string, options: ConfineOptions): Promise<Confined> {
  await checkNotSecret(path, options.protectedPaths);
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    throw translate(e);
  }
  try {
    const info = await handle.stat();
    const kind = info.isFile() ? "file" : info.isDirectory() ? "directory" : undefined;
    if (kind === undefined) throw new ConfinementError("is not a regular file or directory");
    let real = await descriptorPath(handle.fd);
    let fdPath = `/proc/self/fd/${handle.fd}`;
    if (real === null) {
      // No /proc: the path's real location must be the very inode we hold.
      real = await Deno.realPath(path);
      const again = await Deno.stat(real);
      if (again.dev !== info.dev || again.ino !== info.ino) {
        throw new ConfinementError("changed while it was being opened");
      }
      fdPath = real;
    }
    if (!isInside(real, options.root)) {
      throw new ConfinementError("is outside the configured roots (it changed while being opened)");
    }
    await checkNotSecret(real, options.protectedPaths);
    if (kind === "file" && info.nlink > 1 && options.allowHardlinks !== true) {
      throw new ConfinementError(
        `has ${info.nlink} hard links; another name may lie outside the roots ` +
          "(policy files.allow_hardlinks allows it)",
      );
    }
    return {
      handle,
      real,
      kind,
      size: info.size,
      mtime: info.mtime ?? null,
      fdPath,
    };
  } catch (e) {
    await handle.close().catch(() => {});
    throw e;
  }
}

/** node:fs errors carry `code`; give callers the Deno error classes they already catch. */
function translate(e: unknown): unknown {
  const code = (e as { code?: string }).code;
  if (code === "ELOOP") {
    return new ConfinementError("is a symbolic link that changed while being opened");
  }
  if (code === "ENOENT" || code === "ENOTDIR") return new Deno.errors.NotFound(String(e));
  if (code === "EACCES" || code === "EPERM") return new Deno.errors.PermissionDenied(String(e));
  return e;
}

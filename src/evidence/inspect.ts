/**
 * The domain core of `inspect_file`: read-only inspection of a file (stat,
 * head, SHA-256, type) or a directory listing, confined to configured roots.
 *
 * Confinement works on real paths: the roots and the target are passed
 * through `Deno.realPath` at call time, so a symbolic link inside a root that
 * points outside is caught, while one pointing elsewhere inside the roots is
 * followed. The real path is then opened with `src/fs`'s `openConfined`
 * (no link followed at the final component, the opened descriptor checked to
 * be inside the root, hard-linked files and Warden's secrets refused), so a
 * link swapped in after the check reads nothing outside. Paths with a `..`
 * segment or a NUL byte are refused before the file system is touched, and
 * an absolute path that lies outside every root is refused without revealing
 * whether it exists. Listings never follow symbolic links; they report them
 * as such, and each directory walked is opened the same confined way.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { isAbsolute, relative, resolve, sep as SEPARATOR } from "node:path";
import { type Confined, ConfinementError, isInside, openConfined } from "../fs/mod.ts";

/** Files larger than this are refused rather than hashed in part. */
export const DEFAULT_MAX_HASH_BYTES = 100 * 1024 * 1024;

/** Longest accepted glob pattern. */
export const MAX_PATTERN_LENGTH = 200;

/** Most directory entries examined in one listing, matched or not. */
const MAX_SCANNED_ENTRIES = 50_000;
const MAX_HEAD_BYTES = 1024 * 1024;

/** How to inspect; `roots` bounds everything. */
export interface InspectOptions {
  /** Directories inside which inspection is allowed; relative ones are taken from the cwd. */
  readonly roots: readonly string[];
  /** Directory listing depth, clamped to 0..5 (0 lists nothing, 1 the immediate children). */
  readonly depth: number;
  /** Whether listings include names starting with ".". */
  readonly includeHidden: boolean;
  /** Glob on entry basenames: `*`, `?` and `[abc]` / `[a-z]` / `[!abc]`; at most 200 characters. */
  readonly pattern?: string;
  /** Most entries listed, clamped to 1..1000; `truncated` says when there were more. */
  readonly maxFiles: number;
  /** Bytes of a file returned as its head; default 4096, at most 1 MiB. */
  readonly headBytes?: number;
  /** Largest file hashed; default 100 MiB. Larger files are refused. */
  readonly maxHashBytes?: number;
  /** Paths never opened even inside a root (KV file, keys). */
  readonly protectedPaths?: readonly string[];
  /** Accept files with more than one hard link (policy files.allow_hardlinks). */
  readonly allowHardlinks?: boolean;
}

/** One entry of a directory listing; `path` is relative to the root. */
export interface DirectoryEntry {
  path: string;
  kind: "file" | "directory" | "symlink";
  size?: number;
}

/** The result of `inspectPath`: a file's facts or a directory's entries. */
export type Inspection =
  | {
    kind: "file";
    /** Relative to `root`, with forward slashes; a symbolic link's target path. */
    path: string;
    /** The configured root that contains the file. */
    root: string;
    size: number;
    modified: string | null;
    /** Hex SHA-256 of the whole file. */
    sha256: string;
    /** Media type from magic bytes, then extension, then content. */
    type: string;
    isText: boolean;
    /** The first `headBytes` bytes as text, or null when the file is not text. */
    head: string | null;
    headTruncated: boolean;
  }
  | {
    kind: "directory";
    path: string;
    root: string;
    entries: DirectoryEntry[];
    truncated: boolean;
  };

/**
 * A path that cannot be inspected: traversal, outside the roots, missing,
 * unreadable, too large, or neither a regular file nor a directory.
 */
export class FileAccessError extends Error {
  override name = "FileAccessError";
  /** The path as the caller gave it. */
  readonly path: string;
  /** Why, without the path. */
  readonly reason: string;

  constructor(path: string, reason: string) {
    super(`Cannot inspect ${JSON.stringify(path)}: ${reason}`);
    this.path = path;
    this.reason = reason;
  }
}

interface Root {
  readonly configured: string;
  readonly real: string;
  readonly resolved: string;
}

function relativePath(root: string, path: string): string {
  const rel = relative(root, path);
  return rel === "" ? "." : rel.split(SEPARATOR).join("/");
}

function formatLimit(bytes: number): string {
  return bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MB` : `${bytes} bytes`;
}

function clampInteger(value: number | undefined, min: number, max: number, fallback: number) {
  if (value === undefined || !Number.isFinite(value)) return fallback;
  return Math.min(max, Math.max(min, Math.trunc(value)));
}

async function realRoots(requested: string, roots: readonly string[]): Promise<Root[]> {
  if (roots.length === 0) throw new FileAccessError(requested, "no roots are configured");
  const found: Root[] = [];
  for (const configured of roots) {
    try {
      found.push({
        configured,
        real: await Deno.realPath(configured),
        resolved: resolve(configured),
      });
    } catch (error) {
      // A root that does not exist (yet) simply contains nothing.
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  if (found.length === 0) {
    throw new FileAccessError(requested, "none of the configured roots exists");
  }
  return found;
}

function describeFsError(requested: string, error: unknown): FileAccessError | unknown {
  if (error instanceof ConfinementError) return new FileAccessError(requested, error.reason);
  if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
    return new FileAccessError(requested, "does not exist");
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return new FileAccessError(requested, "permission denied");
  }
  return error;
}

// ---------------------------------------------------------------------------
// Glob

type GlobToken =
  | { kind: "star" }
  | { kind: "any" }
  | { kind: "literal"; char: string }
  | { kind: "class"; negated: boolean; ranges: [string, string][] };

/**
 * Throws what {@link inspectPath} would for a bad `pattern` — a RangeError
 * when it is too long, a SyntaxError for an unclosed `[` — before any I/O.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkPattern } from "./inspect.ts";
 * checkPattern("*.ts"); // fine
 * assert.throws(() => checkPattern("[ab"), SyntaxError);
 * ```
 */
export function checkPattern(pattern: string): void {
  if (pattern !== "") compileGlob(pattern);
}

function compileGlob(pattern: string): GlobToken[] {
  if (pattern.length > MAX_PATTERN_LENGTH) {
    throw new RangeError(
      `pattern must be at most ${MAX_PATTERN_LENGTH} characters, got ${pattern.length}`,
    );
  }
  const chars = Array.from(pattern);
  const tokens: GlobToken[] = [];
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i];
    if (c === "*") {
      // Runs of stars mean the same as one and would only slow matching.
      if (tokens.at(-1)?.kind !== "star") tokens.push({ kind: "star" });
    } else if (c === "?") tokens.push({ kind: "any" });
    else if (c === "[") {
      let j = i + 1;
      const negated = chars[j] === "!" || chars[j] === "^";
      if (negated) j += 1;
      const ranges: [string, string][] = [];
      // A "]" right after the opening bracket is a member, as in POSIX.
      let first = true;
      while (j < chars.length && (chars[j] !== "]" || first)) {
        first = false;
        if (chars[j + 1] === "-" && j + 2 < chars.length && chars[j + 2] !== "]") {
          ranges.push([chars[j], chars[j + 2]]);
          j += 3;
        } else {
          ranges.push([chars[j], chars[j]]);
          j += 1;
        }
      }
      if (j >= chars.length) {
        throw new SyntaxError(`pattern has an unclosed "[" at position ${i}`);
      }
      tokens.push({ kind: "class", negated, ranges });
      i = j;
    } else tokens.push({ kind: "literal", char: c });
  }
  return tokens;
}

function matchesToken(token: GlobToken, char: string): boolean {
  switch (token.kind) {
    case "any":
      return true;
    case "literal":
      return token.char === char;
    case "class": {
      const inside = token.ranges.some(([low, high]) => low <= char && char <= high);
      return inside !== token.negated;
    }
    case "star":
      return false;
  }
}

/** Iterative wildcard match with single-star backtracking: O(name × pattern), no regex. */
function globMatch(tokens: readonly GlobToken[], name: string): boolean {
  const chars = Array.from(name);
  let t = 0;
  let c = 0;
  let starT = -1;
  let starC = 0;
  while (c < chars.length) {
    if (t < tokens.length && tokens[t].kind === "star") {
      starT = t++;
      starC = c;
    } else if (t < tokens.length && matchesToken(tokens[t], chars[c])) {
      t++;
      c++;
    } else if (starT >= 0) {
      t = starT + 1;
      c = ++starC;
    } else return false;
  }
  while (t < tokens.length && tokens[t].kind === "star") t++;
  return t === tokens.length;
}

// ---------------------------------------------------------------------------
// Files

const MAGIC: readonly [bytes: readonly number[], offset: number, type: string][] = [
  [[0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 0, "image/png"],
  [[0xff, 0xd8, 0xff], 0, "image/jpeg"],
  [[0x47, 0x49, 0x46, 0x38], 0, "image/gif"],
  [[0x57, 0x45, 0x42, 0x50], 8, "image/webp"], // after "RIFF" and a size
  [[0x25, 0x50, 0x44, 0x46, 0x2d], 0, "application/pdf"],
  [[0x50, 0x4b, 0x03, 0x04], 0, "application/zip"],
  [[0x1f, 0x8b], 0, "application/gzip"],
  [[0x00, 0x61, 0x73, 0x6d], 0, "application/wasm"],
  [[0x7f, 0x45, 0x4c, 0x46], 0, "application/x-elf"],
];

const EXTENSION_TYPES: Readonly<Record<string, string>> = {
  txt: "text/plain",
  log: "text/plain",
  md: "text/markdown",
  html: "text/html",
  htm: "text/html",
  css: "text/css",
  csv: "text/csv",
  js: "text/javascript",
  mjs: "text/javascript",
  ts: "text/typescript",
  tsx: "text/typescript",
  json: "application/json",
  jsonl: "application/jsonl",
  xml: "application/xml",
  yaml: "application/yaml",
  yml: "application/yaml",
  toml: "application/toml",
  svg: "image/svg+xml",
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  webp: "image/webp",
  pdf: "application/pdf",
  zip: "application/zip",
  gz: "application/gzip",
  wasm: "application/wasm",
};

function startsWithAt(head: Uint8Array, bytes: readonly number[], offset: number): boolean {
  if (head.length < offset + bytes.length) return false;
  return bytes.every((byte, i) => head[offset + i] === byte);
}

/**
 * Text means: no NUL byte and valid UTF-8, where a multibyte sequence cut by
 * the end of the head counts as valid (the rest of it is in the file).
 */
function decodeText(head: Uint8Array, cut: boolean): string | null {
  if (head.includes(0)) return null;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(head, { stream: cut });
  } catch {
    return null;
  }
}

function detectType(name: string, head: Uint8Array, isText: boolean): string {
  // Magic bytes beat the extension: a renamed PNG is still a PNG.
  for (const [bytes, offset, type] of MAGIC) {
    if (startsWithAt(head, bytes, offset)) return type;
  }
  const dot = name.lastIndexOf(".");
  const byExtension = dot > 0 ? EXTENSION_TYPES[name.slice(dot + 1).toLowerCase()] : undefined;
  if (byExtension !== undefined) {
    const textual = byExtension.startsWith("text/") || byExtension.startsWith("application/json") ||
      byExtension.endsWith("xml") || byExtension.endsWith("yaml") ||
      byExtension === "application/toml" || byExtension === "application/jsonl";
    // A "text" extension on binary content would mislead; the content wins.
    if (!textual || isText) return byExtension;
  }
  return isText ? "text/plain" : "application/octet-stream";
}

async function inspectFile(
  requested: string,
  opened: Confined,
  context: { root: Root; headBytes: number; maxHashBytes: number },
): Promise<Inspection> {
  const { root, headBytes, maxHashBytes } = context;
  const real = opened.real;
  const info = { size: opened.size, mtime: opened.mtime };
  const tooLarge = () =>
    new FileAccessError(
      requested,
      `file is too large to hash (${info.size} bytes, limit ${formatLimit(maxHashBytes)})`,
    );
  // Hashing only a prefix would hand out an id that does not identify the file.
  if (info.size > maxHashBytes) throw tooLarge();

  // node:crypto because the hash must be incremental: the file is streamed,
  // never held in memory whole.
  const hash = createHash("sha256");
  const head = new Uint8Array(Math.min(headBytes, info.size));
  let headFilled = 0;
  let total = 0;
  // The file may grow between stat and read; the limits hold on what is read.
  // Reading goes through the confined descriptor, never the path again.
  const buffer = new Uint8Array(64 * 1024);
  while (true) {
    const { bytesRead } = await opened.handle.read(buffer, 0, buffer.length, null);
    if (bytesRead === 0) break;
    const chunk = buffer.subarray(0, bytesRead);
    total += chunk.byteLength;
    if (total > maxHashBytes) throw tooLarge();
    hash.update(chunk);
    if (headFilled < head.length) {
      const take = chunk.subarray(0, head.length - headFilled);
      head.set(take, headFilled);
      headFilled += take.byteLength;
    }
  }

  const headView = head.subarray(0, headFilled);
  const headTruncated = total > headFilled;
  const text = decodeText(headView, headTruncated);
  const name = real.slice(real.lastIndexOf(SEPARATOR) + 1);
  return {
    kind: "file",
    path: relativePath(root.real, real),
    root: root.configured,
    size: total,
    modified: info.mtime?.toISOString() ?? null,
    sha256: hash.digest("hex"),
    type: detectType(name, headView, text !== null),
    isText: text !== null,
    head: text,
    headTruncated,
  };
}

// ---------------------------------------------------------------------------
// Directories

interface ListContext {
  readonly root: Root;
  readonly depth: number;
  readonly includeHidden: boolean;
  readonly glob: GlobToken[] | null;
  readonly maxFiles: number;
  readonly entries: DirectoryEntry[];
  readonly protectedPaths: readonly string[];
  scanned: number;
  truncated: boolean;
}

async function readSorted(dir: string): Promise<Deno.DirEntry[]> {
  const entries: Deno.DirEntry[] = [];
  for await (const entry of Deno.readDir(dir)) entries.push(entry);
  return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Lists `dir` (an opened, confined directory: read through its descriptor
 * path, named by its real path) and recurses into subdirectories, each
 * opened confined in turn so a directory swapped for a link is not followed.
 */
async function walk(opened: Confined, level: number, context: ListContext): Promise<void> {
  const dir = opened.real;
  let children: Deno.DirEntry[];
  try {
    children = await readSorted(opened.fdPath);
  } catch (error) {
    // The top directory's failure is the caller's answer; a subdirectory that
    // vanished or is unreadable just contributes nothing.
    if (level === 1) throw error;
    return;
  }
  for (const child of children) {
    if (context.truncated) return;
    if (!context.includeHidden && child.name.startsWith(".")) continue;
    if (++context.scanned > MAX_SCANNED_ENTRIES) {
      context.truncated = true;
      return;
    }
    const full = dir + SEPARATOR + child.name;
    // readDir reports the link itself, never its target, so nothing here
    // follows a symbolic link out of the root.
    const kind = child.isSymlink ? "symlink" : child.isDirectory ? "directory" : "file";
    if (context.glob === null || globMatch(context.glob, child.name)) {
      if (context.entries.length >= context.maxFiles) {
        context.truncated = true;
        return;
      }
      const entry: DirectoryEntry = { path: relativePath(context.root.real, full), kind };
      if (kind === "file") {
        try {
          entry.size = (await Deno.lstat(full)).size;
        } catch {
          // Deleted since the listing was read: list it without a size.
        }
      }
      context.entries.push(entry);
    }
    if (kind === "directory" && level < context.depth) {
      let sub: Confined;
      try {
        sub = await openConfined(full, {
          root: context.root.real,
          protectedPaths: context.protectedPaths,
        });
      } catch {
        continue; // gone, unreadable, swapped or secret: it contributes nothing
      }
      try {
        if (sub.kind === "directory") await walk(sub, level + 1, context);
      } finally {
        await sub.handle.close().catch(() => {});
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Entry point

/**
 * Inspects `path` inside the configured roots: a regular file yields its
 * size, modification time, SHA-256, media type and a text head; a directory
 * yields a listing to `depth` levels, filtered by `pattern` and
 * `includeHidden`, capped at `maxFiles`. A relative `path` is taken from the
 * first root; an absolute one must lie inside one of them. Throws
 * `FileAccessError` when the path is refused or cannot be read, RangeError or
 * SyntaxError for a bad `pattern`.
 *
 * @example
 * ```ts
 * import { inspectPath } from "./inspect.ts";
 * const readme = await inspectPath("README.md", {
 *   roots: ["."],
 *   depth: 1,
 *   includeHidden: false,
 *   maxFiles: 100,
 * });
 * if (readme.kind === "file") console.log(readme.sha256, readme.type);
 * ```
 */
export async function inspectPath(path: string, options: InspectOptions): Promise<Inspection> {
  if (typeof path !== "string") throw new TypeError("path must be a string");
  if (path.includes("\0")) throw new FileAccessError(path, "NUL bytes are not allowed");
  // Backslash counts as a separator too, so "..\\x" is refused on every platform.
  if (path.split(/[\\/]/).includes("..")) {
    throw new FileAccessError(path, 'path traversal ("..") is not allowed');
  }
  const glob = options.pattern === undefined || options.pattern === ""
    ? null
    : compileGlob(options.pattern);
  const roots = await realRoots(path, options.roots);

  let target: string;
  if (isAbsolute(path)) {
    target = resolve(path);
    // Checked before touching the file system, so that paths outside the roots
    // cannot be probed for existence.
    const lexicallyInside = roots.some((root) =>
      isInside(target, root.resolved) || isInside(target, root.real)
    );
    if (!lexicallyInside) throw new FileAccessError(path, "is outside the configured roots");
  } else {
    target = resolve(roots[0].real, path);
  }

  let real: string;
  try {
    real = await Deno.realPath(target);
  } catch (error) {
    throw describeFsError(path, error);
  }
  const root = roots.find((candidate) => isInside(real, candidate.real));
  if (root === undefined) {
    // Only a symbolic link (or a root that moved) gets a path here.
    throw new FileAccessError(path, "is outside the configured roots (through a symbolic link)");
  }
  let opened: Confined;
  try {
    opened = await openConfined(real, {
      root: root.real,
      protectedPaths: options.protectedPaths,
      allowHardlinks: options.allowHardlinks,
    });
  } catch (error) {
    throw describeFsError(path, error);
  }
  try {
    return await inspectOpened(path, opened, { root, glob, options });
  } finally {
    await opened.handle.close().catch(() => {});
  }
}

async function inspectOpened(
  path: string,
  opened: Confined,
  context: { root: Root; glob: GlobToken[] | null; options: InspectOptions },
): Promise<Inspection> {
  const { root, glob, options } = context;
  const real = opened.real;
  if (opened.kind === "file") {
    return await inspectFile(path, opened, {
      root,
      headBytes: clampInteger(options.headBytes, 0, MAX_HEAD_BYTES, 4096),
      maxHashBytes: clampInteger(
        options.maxHashBytes,
        0,
        Number.MAX_SAFE_INTEGER,
        DEFAULT_MAX_HASH_BYTES,
      ),
    });
  }
  // openConfined refused FIFOs, sockets and devices: what is left is a directory.
  const listing: ListContext = {
    root,
    depth: clampInteger(options.depth, 0, 5, 1),
    includeHidden: options.includeHidden,
    glob,
    maxFiles: clampInteger(options.maxFiles, 1, 1000, 100),
    entries: [],
    protectedPaths: options.protectedPaths ?? [],
    scanned: 0,
    truncated: false,
  };
  if (listing.depth > 0) {
    try {
      await walk(opened, 1, listing);
    } catch (error) {
      throw describeFsError(path, error);
    }
  }
  return {
    kind: "directory",
    path: relativePath(root.real, real),
    root: root.configured,
    entries: listing.entries,
    truncated: listing.truncated,
  };
}

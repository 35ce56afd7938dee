/**
 * Confinement for a virtual root: the files service keeps its sandbox in KV,
 * where no symbolic or hard link exists, so confinement is lexical — but it
 * must be total. A path is taken apart into segments and each one is judged;
 * anything that could mean "the parent" to some later reader (an exporter to
 * disk, a shell, a URL decoder) is refused rather than interpreted.
 *
 * @module
 */
import { ConfinementError } from "./confine.ts";

/** Longest virtual path, in characters, and longest segment, in UTF-8 bytes. */
export const MAX_VIRTUAL_PATH_CHARS = 1024;
export const MAX_VIRTUAL_SEGMENT_BYTES = 255;

const utf8 = new TextEncoder();

/**
 * Normalises `path` into the canonical form `/a/b/c` inside the sandbox root
 * (`/` itself for the root), or throws `ConfinementError` saying why not:
 * `..` (also spelled with backslashes, percent-encoding or full-width dots),
 * NUL and other control characters, a drive letter or UNC prefix, an
 * over-long path or segment. `.` and empty segments are dropped; a leading
 * `/` means the sandbox root, not the host's. Text is NFC-normalised, so two
 * spellings of one name are one file.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { confineVirtualPath } from "./virtual_path.ts";
 * import { ConfinementError } from "./confine.ts";
 * assert.equal(confineVirtualPath("docs//./a.txt"), "/docs/a.txt");
 * assert.equal(confineVirtualPath("/etc/passwd"), "/etc/passwd"); // the sandbox's, never the host's
 * assert.throws(() => confineVirtualPath("../x"), ConfinementError);
 * ```
 */
export function confineVirtualPath(path: string): string {
  if (typeof path !== "string") throw new TypeError("path must be a string");
  if (path.length > MAX_VIRTUAL_PATH_CHARS) {
    throw new ConfinementError(`is longer than ${MAX_VIRTUAL_PATH_CHARS} characters`);
  }
  if (path.includes("\0")) throw new ConfinementError("holds a NUL byte");
  // deno-lint-ignore no-control-regex -- control characters are what is refused
  if (/[\u0001-\u001f\u007f\u{10FFFF}]/u.test(path)) {
    throw new ConfinementError("holds control characters");
  }
  if (path.includes("\\")) {
    throw new ConfinementError("holds a backslash (use / as the separator)");
  }
  if (/^[A-Za-z]:/.test(path) || path.startsWith("//")) {
    throw new ConfinementError("names a drive or a network share");
  }
  if (/%(2e|2f|5c|00)/i.test(path)) {
    throw new ConfinementError("holds a percent-encoded dot, separator or NUL");
  }
  const segments: string[] = [];
  for (const raw of path.normalize("NFC").split("/")) {
    if (raw === "" || raw === ".") continue;
    // "．．" (full-width) and similar become ".." under compatibility normalisation.
    const folded = raw.normalize("NFKC").trim();
    if (folded === ".." || raw === "..") {
      throw new ConfinementError('holds a parent reference ("..")');
    }
    if (folded === "." || folded === "") {
      throw new ConfinementError("holds a segment that reads as empty or as '.'");
    }
    if (utf8.encode(raw).byteLength > MAX_VIRTUAL_SEGMENT_BYTES) {
      throw new ConfinementError(`has a segment over ${MAX_VIRTUAL_SEGMENT_BYTES} bytes`);
    }
    segments.push(raw);
  }
  return "/" + segments.join("/");
}

import assert from "node:assert/strict";
import { join, relative } from "node:path";
import {
  FileAccessError,
  type InspectOptions,
  inspectPath,
  MAX_PATTERN_LENGTH,
} from "../../src/evidence/mod.ts";

const PNG = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]);

interface Fixture {
  /** The root directory (real path). */
  root: string;
  /** A second temp directory outside the root. */
  outside: string;
}

let fixture: Promise<Fixture> | undefined;

/**
 * root/
 *   a.txt  bin.dat  data.json  fake.txt (PNG bytes)  image.png  utf8.txt  .hidden
 *   docs/  guide.md  notes.txt  .draft.md  deep/inner.txt  deep/deeper/x.txt
 *   link_in -> docs/guide.md    link_out -> outside/secret.txt    dir_out -> outside
 */
function tree(): Promise<Fixture> {
  fixture ??= (async () => {
    const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "warden_files_root_" }));
    const outside = await Deno.realPath(await Deno.makeTempDir({ prefix: "warden_files_out_" }));
    globalThis.addEventListener("unload", () => {
      Deno.removeSync(root, { recursive: true });
      Deno.removeSync(outside, { recursive: true });
    });
    const text = (path: string, content: string) => Deno.writeTextFile(join(root, path), content);
    await Deno.mkdir(join(root, "docs/deep/deeper"), { recursive: true });
    await text("a.txt", "hello\n");
    await Deno.writeFile(join(root, "bin.dat"), new Uint8Array([1, 0, 2]));
    await text("data.json", '{"x": 1}');
    await Deno.writeFile(join(root, "fake.txt"), PNG);
    await Deno.writeFile(join(root, "image.png"), PNG);
    await text("utf8.txt", "héllo");
    await text(".hidden", "secret");
    await text("docs/guide.md", "# Guide\n");
    await text("docs/notes.txt", "notes");
    await text("docs/.draft.md", "draft");
    await text("docs/deep/inner.txt", "inner");
    await text("docs/deep/deeper/x.txt", "x");
    await Deno.writeTextFile(join(outside, "secret.txt"), "outside secret");
    await Deno.symlink(join(root, "docs/guide.md"), join(root, "link_in"));
    await Deno.symlink(join(outside, "secret.txt"), join(root, "link_out"));
    await Deno.symlink(outside, join(root, "dir_out"));
    return { root, outside };
  })();
  return fixture;
}

async function options(overrides: Partial<InspectOptions> = {}): Promise<InspectOptions> {
  const { root } = await tree();
  return { roots: [root], depth: 1, includeHidden: false, maxFiles: 100, ...overrides };
}

async function hexSha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)).toHex();
}

async function assertRefused(promise: Promise<unknown>, message: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof FileAccessError, `expected FileAccessError, got ${error}`);
    assert.equal(error.message, message);
    return true;
  });
}

async function inspectFile(path: string, overrides: Partial<InspectOptions> = {}) {
  const result = await inspectPath(path, await options(overrides));
  assert.equal(result.kind, "file");
  return result;
}

async function list(path: string, overrides: Partial<InspectOptions> = {}) {
  const result = await inspectPath(path, await options(overrides));
  assert.equal(result.kind, "directory");
  return result;
}

Deno.test("inspectPath() reports a text file's size, hash, type and head", async () => {
  const { root } = await tree();
  const file = await inspectFile("a.txt");
  assert.equal(file.path, "a.txt");
  assert.equal(file.root, root);
  assert.equal(file.size, 6);
  assert.equal(file.sha256, await hexSha256(new TextEncoder().encode("hello\n")));
  assert.equal(file.type, "text/plain");
  assert.equal(file.isText, true);
  assert.equal(file.head, "hello\n");
  assert.equal(file.headTruncated, false);
  assert.ok(file.modified !== null && !Number.isNaN(Date.parse(file.modified)));
});

Deno.test("inspectPath() types files by magic bytes first, then extension, then content", async () => {
  const json = await inspectFile("data.json");
  assert.equal(json.type, "application/json");
  assert.equal(json.head, '{"x": 1}');

  const png = await inspectFile("image.png");
  assert.equal(png.type, "image/png");
  assert.equal(png.isText, false);
  assert.equal(png.head, null);
  assert.equal(png.sha256, await hexSha256(PNG));

  // A PNG named .txt is still a PNG.
  assert.equal((await inspectFile("fake.txt")).type, "image/png");
  // NUL bytes and no known extension: opaque data.
  const bin = await inspectFile("bin.dat");
  assert.equal(bin.type, "application/octet-stream");
  assert.equal(bin.isText, false);
});

Deno.test("inspectPath() accepts a head cut inside a UTF-8 sequence as text", async () => {
  // "héllo" is 68 C3 A9 6C 6C 6F; two bytes end halfway through "é".
  const file = await inspectFile("utf8.txt", { headBytes: 2 });
  assert.equal(file.isText, true);
  assert.equal(file.head, "h");
  assert.equal(file.headTruncated, true);
  assert.equal(file.size, 6);
  assert.equal(file.sha256, await hexSha256(new TextEncoder().encode("héllo")));
});

Deno.test("inspectPath() does not call a file cut short inside a UTF-8 sequence text", async () => {
  const { outside } = await tree();
  // "abc" then the first byte of a two-byte sequence, and nothing after it.
  await Deno.writeFile(join(outside, "cut.txt"), new Uint8Array([0x61, 0x62, 0x63, 0xc3]));
  const file = await inspectPath("cut.txt", await options({ roots: [outside] }));
  assert.equal(file.kind, "file");
  assert.equal(file.isText, false);
  assert.equal(file.head, null);
  assert.equal(file.type, "application/octet-stream");
});

Deno.test("inspectPath() lists a directory one level deep without hidden entries", async () => {
  const listing = await list(".");
  assert.equal(listing.path, ".");
  assert.equal(listing.truncated, false);
  assert.deepEqual(listing.entries, [
    { path: "a.txt", kind: "file", size: 6 },
    { path: "bin.dat", kind: "file", size: 3 },
    { path: "data.json", kind: "file", size: 8 },
    { path: "dir_out", kind: "symlink" },
    { path: "docs", kind: "directory" },
    { path: "fake.txt", kind: "file", size: PNG.length },
    { path: "image.png", kind: "file", size: PNG.length },
    { path: "link_in", kind: "symlink" },
    { path: "link_out", kind: "symlink" },
    { path: "utf8.txt", kind: "file", size: 6 },
  ]);
});

Deno.test("inspectPath() applies depth, pattern and includeHidden to a listing", async () => {
  const paths = async (overrides: Partial<InspectOptions>, path = "docs") =>
    (await list(path, overrides)).entries.map((entry) => entry.path);

  assert.deepEqual(await paths({ depth: 0 }), []);
  assert.deepEqual(await paths({ depth: 1 }), ["docs/deep", "docs/guide.md", "docs/notes.txt"]);
  assert.deepEqual(await paths({ depth: 2 }), [
    "docs/deep",
    "docs/deep/deeper",
    "docs/deep/inner.txt",
    "docs/guide.md",
    "docs/notes.txt",
  ]);
  // The pattern filters what is listed, not what is walked.
  assert.deepEqual(await paths({ depth: 5, pattern: "*.txt" }), [
    "docs/deep/deeper/x.txt",
    "docs/deep/inner.txt",
    "docs/notes.txt",
  ]);
  assert.deepEqual(
    await paths({ depth: 99, pattern: "*.txt" }),
    await paths({ depth: 5, pattern: "*.txt" }),
  );
  assert.deepEqual(await paths({ pattern: "*.md" }), ["docs/guide.md"]);
  assert.deepEqual(await paths({ pattern: "*.md", includeHidden: true }), [
    "docs/.draft.md",
    "docs/guide.md",
  ]);
  assert.deepEqual(await paths({ pattern: "?.txt", depth: 5 }), ["docs/deep/deeper/x.txt"]);
  assert.deepEqual(await paths({ pattern: "[ab]*" }, "."), ["a.txt", "bin.dat"]);
  assert.deepEqual(await paths({ pattern: "[!a-h]*.txt" }, "."), ["utf8.txt"]);
  assert.ok((await paths({ includeHidden: true }, ".")).includes(".hidden"));
  // Symbolic links are listed, never walked into.
  const everything = await paths({ depth: 5, includeHidden: true }, ".");
  assert.ok(everything.includes("dir_out"));
  assert.ok(!everything.some((path) => path.startsWith("dir_out/")));
});

Deno.test("inspectPath() caps a listing at maxFiles and says it truncated", async () => {
  const listing = await list(".", { maxFiles: 2 });
  assert.deepEqual(listing.entries.map((entry) => entry.path), ["a.txt", "bin.dat"]);
  assert.equal(listing.truncated, true);
  // Exactly as many as there are is not a truncation.
  const exact = await list("docs", { maxFiles: 3 });
  assert.equal(exact.entries.length, 3);
  assert.equal(exact.truncated, false);
});

Deno.test("inspectPath() refuses path traversal and NUL bytes before touching the disk", async () => {
  const opts = await options();
  await assertRefused(
    inspectPath("../etc/passwd", opts),
    'Cannot inspect "../etc/passwd": path traversal ("..") is not allowed',
  );
  await assertRefused(
    inspectPath("docs/../../x", opts),
    'Cannot inspect "docs/../../x": path traversal ("..") is not allowed',
  );
  await assertRefused(
    inspectPath("docs\\..\\x", opts),
    'Cannot inspect "docs\\\\..\\\\x": path traversal ("..") is not allowed',
  );
  await assertRefused(
    inspectPath("a.txt\0.png", opts),
    'Cannot inspect "a.txt\\u0000.png": NUL bytes are not allowed',
  );
});

Deno.test("inspectPath() refuses an absolute path outside the roots", async () => {
  const { outside } = await tree();
  const secret = join(outside, "secret.txt");
  await assertRefused(
    inspectPath(secret, await options()),
    `Cannot inspect ${JSON.stringify(secret)}: is outside the configured roots`,
  );
  // Refused the same way whether or not it exists: no existence oracle.
  const missing = join(outside, "missing.txt");
  await assertRefused(
    inspectPath(missing, await options()),
    `Cannot inspect ${JSON.stringify(missing)}: is outside the configured roots`,
  );
});

Deno.test("inspectPath() refuses a symlink inside the root that points outside", async () => {
  const opts = await options();
  await assertRefused(
    inspectPath("link_out", opts),
    'Cannot inspect "link_out": is outside the configured roots (through a symbolic link)',
  );
  await assertRefused(
    inspectPath("dir_out/secret.txt", opts),
    'Cannot inspect "dir_out/secret.txt": is outside the configured roots (through a symbolic link)',
  );
  await assertRefused(
    inspectPath("dir_out", opts),
    'Cannot inspect "dir_out": is outside the configured roots (through a symbolic link)',
  );
});

Deno.test("inspectPath() follows a symlink that stays inside the root", async () => {
  const file = await inspectFile("link_in");
  assert.equal(file.path, "docs/guide.md");
  assert.equal(file.type, "text/markdown");
  assert.equal(file.head, "# Guide\n");
});

Deno.test("inspectPath() takes absolute paths inside any root and relative ones from the first", async () => {
  const { root, outside } = await tree();
  const roots = [relative(Deno.cwd(), root), outside];
  const opts = await options({ roots });
  const inSecond = await inspectPath(join(outside, "secret.txt"), opts);
  assert.equal(inSecond.kind, "file");
  assert.equal(inSecond.root, outside);
  assert.equal(inSecond.path, "secret.txt");
  const inFirst = await inspectPath(join(root, "docs", "notes.txt"), opts);
  assert.equal(inFirst.root, roots[0]);
  assert.equal(inFirst.path, "docs/notes.txt");
  const relativeToFirst = await inspectPath("docs/notes.txt", opts);
  assert.equal(relativeToFirst.root, roots[0]);
  // With both directories as roots, the link to the second is no escape.
  assert.equal((await inspectPath("link_out", opts)).path, "secret.txt");
});

Deno.test("inspectPath() names a missing path", async () => {
  const { root } = await tree();
  await assertRefused(
    inspectPath("missing.txt", await options()),
    'Cannot inspect "missing.txt": does not exist',
  );
  await assertRefused(
    inspectPath("a.txt/below", await options()),
    'Cannot inspect "a.txt/below": does not exist',
  );
  const absolute = join(root, "nope", "x");
  await assertRefused(
    inspectPath(absolute, await options()),
    `Cannot inspect ${JSON.stringify(absolute)}: does not exist`,
  );
});

Deno.test("inspectPath() refuses to hash a file above maxHashBytes", async () => {
  await assertRefused(
    inspectPath("docs/guide.md", await options({ maxHashBytes: 7 })),
    'Cannot inspect "docs/guide.md": file is too large to hash (8 bytes, limit 7 bytes)',
  );
  assert.equal((await inspectFile("docs/guide.md", { maxHashBytes: 8 })).size, 8);
});

Deno.test("inspectPath() refuses devices", { ignore: Deno.build.os === "windows" }, async () => {
  await assertRefused(
    inspectPath("null", { roots: ["/dev"], depth: 1, includeHidden: false, maxFiles: 1 }),
    'Cannot inspect "null": is not a regular file or directory',
  );
});

Deno.test("inspectPath() rejects a bad pattern with a built-in error", async () => {
  await assert.rejects(inspectPath(".", await options({ pattern: "[abc" })), {
    name: "SyntaxError",
    message: 'pattern has an unclosed "[" at position 0',
  });
  await assert.rejects(
    inspectPath(".", await options({ pattern: "*".repeat(MAX_PATTERN_LENGTH + 1) })),
    { name: "RangeError" },
  );
  // Many stars cannot make matching slow: the matcher never backtracks more
  // than one star.
  const slow = await list(".", { pattern: `${"*a".repeat(99)}b` });
  assert.deepEqual(slow.entries, []);
});

Deno.test("inspectPath() refuses when no root exists", async () => {
  const { root } = await tree();
  await assertRefused(
    inspectPath("a.txt", await options({ roots: [] })),
    'Cannot inspect "a.txt": no roots are configured',
  );
  await assertRefused(
    inspectPath("a.txt", await options({ roots: [join(root, "no_such_dir")] })),
    'Cannot inspect "a.txt": none of the configured roots exists',
  );
});

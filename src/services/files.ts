/**
 * The files service: a sandbox of versioned, leased files kept in Deno KV.
 *
 * - Paths are virtual (`/a/b.txt` under the sandbox root), confined by
 *   `confineVirtualPath` from `src/fs/`; nothing here touches the host's file
 *   system, so it works the same on Deno Deploy and across instances.
 * - Every write creates a version. Content is addressed by its SHA-256 and
 *   stored once however many versions or files hold it (`["file_blob", sha]`
 *   counts the references); the oldest versions beyond the retention cap are
 *   dropped, and a blob no version references is deleted.
 * - A KV value holds at most 64 KiB and one atomic at most 800 KiB, so a
 *   blob's bytes are written in chunks before the commit, under an upload id
 *   of that write alone: a concurrent delete of the same content can never
 *   remove chunks another write is about to commit.
 * - Leases (`["file_lease", path]`) name a holder (principal + session) and
 *   an expiry; a write by anyone else while one is live is refused with who
 *   holds it and until when. `expectedVersion` gives optimistic concurrency.
 *
 * @module
 */
import { ConfinementError, confineVirtualPath, MAX_VIRTUAL_PATH_CHARS } from "../fs/mod.ts";

/** Longest path a file tool accepts, in characters. */
export const MAX_FILE_PATH_CHARS = MAX_VIRTUAL_PATH_CHARS;
import {
  fileBlobChunkKey,
  fileBlobKey,
  fileCountKey,
  fileKey,
  fileLeaseKey,
} from "../store/mod.ts";
import { sha256, toHex } from "../lib/mod.ts";

/** Limits of the files service (the policy's `files` section). */
export interface FileLimits {
  readonly maxFileBytes: number;
  /** Versions kept per file; a write beyond drops the oldest. */
  readonly maxVersions: number;
  readonly maxFiles: number;
  readonly leaseSeconds: number;
  readonly maxLeaseSeconds: number;
}

/** The defaults the policy starts from. */
export const DEFAULT_FILE_LIMITS: FileLimits = Object.freeze({
  maxFileBytes: 131_072,
  maxVersions: 20,
  maxFiles: 10_000,
  leaseSeconds: 300,
  maxLeaseSeconds: 3600,
});

/** Who is calling: a lease is held by a principal in one session (null when sessionless). */
export interface FileCaller {
  readonly principal: string;
  readonly session: string | null;
}

/** Why a file operation was refused; `code` lets adapters map it. */
export class FileServiceError extends Error {
  override name = "FileServiceError";
  readonly code:
    | "bad_path"
    | "too_large"
    | "not_found"
    | "conflict"
    | "leased"
    | "not_holder"
    | "full"
    | "bad_lease";
  constructor(code: FileServiceError["code"], message: string) {
    super(message);
    this.code = code;
  }
}

/** One kept version of a file. */
export interface FileVersion {
  readonly version: number;
  readonly sha256: string;
  readonly size: number;
  readonly written_at: string;
  readonly principal: string;
  readonly session: string | null;
}

interface VersionRecord {
  version: number;
  sha256: string;
  size: number;
  at_ms: number;
  principal: string;
  session: string | null;
}

interface FileHead {
  path: string;
  /** The number the next write gets. */
  next: number;
  /** Kept versions, oldest first. */
  versions: VersionRecord[];
}

interface BlobManifest {
  size: number;
  chunks: number;
  /** The write whose chunks these are. */
  upload: string;
  /** Versions (of any file) holding this content. */
  refs: number;
}

interface LeaseRecord {
  principal: string;
  session: string | null;
  acquired_at_ms: number;
  expires_at_ms: number;
}

/** A live lease. */
export interface Lease {
  readonly path: string;
  readonly holder: { readonly principal: string; readonly session: string | null };
  readonly acquired_at: string;
  readonly expires_at: string;
}

/** What a write reports. */
export interface WriteResult {
  readonly path: string;
  readonly version: number;
  readonly sha256: string;
  readonly size: number;
  /** The content was already stored (by this or another file) and is shared. */
  readonly deduplicated: boolean;
  /** Versions dropped by the retention cap. */
  readonly dropped_versions: number[];
}

/** What a read returns. */
export interface ReadResult extends FileVersion {
  readonly path: string;
  readonly bytes: Uint8Array;
  readonly latest_version: number;
}

/** One entry of a listing. */
export interface ListEntry {
  readonly name: string;
  readonly path: string;
  readonly kind: "file" | "directory";
  readonly size?: number;
  readonly version?: number;
  readonly updated_at?: string;
}

/** The sandbox's files. */
export interface FileService {
  readonly limits: FileLimits;
  write(
    caller: FileCaller,
    input: { path: string; content: Uint8Array; expectedVersion?: number },
  ): Promise<WriteResult>;
  read(input: { path: string; version?: number }): Promise<ReadResult>;
  list(input: { path?: string; limit?: number }): Promise<{
    path: string;
    entries: ListEntry[];
    truncated: boolean;
  }>;
  versions(input: { path: string }): Promise<{ path: string; versions: FileVersion[] }>;
  lock(caller: FileCaller, input: { path: string; ttl?: number }): Promise<
    Lease & {
      renewed: boolean;
    }
  >;
  unlock(caller: FileCaller, input: { path: string }): Promise<{
    path: string;
    released: boolean;
  }>;
  /** The live lease on a path, if any. */
  lease(path: string): Promise<Lease | undefined>;
}

/** Bytes per chunk: under KV's 64 KiB value limit. */
export const FILE_CHUNK_BYTES = 60_000;
// 12 chunks of 60 KB stay under the 800 KiB a KV atomic may carry.
const CHUNKS_PER_ATOMIC = 12;
const MAX_ATTEMPTS = 32;
// Paths may not hold this character (it bounds a prefix range); confineVirtualPath refuses it.
const RANGE_END = "\u{10FFFF}";

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function backoff(attempt: number): Promise<void> {
  return attempt === 0
    ? Promise.resolve()
    : new Promise((ok) => setTimeout(ok, Math.random() * Math.min(50, 2 * attempt)));
}

function confined(path: string): string {
  try {
    return confineVirtualPath(path);
  } catch (e) {
    if (e instanceof ConfinementError) {
      throw new FileServiceError(
        "bad_path",
        `Cannot use path ${JSON.stringify(path)}: ${e.reason}`,
      );
    }
    throw e;
  }
}

function publicVersion(v: VersionRecord): FileVersion {
  return {
    version: v.version,
    sha256: v.sha256,
    size: v.size,
    written_at: iso(v.at_ms),
    principal: v.principal,
    session: v.session,
  };
}

function holderText(l: LeaseRecord): string {
  return `${l.principal}${l.session ? ` (session ${l.session})` : " (no session)"}`;
}

/**
 * Builds the files service over `kv`. `now` is the clock leases are judged
 * by (tests pass their own).
 *
 * @example
 * ```ts
 * const kv = await Deno.openKv(":memory:");
 * const files = createFileService(kv);
 * const me = { principal: "alice", session: null };
 * await files.write(me, { path: "/notes/a.txt", content: new TextEncoder().encode("one") });
 * await files.write(me, { path: "/notes/a.txt", content: new TextEncoder().encode("two"), expectedVersion: 1 });
 * new TextDecoder().decode((await files.read({ path: "/notes/a.txt", version: 1 })).bytes); // "one"
 * ```
 */
// Kept whole: a factory of 14 small closures over one KV and the file keys; each operation is a
// checked atomic over the same records.
export function createFileService(
  kv: Deno.Kv,
  options: { limits?: Partial<FileLimits>; now?: () => number } = {},
): FileService {
  const limits: FileLimits = { ...DEFAULT_FILE_LIMITS, ...options.limits };
  const now = options.now ?? Date.now;

  function isLive(l: LeaseRecord | null, t: number): l is LeaseRecord {
    return l !== null && l.expires_at_ms > t;
  }

  function sameHolder(l: LeaseRecord, caller: FileCaller): boolean {
    return l.principal === caller.principal && l.session === caller.session;
  }

  async function deleteChunks(sha: string, upload: string, chunks: number): Promise<void> {
    for (let i = 0; i < chunks; i += 100) {
      const op = kv.atomic();
      for (let n = i; n < Math.min(chunks, i + 100); n++) {
        op.delete(fileBlobChunkKey(sha, upload, n));
      }
      await op.commit();
    }
  }

  async function upload(
    sha: string,
    bytes: Uint8Array,
  ): Promise<{ upload: string; chunks: number }> {
    const id = crypto.randomUUID();
    const chunks = Math.max(1, Math.ceil(bytes.byteLength / FILE_CHUNK_BYTES));
    for (let i = 0; i < chunks; i += CHUNKS_PER_ATOMIC) {
      const op = kv.atomic();
      for (let n = i; n < Math.min(chunks, i + CHUNKS_PER_ATOMIC); n++) {
        op.set(
          fileBlobChunkKey(sha, id, n),
          bytes.subarray(n * FILE_CHUNK_BYTES, (n + 1) * FILE_CHUNK_BYTES),
        );
      }
      await op.commit();
    }
    return { upload: id, chunks };
  }

  /** Refuses a file where a directory is, or under a path that is a file. */
  async function checkShape(path: string): Promise<void> {
    const segments = path.split("/").slice(1);
    const ancestors = segments.slice(0, -1).map((_, i) => "/" + segments.slice(0, i + 1).join("/"));
    for (let i = 0; i < ancestors.length; i += 10) {
      const got = await kv.getMany<FileHead[]>(ancestors.slice(i, i + 10).map(fileKey));
      const file = got.find((g) => g.value !== null);
      if (file) {
        throw new FileServiceError(
          "bad_path",
          `Cannot write ${path}: ${file.value!.path} is a file, not a directory`,
        );
      }
    }
    const children = kv.list({ start: fileKey(path + "/"), end: fileKey(path + "/" + RANGE_END) }, {
      limit: 1,
    });
    for await (const _ of children) {
      throw new FileServiceError("bad_path", `Cannot write ${path}: it is a directory`);
    }
  }

  async function write(
    caller: FileCaller,
    input: { path: string; content: Uint8Array; expectedVersion?: number },
  ): Promise<WriteResult> {
    const path = confined(input.path);
    if (path === "/") throw new FileServiceError("bad_path", "Cannot write the root directory");
    const bytes = input.content;
    if (bytes.byteLength > limits.maxFileBytes) {
      throw new FileServiceError(
        "too_large",
        `Cannot write ${bytes.byteLength} bytes to ${path}: files are at most ${limits.maxFileBytes} bytes`,
      );
    }
    const sha = toHex(sha256(bytes));
    let mine: { upload: string; chunks: number } | undefined;
    try {
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        await backoff(attempt);
        const [head, lease, manifest, count] = await kv.getMany<
          [FileHead, LeaseRecord, BlobManifest, Deno.KvU64]
        >([fileKey(path), fileLeaseKey(path), fileBlobKey(sha), fileCountKey()]);
        const t = now();
        if (isLive(lease.value, t) && !sameHolder(lease.value, caller)) {
          throw new FileServiceError(
            "leased",
            `Cannot write ${path}: it is leased by ${holderText(lease.value)} until ${
              iso(lease.value.expires_at_ms)
            }`,
          );
        }
        const current = head.value?.versions.at(-1)?.version ?? 0;
        if (input.expectedVersion !== undefined && input.expectedVersion !== current) {
          throw new FileServiceError(
            "conflict",
            `Cannot write ${path}: expected version ${input.expectedVersion}, but the current version is ${current}` +
              (current === 0 ? " (the file does not exist)" : ""),
          );
        }
        const held = Number(count.value?.value ?? 0n);
        if (head.value === null) {
          if (held >= limits.maxFiles) {
            throw new FileServiceError(
              "full",
              `Cannot create ${path}: the sandbox holds ${held} files, the most allowed (${limits.maxFiles})`,
            );
          }
          if (attempt === 0) await checkShape(path);
        }
        if (manifest.value === null && mine === undefined) mine = await upload(sha, bytes);
        const version: VersionRecord = {
          version: head.value?.next ?? 1,
          sha256: sha,
          size: bytes.byteLength,
          at_ms: t,
          principal: caller.principal,
          session: caller.session,
        };
        const all = [...(head.value?.versions ?? []), version];
        const dropped = all.slice(0, Math.max(0, all.length - limits.maxVersions));
        const kept = all.slice(dropped.length);
        // Reference changes per blob: +1 for the new version, −1 for each dropped one.
        const delta = new Map<string, number>([[sha, 1]]);
        for (const d of dropped) delta.set(d.sha256, (delta.get(d.sha256) ?? 0) - 1);
        const others = [...delta.keys()].filter((s) => s !== sha);
        const otherManifests = others.length
          ? await kv.getMany<BlobManifest[]>(others.map(fileBlobKey))
          : [];
        const op = kv.atomic().check(head).check(lease).check(manifest).check(count);
        const newHead: FileHead = { path, next: version.version + 1, versions: kept };
        op.set(fileKey(path), newHead);
        if (head.value === null) op.set(fileCountKey(), new Deno.KvU64(BigInt(held + 1)));
        const ownRefs = (manifest.value?.refs ?? 0) + delta.get(sha)!;
        const ownManifest: BlobManifest = manifest.value
          ? { ...manifest.value, refs: ownRefs }
          : { size: bytes.byteLength, chunks: mine!.chunks, upload: mine!.upload, refs: ownRefs };
        op.set(fileBlobKey(sha), ownManifest);
        const unreferenced: [string, BlobManifest][] = [];
        others.forEach((s, i) => {
          const m = otherManifests[i];
          op.check(m);
          if (m.value === null) return;
          const refs = m.value.refs + delta.get(s)!;
          if (refs <= 0) {
            op.delete(fileBlobKey(s));
            unreferenced.push([s, m.value]);
          } else op.set(fileBlobKey(s), { ...m.value, refs });
        });
        if (!(await op.commit()).ok) continue;
        for (const [s, m] of unreferenced) await deleteChunks(s, m.upload, m.chunks);
        const deduplicated = manifest.value !== null;
        if (deduplicated && mine) await deleteChunks(sha, mine.upload, mine.chunks);
        mine = undefined;
        return {
          path,
          version: version.version,
          sha256: sha,
          size: bytes.byteLength,
          deduplicated,
          dropped_versions: dropped.map((d) => d.version),
        };
      }
      throw new Error(`Cannot write ${path}: it kept changing under concurrent writes`);
    } finally {
      // A write that never committed its own upload leaves nothing behind.
      if (mine) await deleteChunks(sha, mine.upload, mine.chunks).catch(() => {});
    }
  }

  async function headOf(path: string): Promise<FileHead> {
    const head = (await kv.get<FileHead>(fileKey(path))).value;
    if (head === null) throw new FileServiceError("not_found", `Cannot read ${path}: no such file`);
    return head;
  }

  async function read(input: { path: string; version?: number }): Promise<ReadResult> {
    const path = confined(input.path);
    const head = await headOf(path);
    const latest = head.versions.at(-1)!;
    const v = input.version === undefined
      ? latest
      : head.versions.find((x) => x.version === input.version);
    if (v === undefined) {
      const first = head.versions[0].version;
      throw new FileServiceError(
        "not_found",
        `Cannot read version ${input.version} of ${path}: ` +
          (input.version! < first && input.version! >= 1
            ? `no longer kept (the last ${limits.maxVersions} are: versions ${first}–${latest.version})`
            : `versions are ${first}–${latest.version}`),
      );
    }
    const manifest = (await kv.get<BlobManifest>(fileBlobKey(v.sha256))).value;
    if (manifest === null) {
      throw new Error(
        `Cannot read ${path} version ${v.version}: its content ${v.sha256} is missing`,
      );
    }
    const bytes = new Uint8Array(manifest.size);
    const keys = Array.from(
      { length: manifest.chunks },
      (_, n) => fileBlobChunkKey(v.sha256, manifest.upload, n),
    );
    let offset = 0;
    for (let i = 0; i < keys.length; i += 10) {
      for (const chunk of await kv.getMany<Uint8Array[]>(keys.slice(i, i + 10))) {
        if (chunk.value === null) {
          throw new Error(
            `Cannot read ${path} version ${v.version}: a chunk of its content is missing`,
          );
        }
        bytes.set(chunk.value, offset);
        offset += chunk.value.byteLength;
      }
    }
    if (offset !== manifest.size || toHex(sha256(bytes)) !== v.sha256) {
      throw new Error(`Cannot read ${path} version ${v.version}: its content fails its SHA-256`);
    }
    return { path, ...publicVersion(v), bytes, latest_version: latest.version };
  }

  async function list(input: { path?: string; limit?: number }) {
    const dir = confined(input.path ?? "/");
    const limit = Math.max(1, Math.min(1000, Math.floor(input.limit ?? 100)));
    const exact = dir === "/" ? null : (await kv.get<FileHead>(fileKey(dir))).value;
    if (exact) {
      throw new FileServiceError("bad_path", `Cannot list ${dir}: it is a file (use file_read)`);
    }
    const prefix = dir === "/" ? "/" : dir + "/";
    const end = fileKey(prefix + RANGE_END);
    const entries: ListEntry[] = [];
    let start: Deno.KvKey = fileKey(prefix);
    let truncated = false;
    // Each directory seen restarts the scan past everything under it, so a deep tree costs
    // one read per entry listed, not one per file below.
    outer: while (true) {
      let restarted = false;
      for await (const e of kv.list<FileHead>({ start, end }, { batchSize: 100 })) {
        const full = e.key[1] as string;
        const rest = full.slice(prefix.length);
        const slash = rest.indexOf("/");
        if (entries.length === limit) {
          truncated = true;
          break outer;
        }
        if (slash === -1) {
          const last = e.value.versions.at(-1)!;
          entries.push({
            name: rest,
            path: full,
            kind: "file",
            size: last.size,
            version: last.version,
            updated_at: iso(last.at_ms),
          });
          continue;
        }
        const name = rest.slice(0, slash);
        entries.push({ name, path: prefix + name, kind: "directory" });
        start = fileKey(prefix + name + "/" + RANGE_END);
        restarted = true;
        break;
      }
      if (!restarted) break;
    }
    if (entries.length === 0 && dir !== "/") {
      throw new FileServiceError("not_found", `Cannot list ${dir}: no such directory`);
    }
    return { path: dir, entries, truncated };
  }

  async function versions(input: { path: string }) {
    const path = confined(input.path);
    const head = await headOf(path);
    return { path, versions: head.versions.map(publicVersion) };
  }

  function publicLease(path: string, l: LeaseRecord): Lease {
    return {
      path,
      holder: { principal: l.principal, session: l.session },
      acquired_at: iso(l.acquired_at_ms),
      expires_at: iso(l.expires_at_ms),
    };
  }

  async function lock(caller: FileCaller, input: { path: string; ttl?: number }) {
    const path = confined(input.path);
    if (path === "/") throw new FileServiceError("bad_path", "Cannot lease the root directory");
    const ttl = input.ttl ?? limits.leaseSeconds;
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > limits.maxLeaseSeconds) {
      throw new FileServiceError(
        "bad_lease",
        `Cannot lease ${path} for ${ttl} seconds: ttl must be a whole number from 1 to ${limits.maxLeaseSeconds}`,
      );
    }
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      await backoff(attempt);
      const current = await kv.get<LeaseRecord>(fileLeaseKey(path));
      const t = now();
      const live = isLive(current.value, t);
      if (live && !sameHolder(current.value!, caller)) {
        throw new FileServiceError(
          "leased",
          `Cannot lease ${path}: it is leased by ${holderText(current.value!)} until ${
            iso(current.value!.expires_at_ms)
          }`,
        );
      }
      const record: LeaseRecord = {
        principal: caller.principal,
        session: caller.session,
        acquired_at_ms: live ? current.value!.acquired_at_ms : t,
        expires_at_ms: t + ttl * 1000,
      };
      const ok = await kv.atomic().check(current).set(fileLeaseKey(path), record, {
        expireIn: ttl * 1000,
      }).commit();
      if (ok.ok) return { ...publicLease(path, record), renewed: live };
    }
    throw new Error(`Cannot lease ${path}: its lease kept changing under concurrent callers`);
  }

  async function unlock(caller: FileCaller, input: { path: string }) {
    const path = confined(input.path);
    const current = await kv.get<LeaseRecord>(fileLeaseKey(path));
    if (!isLive(current.value, now())) return { path, released: false };
    if (!sameHolder(current.value, caller)) {
      throw new FileServiceError(
        "not_holder",
        `Cannot unlock ${path}: it is leased by ${holderText(current.value)} until ${
          iso(current.value.expires_at_ms)
        }`,
      );
    }
    const ok = await kv.atomic().check(current).delete(fileLeaseKey(path)).commit();
    return { path, released: ok.ok };
  }

  async function lease(rawPath: string): Promise<Lease | undefined> {
    const path = confined(rawPath);
    const current = (await kv.get<LeaseRecord>(fileLeaseKey(path))).value;
    return isLive(current, now()) ? publicLease(path, current) : undefined;
  }

  return { limits, write, read, list, versions, lock, unlock, lease };
}

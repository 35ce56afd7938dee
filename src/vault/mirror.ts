/**
 * The checkpoint mirror: the latest signed checkpoint kept outside the KV
 * (a file in `--checkpoint-mirror DIR`, by default beside the KV file), so a
 * KV restored from an older copy — or swapped for a forked one — is noticed:
 * the ledger refuses to sign a checkpoint that is behind the mirrored one or
 * inconsistent with it, and `/health?ready` reports not ready, saying why.
 *
 * @module
 */
/** Where the latest signed checkpoint is kept outside the KV. */
export interface CheckpointMirror {
  /** Human-readable location, for errors and logs. */
  readonly where: string;
  /** The mirrored signed note, or null when none was written yet. */
  read(): Promise<string | null>;
  /** Replaces the mirrored note (atomically: a reader sees the old or the new one). */
  write(note: string): Promise<void>;
}

const MAX_NOTE_BYTES = 64 * 1024;

/**
 * A mirror kept in the file `path` (its directory is created on first write,
 * mode 0700). Writes go to a temporary file renamed over it.
 */
export function createFileMirror(path: string): CheckpointMirror {
  const slash = path.lastIndexOf("/");
  const dir = slash < 0 ? "." : slash === 0 ? "/" : path.slice(0, slash);
  return {
    where: path,
    async read() {
      let file: Deno.FsFile;
      try {
        file = await Deno.open(path, { read: true });
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) return null;
        throw e;
      }
      try {
        const size = (await file.stat()).size;
        if (size > MAX_NOTE_BYTES) throw new Error(`${path} is ${size} bytes, not a checkpoint`);
        const buf = new Uint8Array(size);
        let off = 0;
        while (off < size) {
          const n = await file.read(buf.subarray(off));
          if (n === null) break;
          off += n;
        }
        return new TextDecoder().decode(buf.subarray(0, off));
      } finally {
        file.close();
      }
    },
    async write(note) {
      await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
      const tmp = `${path}.${crypto.randomUUID()}.tmp`;
      await Deno.writeTextFile(tmp, note, { mode: 0o644 });
      try {
        await Deno.rename(tmp, path);
      } catch (e) {
        await Deno.remove(tmp).catch(() => {});
        throw e;
      }
    },
  };
}

/** A temporary directory removed (with everything in it) when its scope ends. */
export interface TempDir extends AsyncDisposable {
  readonly path: string;
}

/** `await using dir = await tempDir()`: `dir.path` exists until the block is left. */
export async function tempDir(): Promise<TempDir> {
  const path = await Deno.makeTempDir();
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true });
    },
  };
}

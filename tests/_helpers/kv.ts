/** Real `:memory:` KV for a test's scope, and a KV that counts what it reads. */

/** Runs `fn` with a fresh `:memory:` KV and closes it afterwards, whatever happens. */
export async function withKv(fn: (kv: Deno.Kv) => Promise<void>): Promise<void> {
  const kv = await Deno.openKv(":memory:");
  try {
    await fn(kv);
  } finally {
    kv.close();
  }
}

/** The part of Deno.Kv the services read and write through. */
export type ReadWriteKv = Pick<Deno.Kv, "get" | "getMany" | "list" | "atomic">;

/** Counts every KV entry read: one per key of get/getMany, one per entry a list yields. */
export function countingKv(kv: Deno.Kv): ReadWriteKv & { reads: number } {
  const counter = {
    reads: 0,
    get: ((key: Deno.KvKey, o?: { consistency?: Deno.KvConsistencyLevel }) => {
      counter.reads++;
      return kv.get(key, o);
    }) as Deno.Kv["get"],
    getMany: ((keys: Deno.KvKey[], o?: { consistency?: Deno.KvConsistencyLevel }) => {
      counter.reads += keys.length;
      return kv.getMany(keys, o);
    }) as Deno.Kv["getMany"],
    list: (<T>(selector: Deno.KvListSelector, o?: Deno.KvListOptions) => {
      const inner = kv.list<T>(selector, o);
      return (async function* () {
        for await (const e of inner) {
          counter.reads++;
          yield e;
        }
      })() as unknown as Deno.KvListIterator<T>;
    }) as Deno.Kv["list"],
    atomic: () => kv.atomic(),
  };
  return counter;
}

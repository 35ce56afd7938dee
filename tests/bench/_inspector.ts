/**
 * The soak's view of what a Warden process really retains: its JS heap in use right after a full
 * garbage collection, asked of the process's V8 inspector (it runs with `--inspect`). RSS and
 * "heap used" include garbage not yet collected, and how much of that V8 lets pile up depends on
 * its heap ceiling; the heap after a forced collection is what the process keeps.
 * @module
 */

/** An open inspector session on one process. */
export interface Inspector {
  /** MB of JS heap in use after two full collections. */
  liveHeapMb(): Promise<number>;
  close(): void;
}

/** Connects to the inspector at `wsUrl` (as printed by "Debugger listening on …"). */
export async function inspect(wsUrl: string): Promise<Inspector> {
  const ws = new WebSocket(wsUrl);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  let id = 0;
  const waiting = new Map<number, (result: unknown) => void>();
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.id !== undefined) waiting.get(m.id)?.(m.result ?? m.error);
  };
  const send = (method: string) =>
    new Promise<unknown>((resolve) => {
      waiting.set(++id, resolve);
      ws.send(JSON.stringify({ id, method }));
    });
  return {
    async liveHeapMb() {
      await send("HeapProfiler.collectGarbage");
      await send("HeapProfiler.collectGarbage");
      const usage = await send("Runtime.getHeapUsage") as { usedSize: number };
      return usage.usedSize / 1048576;
    },
    close: () => ws.close(),
  };
}

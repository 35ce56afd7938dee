import assert from "node:assert/strict";
import { capUnsent } from "../../src/net/mod.ts";

function producer() {
  const controllers: ReadableStreamDefaultController<Uint8Array>[] = [];
  let cancelled: unknown = "not cancelled";
  const stream = new ReadableStream<Uint8Array>({
    start: (c) => void controllers.push(c),
    cancel: (reason) => void (cancelled = reason),
  });
  return { stream, source: controllers[0], cancelled: () => cancelled };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

Deno.test("capUnsent() passes every chunk and the end on to a reader that keeps up", async () => {
  const { stream, source } = producer();
  let dropped = false;
  const reader = capUnsent(stream, { maxUnsentBytes: 10, onDrop: () => (dropped = true) })
    .getReader();
  let total = 0;
  for (let i = 0; i < 100; i++) {
    source.enqueue(new Uint8Array(8));
    const { value } = await reader.read();
    total += value!.byteLength;
  }
  source.close();
  assert.deepEqual(await reader.read(), { done: true, value: undefined });
  assert.equal(total, 800);
  assert.equal(dropped, false);
});

Deno.test("capUnsent() holds up to the bound, and drops the stream one chunk past it", async () => {
  const { stream, source, cancelled } = producer();
  const drops: number[] = [];
  const capped = capUnsent(stream, { maxUnsentBytes: 16, onDrop: (n) => drops.push(n) });
  source.enqueue(new Uint8Array(8));
  source.enqueue(new Uint8Array(8));
  await tick();
  assert.deepEqual(drops, [], "16 bytes held is within the bound");
  source.enqueue(new Uint8Array(1));
  await tick();
  assert.deepEqual(drops, [17]);
  assert.match(String(cancelled()), /17 bytes unsent \(more than 16\)/);
  // What was held is dropped with it: the reader gets the error, not the 17 bytes.
  await assert.rejects(capped.getReader().read(), /the client is not reading/);
});

Deno.test("capUnsent() cancels its source when its reader goes away", async () => {
  const { stream, source, cancelled } = producer();
  const reader = capUnsent(stream).getReader();
  source.enqueue(new Uint8Array(1));
  await reader.read();
  await reader.cancel("gone");
  assert.equal(cancelled(), "gone");
});

Deno.test("capUnsent() tells onEnd once, whichever way the stream ends", async () => {
  const ends: string[] = [];
  const done = producer();
  const closing = capUnsent(done.stream, { onEnd: () => ends.push("done") }).getReader();
  done.source.close();
  assert.equal((await closing.read()).done, true);
  const gone = producer();
  const cancelled = capUnsent(gone.stream, { onEnd: () => ends.push("cancelled") });
  await cancelled.cancel();
  const slow = producer();
  capUnsent(slow.stream, { maxUnsentBytes: 1, onEnd: () => ends.push("dropped") });
  slow.source.enqueue(new Uint8Array(2));
  const failing = producer();
  capUnsent(failing.stream, { onEnd: () => ends.push("failed") });
  failing.source.error(new Error("boom"));
  await tick();
  assert.deepEqual(ends.sort(), ["cancelled", "done", "dropped", "failed"]);
});

Deno.test("capUnsent() refuses a bound that is not a positive integer", () => {
  for (const bad of [0, -1, 1.5, Number.NaN]) {
    assert.throws(
      () => capUnsent(new ReadableStream(), { maxUnsentBytes: bad }),
      RangeError,
      String(bad),
    );
  }
});

/**
 * The bodyLimit reader factory (issue 8 §1), in-process: options checked up front, bodies over
 * the limit 413 (declared or streamed), a body too slow 408, empty or
 * malformed JSON 400 with -32700, and only jsonOnly() insists on Content-Type: application/json.
 */
import assert from "node:assert/strict";
import { bodyLimit } from "../../src/http/body_limit.ts";
import { HttpError } from "../../src/http/mod.ts";
import { createDeadlineScheduler } from "../../src/lib/mod.ts";

function refusedWith(status: number, rpcCode?: number) {
  return (e: unknown) => {
    assert.ok(e instanceof HttpError, String(e));
    assert.equal(e.status, status, e.message);
    if (rpcCode !== undefined) assert.equal(e.rpcCode, rpcCode);
    return true;
  };
}

const post = (body: BodyInit, headers: Record<string, string> = {}) =>
  new Request("http://w.example/", { method: "POST", body, headers });

Deno.test("bodyLimit(): JSON within the limit is parsed; empty or malformed is -32700", async () => {
  const deadlines = createDeadlineScheduler();
  try {
    const body = bodyLimit({ maxBytes: 64, timeoutMs: 1000, deadlines });
    assert.deepEqual(await body.json(post('{"a":[1,2]}')), { a: [1, 2] });
    await assert.rejects(body.json(post("  ")), refusedWith(400, -32700));
    await assert.rejects(body.json(new Request("http://w.example/")), refusedWith(400, -32700));
    await assert.rejects(body.json(post("{nope")), refusedWith(400, -32700));
    await assert.rejects(body.json(post(new Uint8Array([0x7b, 0xff, 0x7d]))), refusedWith(400));
  } finally {
    deadlines.close();
  }
});

Deno.test("bodyLimit(): more than maxBytes is 413, declared or streamed", async () => {
  const deadlines = createDeadlineScheduler();
  try {
    const body = bodyLimit({ maxBytes: 8, timeoutMs: 1000, deadlines });
    assert.deepEqual(await body.json(post("[1, 2,3]")), [1, 2, 3], "8 bytes is within the limit");
    await assert.rejects(body.json(post('"123456789"')), refusedWith(413));
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode('"12345'));
        c.enqueue(new TextEncoder().encode('6789"'));
        c.close();
      },
    });
    await assert.rejects(body.json(post(stream)), refusedWith(413));
  } finally {
    deadlines.close();
  }
});

Deno.test("bodyLimit(): a body that does not arrive in time is 408", async () => {
  const deadlines = createDeadlineScheduler({ resolutionMs: 5 });
  try {
    const body = bodyLimit({ maxBytes: 64, timeoutMs: 50, deadlines });
    // Sends one byte, then nothing: the read gives up at the deadline.
    const trickle = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode("["));
      },
    });
    const started = performance.now();
    await assert.rejects(body.json(post(trickle)), refusedWith(408));
    assert.ok(performance.now() - started >= 45, "not before the deadline");
    assert.equal(deadlines.pending, 0, "the deadline is gone once it fired");
  } finally {
    deadlines.close();
  }
});

Deno.test("bodyLimit(): a streamed body that stalls is cancelled at the deadline, not left reading", async () => {
  const deadlines = createDeadlineScheduler({ resolutionMs: 5 });
  try {
    const body = bodyLimit({ maxBytes: 64, timeoutMs: 50, deadlines });
    // Before, the 408 went out but the stream stayed locked by a read that never ended (its
    // cancel() was refused: a locked stream cannot be cancelled), holding what it read from.
    const { promise: cancelled, resolve } = Promise.withResolvers<unknown>();
    const stalled = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode("["));
      },
      cancel: (reason) => resolve(reason),
    });
    await assert.rejects(body.json(post(stalled)), refusedWith(408));
    const reason = await Promise.race([cancelled, new Promise((r) => setTimeout(r, 1000, "no"))]);
    assert.ok(reason instanceof HttpError && reason.status === 408, `cancelled with ${reason}`);
  } finally {
    deadlines.close();
  }
});

Deno.test("bodyLimit(): jsonOnly() wants Content-Type application/json; json() takes any", async () => {
  const deadlines = createDeadlineScheduler();
  try {
    const body = bodyLimit({ maxBytes: 64, timeoutMs: 1000, deadlines });
    const text = () => post("{}", { "content-type": "text/plain" });
    assert.deepEqual(await body.json(text()), {});
    await assert.rejects(body.jsonOnly(text()), (e) => {
      refusedWith(415)(e);
      assert.match((e as Error).message, /got "text\/plain"/);
      return true;
    });
    assert.deepEqual(
      await body.jsonOnly(post("{}", { "content-type": "application/json; charset=utf-8" })),
      {},
    );
  } finally {
    deadlines.close();
  }
});

Deno.test("bodyLimit(): bad options are a TypeError when the reader is made", () => {
  const deadlines = createDeadlineScheduler();
  try {
    const good = { maxBytes: 1024, timeoutMs: 1000, deadlines };
    for (
      const [change, message] of [
        [{ maxBytes: -1 }, /maxBytes must be a non-negative integer/],
        [{ maxBytes: 1.5 }, /maxBytes must be a non-negative integer/],
        [{ timeoutMs: 0 }, /timeoutMs must be a positive number/],
        [{ timeoutMs: Number.NaN }, /timeoutMs must be a positive number/],
        [{ deadlines: {} }, /deadlines must be a DeadlineScheduler/],
      ] as const
    ) {
      assert.throws(
        () => bodyLimit({ ...good, ...change } as typeof good),
        (e) => e instanceof TypeError && message.test(e.message),
      );
    }
    bodyLimit(good);
  } finally {
    deadlines.close();
  }
});

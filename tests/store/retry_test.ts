/**
 * withKvRetry: transient lock errors are retried for a time budget, not a handful of attempts;
 * anything else is thrown at once.
 */
import assert from "node:assert/strict";
import { withKvRetry } from "../../src/store/mod.ts";

const locked = () => new Error("database is locked");

Deno.test("withKvRetry outlasts a write lock met fifteen times in a row", async () => {
  let calls = 0;
  const value = await withKvRetry(() => {
    calls++;
    if (calls <= 15) return Promise.reject(locked());
    return Promise.resolve("done");
  });
  assert.equal(value, "done");
  assert.equal(calls, 16);
});

Deno.test("withKvRetry gives up on a lock held past its budget, with the lock's error", async () => {
  let calls = 0;
  const started = performance.now();
  await assert.rejects(
    withKvRetry(() => {
      calls++;
      return Promise.reject(locked());
    }, { budgetMs: 300 }),
    /database is locked/,
  );
  const took = performance.now() - started;
  assert.ok(took < 1_000, `gave up after ${took} ms`);
  assert.ok(calls >= 3, `retried ${calls} times`);
});

Deno.test("withKvRetry throws any other error at once", async () => {
  let calls = 0;
  await assert.rejects(
    withKvRetry(() => {
      calls++;
      return Promise.reject(new TypeError("value too large"));
    }),
    TypeError,
  );
  assert.equal(calls, 1);
});

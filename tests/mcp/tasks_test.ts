// deno-lint-ignore-file no-explicit-any -- task records are probed field by field
// The task engine's bounds and its cross-instance rules, over one real KV shared by two engines
// (two instances) and an injected clock: a principal's cap (the oldest finished task makes room,
// live ones never), another principal's task is unknown, a result over the cap fails the task
// saying so, a run whose instance died is failed and never re-run, and a decided hold is run
// by exactly one of the instances that see it.
import assert from "node:assert/strict";
import { createTaskEngine, type TaskBody, type TaskStep } from "../../src/mcp/tasks.ts";
import { waitFor } from "../_helpers/wait.ts";

const text = (t: string): TaskStep => ({
  kind: "result",
  result: { content: [{ type: "text", text: t }] },
});

/** A body that finishes only when told to; `runs` counts how often it started. */
function gated() {
  const gates: ((step: TaskStep) => void)[] = [];
  let runs = 0;
  const body: TaskBody = (run) => {
    runs++;
    return new Promise((resolve, reject) => {
      gates.push(resolve);
      run.signal.addEventListener("abort", () => reject(new Error("aborted")), { once: true });
    });
  };
  return { body, open: (i: number, step = text(`done ${i}`)) => gates[i](step), runs: () => runs };
}

async function until(check: () => Promise<boolean>) {
  await waitFor(check, "condition not reached", { timeoutMs: 2_000, intervalMs: 5 });
}

const call = (principal: string, tool = "job") => ({
  tool,
  principal,
  args: {},
  capabilities: {},
});

Deno.test("tasks: a principal's cap; the oldest finished task makes room, live ones never", async () => {
  const kv = await Deno.openKv(":memory:");
  let now = 1_000_000;
  const tasks = createTaskEngine({ kv, limits: { maxPerPrincipal: 2 }, now: () => now++ });
  const job = gated();
  tasks.register("job", job.body);
  try {
    const first = (await tasks.start(call("alice")))!;
    const second = (await tasks.start(call("alice")))!;
    assert.ok(first && second);
    assert.equal(await tasks.start(call("alice")), undefined, "two live tasks: no third");
    // Another principal's count is its own; and it cannot see alice's task.
    const bobs = (await tasks.start(call("bob")))!;
    assert.ok(bobs);
    await assert.rejects(tasks.get(first.id, "bob"), (e: any) => e.code === -32602);
    await assert.rejects(tasks.cancel(first.id, "bob"), (e: any) => e.code === -32602);
    await assert.rejects(tasks.update(first.id, "bob", {}), (e: any) => e.code === -32602);

    job.open(0);
    await until(async () => (await tasks.get(first.id, "alice")).status === "completed");
    const third = (await tasks.start(call("alice")))!;
    assert.ok(third, "the finished one made room");
    await assert.rejects(tasks.get(first.id, "alice"), (e: any) => e.code === -32602);
    assert.equal((await tasks.get(second.id, "alice")).status, "working");
    assert.equal(await tasks.start(call("alice")), undefined);
  } finally {
    await tasks.close();
    kv.close();
  }
});

Deno.test("tasks: a result over the cap fails the task and says why; a thrown error fails it", async () => {
  const kv = await Deno.openKv(":memory:");
  const tasks = createTaskEngine({ kv, limits: { maxResultBytes: 1024 } });
  tasks.register("big", () => Promise.resolve(text("x".repeat(2000))));
  tasks.register("small", () => Promise.resolve(text("ok")));
  tasks.register("crash", () => Promise.reject(Object.assign(new Error("boom"), { code: -32603 })));
  try {
    const big = (await tasks.start(call("alice", "big")))!;
    const small = (await tasks.start(call("alice", "small")))!;
    const crash = (await tasks.start(call("alice", "crash")))!;
    await until(async () => (await tasks.get(big.id, "alice")).status !== "working");
    const failed = await tasks.get(big.id, "alice");
    assert.equal(failed.status, "failed");
    assert.equal(failed.result, undefined);
    assert.match(failed.error!.message, /larger than a task keeps \(1024 bytes\)/);
    await until(async () => (await tasks.get(small.id, "alice")).status === "completed");
    await until(async () => (await tasks.get(crash.id, "alice")).status === "failed");
    assert.deepEqual((await tasks.get(crash.id, "alice")).error, { code: -32603, message: "boom" });
    // The call kept for a later run is bounded too.
    const huge = { ...call("alice", "small"), args: { blob: "y".repeat(20_000) } };
    assert.equal(await tasks.start(huge), undefined);
  } finally {
    await tasks.close();
    kv.close();
  }
});

Deno.test("tasks: a run whose instance stopped is failed by the other instance, never re-run", async () => {
  const kv = await Deno.openKv(":memory:");
  let now = Date.now();
  const clock = () => now;
  const job = gated();
  const a = createTaskEngine({ kv, limits: { leaseMs: 60_000 }, now: clock });
  const b = createTaskEngine({ kv, limits: { leaseMs: 60_000 }, now: clock });
  a.register("job", job.body);
  b.register("job", job.body);
  try {
    const task = (await a.start(call("alice")))!;
    assert.equal((await b.get(task.id, "alice")).status, "working", "leased: still running");
    now += 61_000; // a's lease lapses (as if a died without refreshing it)
    const lost = await b.get(task.id, "alice");
    assert.equal(lost.status, "failed");
    assert.match(lost.error!.message, /stopped before it finished; the call is not repeated/);
    assert.equal(job.runs(), 1);
    // a finishing late changes nothing: the record is terminal.
    job.open(0);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal((await a.get(task.id, "alice")).status, "failed");
  } finally {
    await a.close();
    await b.close();
    kv.close();
  }
});

Deno.test("tasks: a decided hold is run by exactly one instance, under the hold, once", async () => {
  const kv = await Deno.openKv(":memory:");
  let open = true;
  const seen: (string | undefined)[] = [];
  const body: TaskBody = (run) => {
    seen.push(run.holdId);
    return Promise.resolve(text(`ran under ${run.holdId} with ${JSON.stringify(run.args)}`));
  };
  const engines = [0, 1].map(() =>
    createTaskEngine({ kv, fallback: () => body, holdOpen: () => Promise.resolve(open) })
  );
  try {
    const task = (await engines[0].adopt({ ...call("alice", "calc"), args: { x: 1 } }, {
      kind: "held",
      hold: "h-1",
      message: "held for operator approval (hold h-1)",
    }))!;
    assert.equal(task.status, "working");
    assert.equal((await engines[1].get(task.id, "alice")).status, "working");
    assert.deepEqual(seen, [], "nothing runs while the hold is open");
    open = false;
    // Both instances poll at once, repeatedly: one claims the run.
    for (let i = 0; i < 5; i++) {
      await Promise.all(engines.map((e) => e.get(task.id, "alice")));
    }
    await until(async () => (await engines[1].get(task.id, "alice")).status === "completed");
    assert.deepEqual(seen, ["h-1"]);
    const done = await engines[0].get(task.id, "alice");
    assert.equal((done.result!.content as any)[0].text, 'ran under h-1 with {"x":1}');
    // Finished: the kept call is gone from the record.
    assert.equal(done.resume, undefined);
    // Cancelling a finished task is an idempotent no-op.
    await engines[1].cancel(task.id, "alice");
    assert.equal((await engines[0].get(task.id, "alice")).status, "completed");
  } finally {
    for (const e of engines) await e.close();
    kv.close();
  }
});

Deno.test("tasks: input is answered in parts; the last answer resumes the task on that instance", async () => {
  const kv = await Deno.openKv(":memory:");
  const body: TaskBody = (run) =>
    Promise.resolve(
      run.inputResponses.a !== undefined && run.inputResponses.b !== undefined
        ? text(
          `a=${JSON.stringify(run.inputResponses.a)} b=${JSON.stringify(run.inputResponses.b)}`,
        )
        : {
          kind: "input",
          inputRequests: { a: { method: "elicitation/create" }, b: { method: "x" } },
        },
    );
  const [one, two] = [0, 1].map(() => createTaskEngine({ kv, fallback: () => body }));
  try {
    const task = (await one.start(call("alice", "ask")))!;
    await until(async () => (await two.get(task.id, "alice")).status === "input_required");
    await two.update(task.id, "alice", { a: { action: "accept" }, stray: 1 });
    const partial = await one.get(task.id, "alice");
    assert.equal(partial.status, "input_required");
    assert.deepEqual(Object.keys(partial.inputRequests!), ["b"]);
    await one.update(task.id, "alice", { b: { action: "decline" } });
    await until(async () => (await two.get(task.id, "alice")).status === "completed");
    const done = await two.get(task.id, "alice");
    assert.equal(
      (done.result!.content as any)[0].text,
      'a={"action":"accept"} b={"action":"decline"}',
    );
  } finally {
    await one.close();
    await two.close();
    kv.close();
  }
});

Deno.test("tasks: a held task still asking its client runs once the operator decided, unanswered", async () => {
  const kv = await Deno.openKv(":memory:");
  let open = true;
  const seen: (string | undefined)[] = [];
  const body: TaskBody = (run) => {
    seen.push(run.holdId);
    return Promise.resolve(text("ran"));
  };
  const tasks = createTaskEngine({
    kv,
    fallback: () => body,
    holdOpen: () => Promise.resolve(open),
  });
  try {
    const task = (await tasks.adopt(call("alice", "calc"), {
      kind: "held",
      hold: "h-2",
      message: "held (hold h-2)",
      inputRequests: { confirm: { method: "elicitation/create" } },
    }))!;
    const asking = await tasks.get(task.id, "alice");
    assert.equal(asking.status, "input_required");
    assert.deepEqual(Object.keys(asking.inputRequests!), ["confirm"]);
    open = false;
    await until(async () => (await tasks.get(task.id, "alice")).status === "completed");
    assert.deepEqual(seen, ["h-2"]);
  } finally {
    await tasks.close();
    kv.close();
  }
});

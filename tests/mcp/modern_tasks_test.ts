// deno-lint-ignore-file no-explicit-any -- results are probed field by field
// The io.modelcontextprotocol/tasks extension on the 2026-07-28 path, across two real
// processes on one KV file: a held call (888_HOLD) from a client that declares the extension is
// answered with a task; the task is read from the other process; an operator's signature
// (`warden approve`, POST /holds/:id/approve) lets the first poll that sees it repeat the call
// under the hold, exactly once, and the task completes with the result; a denied hold's task
// completes with the denial; a call still running after --task-after is a task completed by
// the process that ran it and read from the other; cancel reaches a running task from the
// other process.
import assert from "node:assert/strict";
import { z } from "zod";
import { connectModern, getJson, vaultEntriesOver } from "../_helpers/client.ts";
import { decidedByCli, keygenOperator, writeHeldCalculatePolicy } from "../_helpers/operator.ts";
import { modernMeta, postModern } from "../_helpers/raw.ts";
import { spawnServer } from "../_helpers/server.ts";
import { tempDir } from "../_helpers/tmp.ts";
import { pollUntil } from "../_helpers/wait.ts";

const TOKEN = "a-test-token-of-24-chars";
const TASKS = "io.modelcontextprotocol/tasks";
const CAPS = { extensions: { [TASKS]: {} } };

/** One 2026-07-28 request as the conformance harness sends it, with the bearer token. */
async function rpc(
  base: string,
  method: string,
  params: Record<string, unknown>,
  caps: Record<string, unknown> = CAPS,
) {
  return (await postModern(base, method, params, {
    headers: { authorization: `Bearer ${TOKEN}` },
    meta: modernMeta(caps),
  })).json;
}

/** A v2 client pinned to 2026-07-28 that declares the tasks extension. */
async function taskClient(base: string) {
  const client = await connectModern(base, {
    name: "tasks-test",
    token: TOKEN,
    capabilities: CAPS,
  });
  const loose = z.looseObject({});
  return {
    client,
    get: (taskId: string) =>
      client.request(
        { method: "tasks/get", params: { taskId } } as never,
        loose as never,
      ) as Promise<
        any
      >,
    cancel: (taskId: string) =>
      client.request({ method: "tasks/cancel", params: { taskId } } as never, loose as never),
    update: (taskId: string, inputResponses: Record<string, unknown>) =>
      client.request(
        { method: "tasks/update", params: { taskId, inputResponses } } as never,
        loose as never,
      ),
  };
}

/** Polls until the task is terminal, alternating the readers (one per process). */
async function settled(readers: ((id: string) => Promise<any>)[], id: string): Promise<any> {
  let i = 0;
  const t = await pollUntil(
    () => readers[i++ % readers.length](id),
    (t) => ["completed", "failed", "cancelled"].includes(t.status),
    { timeoutMs: 10_000 },
  );
  if (!["completed", "failed", "cancelled"].includes(t.status)) {
    throw new Error(`task ${id} did not settle`);
  }
  return t;
}

async function vault(base: string): Promise<any[]> {
  return await vaultEntriesOver(base, TOKEN);
}

Deno.test("modern tasks: a held call is a task, read from the other process, completed once after the operator signs", async () => {
  await using tmp = await tempDir();
  const dir = tmp.path;
  const operator = await keygenOperator(dir);
  const policy = await writeHeldCalculatePolicy(dir, operator);
  const common = [
    "--kv",
    `${dir}/shared.db`,
    "--policy",
    policy,
    "--token",
    TOKEN,
    "--task-after",
    "300",
  ];
  await using a = await spawnServer(common);
  await using b = await spawnServer(common);
  const onA = await taskClient(a.url);
  const onB = await taskClient(b.url);
  try {
    // Both processes advertise the extension.
    assert.ok((onA.client.getServerCapabilities() as any)?.extensions?.[TASKS]);
    // The v2 client 2.4.0 cannot take a CreateTaskResult itself (it has no tasks runtime), so
    // the call that creates the task is sent as the conformance harness sends it.
    await assert.rejects(
      onA.client.callTool({ name: "calculate", arguments: { expression: "1+2" } }),
      /Unsupported result type 'task'/,
    );

    const created = await rpc(a.url, "tools/call", {
      name: "calculate",
      arguments: { expression: "6*7" },
    });
    const task = created.result;
    assert.equal(task.resultType, "task", JSON.stringify(created));
    assert.equal(task.status, "working");
    assert.ok(!("result" in task) && !("requestState" in task));
    const holdId = /hold ([0-9a-f-]{36})/.exec(task.statusMessage)![1];

    // The other process has it, still waiting for the operator; asking again runs nothing.
    for (const reader of [onB.get, onA.get, onB.get]) {
      const seen = await reader(task.taskId);
      assert.equal(seen.taskId, task.taskId);
      assert.equal(seen.status, "working");
      assert.match(seen.statusMessage, new RegExp(`hold ${holdId}`));
      assert.ok(!("result" in seen));
    }

    // The operator signs through the other process.
    await decidedByCli("approve", holdId, { keyFile: operator.keyFile, url: b.url, token: TOKEN });
    const done = await settled([onA.get, onB.get], task.taskId);
    assert.equal(done.status, "completed", JSON.stringify(done));
    assert.equal(done.result.structuredContent.status, "OK", JSON.stringify(done.result));
    assert.equal(done.result.structuredContent.data.result, 42);
    assert.ok(
      !("_meta" in done.result && done.result._meta["io.modelcontextprotocol/related-task"]),
    );
    // More polls, from both processes, answer the same result and run nothing again.
    for (const reader of [onA.get, onB.get, onA.get]) {
      assert.deepEqual((await reader(task.taskId)).result, done.result);
    }
    const hold = await getJson(a.url, `/holds/${holdId}`, TOKEN);
    assert.equal(hold.status, "released");
    const calls = (await vault(a.url)).filter((e) =>
      e.type === "tool_call" && e.tool === "calculate" && e.hold_id === holdId
    );
    assert.equal(calls.filter((e) => e.outcome === "ok").length, 1, JSON.stringify(calls));

    // A denied hold: the task completes with the denial, sealed, and the call never ran.
    const second = (await rpc(b.url, "tools/call", {
      name: "calculate",
      arguments: { expression: "1+1" },
    })).result;
    assert.equal(second.resultType, "task");
    const secondHold = /hold ([0-9a-f-]{36})/.exec(second.statusMessage)![1];
    await decidedByCli("deny", secondHold, { keyFile: operator.keyFile, url: a.url, token: TOKEN });
    const refused = await settled([onB.get, onA.get], second.taskId);
    assert.equal(refused.status, "completed");
    assert.equal(refused.result.isError, true);
    assert.equal(refused.result.structuredContent.status, "BLOCKED");
    assert.match(refused.result.structuredContent.message, /denied/i);
    const ranSecond = (await vault(b.url)).filter((e) =>
      e.type === "tool_call" && e.hold_id === secondHold && e.outcome === "ok"
    );
    assert.equal(ranSecond.length, 0);

    // A client that can also elicit is asked to confirm while the task waits (input_required);
    // its answer, through the other process, is recorded and the task waits for the operator.
    const asking = { ...CAPS, elicitation: { form: {} } };
    const third = (await rpc(a.url, "tools/call", {
      name: "calculate",
      arguments: { expression: "2*21" },
    }, asking)).result;
    assert.equal(third.resultType, "task");
    const thirdHold = /hold ([0-9a-f-]{36})/.exec(third.statusMessage)![1];
    const asked = await onB.get(third.taskId);
    assert.equal(asked.status, "input_required");
    assert.equal(asked.inputRequests.warden_hold_confirm.method, "elicitation/create");
    assert.match(asked.inputRequests.warden_hold_confirm.params.message, new RegExp(thirdHold));
    const ack = await onB.update(third.taskId, {
      warden_hold_confirm: { action: "accept", content: { confirm: true } },
    });
    assert.deepEqual(Object.keys(ack).filter((k) => k !== "_meta"), []);
    const waitingOperator = await pollUntil(
      () => onA.get(third.taskId),
      (t) => t.status === "working" && !t.inputRequests,
    );
    assert.equal(waitingOperator.status, "working", JSON.stringify(waitingOperator));
    // "working" is written as the answer is taken; the run that records it on the hold follows
    // (in the background, at the process that took it), so the hold is read until it shows it.
    const thirdView = await pollUntil(
      () => getJson(b.url, `/holds/${thirdHold}`, TOKEN),
      (view) => view.human !== undefined,
    );
    assert.equal(thirdView.status, "open", "the human's accept releases nothing");
    assert.equal(thirdView.human?.action, "accept");
    await decidedByCli("approve", thirdHold, {
      keyFile: operator.keyFile,
      url: a.url,
      token: TOKEN,
    });
    const thirdDone = await settled([onB.get, onA.get], third.taskId);
    assert.equal(thirdDone.result.structuredContent.data.result, 42);
    // A decline denies the hold: the task completes with the denial, the call never ran.
    const fourth = (await rpc(b.url, "tools/call", {
      name: "calculate",
      arguments: { expression: "3*3" },
    }, asking)).result;
    const fourthHold = /hold ([0-9a-f-]{36})/.exec(fourth.statusMessage)![1];
    assert.equal((await onA.get(fourth.taskId)).status, "input_required");
    await onA.update(fourth.taskId, { warden_hold_confirm: { action: "decline" } });
    const declined = await settled([onA.get, onB.get], fourth.taskId);
    assert.equal(declined.result.structuredContent.status, "BLOCKED");
    const answers = (await vault(a.url)).filter((e) => e.type === "hold_human_response");
    assert.deepEqual(answers.map((e) => [e.hold_id, e.action, e.via]), [
      [thirdHold, "accept", "tasks/update"],
      [fourthHold, "decline", "tasks/update"],
    ]);

    // What the extension removed, and what it keeps private.
    assert.equal((await rpc(a.url, "tasks/list", {})).error?.code, -32601);
    assert.equal((await rpc(a.url, "tasks/result", { taskId: task.taskId })).error?.code, -32601);
    assert.equal((await rpc(b.url, "tasks/get", { taskId: "task_nope" })).error?.code, -32602);
  } finally {
    await onA.client.close();
    await onB.client.close();
  }
});

Deno.test("modern tasks: a long call becomes a task the other process reads; cancel reaches a running task from the other process", async () => {
  await using tmp = await tempDir();
  const dir = tmp.path;
  // --task-after must stay well above what a fast call takes on a loaded machine: at 200 ms the
  // bus_publish below was itself answered with a task (1 run in 15 beside three CPU burners).
  const common = ["--kv", `${dir}/shared.db`, "--token", TOKEN, "--task-after", "3000"];
  await using a = await spawnServer(common);
  await using b = await spawnServer(common);
  const onA = await taskClient(a.url);
  const onB = await taskClient(b.url);
  try {
    // A subscriber that waits on an empty topic outlives --task-after: a task, run by a.
    const waitingRaw = await rpc(a.url, "tools/call", {
      name: "bus_subscribe",
      arguments: { topic: "news", wait_s: 20 },
    });
    const waiting = waitingRaw.result;
    assert.equal(waiting?.resultType, "task", JSON.stringify(waitingRaw));
    assert.equal((await onB.get(waiting.taskId)).status, "working");
    // A fast call of the same client is answered directly (no task). It goes to a: a KV
    // watch (what wakes a waiting subscriber) sees only writes made by its own process.
    const published = await onA.client.callTool({
      name: "bus_publish",
      arguments: { topic: "news", message: "hello from a" },
    });
    assert.equal((published.structuredContent as any).status, "OK");
    const done = await settled([onB.get, onA.get], waiting.taskId);
    assert.equal(done.status, "completed", JSON.stringify(done));
    assert.equal(done.result.structuredContent.status, "OK");
    assert.equal(done.result.structuredContent.data.messages[0].message, "hello from a");
    const sealed = (await vault(b.url)).filter((e) =>
      e.type === "tool_call" && e.tool === "bus_subscribe"
    );
    assert.equal(sealed.length, 1, "the task's call is sealed once");

    // Cancelled through b while a runs it: a stops the call and it stays cancelled.
    const slow = (await rpc(a.url, "tools/call", {
      name: "bus_subscribe",
      arguments: { topic: "quiet", wait_s: 20 },
    })).result;
    assert.equal(slow.resultType, "task");
    const ack = await onB.cancel(slow.taskId);
    assert.deepEqual(Object.keys(ack).filter((k) => k !== "_meta"), []);
    assert.equal((await onA.get(slow.taskId)).status, "cancelled");
    // a sees the cancel within its one-second check and stops the subscriber (which then
    // returns, and is sealed) instead of leaving it waiting its 20 s.
    const cancelledAt = Date.now();
    const stopped = await pollUntil(
      async () =>
        (await vault(a.url)).filter((e) => e.type === "tool_call" && e.tool === "bus_subscribe")
          .length === 2,
      (done) => done,
      { timeoutMs: 10_000, intervalMs: 100 },
    );
    assert.ok(Date.now() - cancelledAt < 10_000);
    assert.ok(stopped, "the cancelled call was stopped and sealed");
    assert.equal((await onB.get(slow.taskId)).status, "cancelled");
  } finally {
    await onA.client.close();
    await onB.client.close();
  }
});

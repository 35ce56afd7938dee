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
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { z } from "zod";
import { runCli as cli } from "../_helpers/cli.ts";
import { spawnServer } from "../_helpers/server.ts";

const TOKEN = "a-test-token-of-24-chars";
const TASKS = "io.modelcontextprotocol/tasks";
const CAPS = { extensions: { [TASKS]: {} } };

/** One 2026-07-28 request as the conformance harness sends it (headers mirror the body). */
async function rpc(
  base: string,
  method: string,
  params: Record<string, unknown>,
  caps: Record<string, unknown> = CAPS,
) {
  const name = method === "tools/call" ? params.name : params.taskId;
  const res = await fetch(`${base}/mcp`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${TOKEN}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": "2026-07-28",
      "mcp-method": method,
      ...(typeof name === "string" ? { "mcp-name": name } : {}),
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method,
      params: {
        ...params,
        _meta: {
          "io.modelcontextprotocol/protocolVersion": "2026-07-28",
          "io.modelcontextprotocol/clientInfo": { name: "raw", version: "1" },
          "io.modelcontextprotocol/clientCapabilities": caps,
        },
      },
    }),
  });
  const text = await res.text();
  const line = text.split("\n").find((l) => l.startsWith("data:"));
  return JSON.parse(line ? line.slice(5) : text);
}

/** A v2 client pinned to 2026-07-28 that declares the tasks extension. */
async function taskClient(base: string) {
  const client = new Client({ name: "tasks-test", version: "1.0.0" }, {
    capabilities: CAPS as never,
    versionNegotiation: { mode: { pin: "2026-07-28" } },
  });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${base}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${TOKEN}` } },
    }),
  );
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
  for (let i = 0; i < 200; i++) {
    const t = await readers[i % readers.length](id);
    if (["completed", "failed", "cancelled"].includes(t.status)) return t;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`task ${id} did not settle`);
}

async function vault(base: string): Promise<any[]> {
  const res = await fetch(`${base}/vault/entries?start=0&limit=1000`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  return (await res.json()).entries.map((e: any) => JSON.parse(atob(e.data)));
}

Deno.test("modern tasks: a held call is a task, read from the other process, completed once after the operator signs", async () => {
  const dir = await Deno.makeTempDir();
  const keygen = await cli(["keygen", "--out", `${dir}/op`, "--name", "alice"]);
  assert.equal(keygen.code, 0, keygen.stderr);
  const pub = (await Deno.readTextFile(`${dir}/op/operator.pub`)).trim();
  await Deno.writeTextFile(
    `${dir}/policy.json`,
    JSON.stringify({
      tools: { calculate: { hold: true } },
      operators: [{ name: "alice", public_key: pub }],
      rate_limits: { per_principal_per_minute: 0, max_concurrent_per_principal: 0 },
    }),
  );
  const common = [
    "--kv",
    `${dir}/shared.db`,
    "--policy",
    `${dir}/policy.json`,
    "--token",
    TOKEN,
    "--task-after",
    "300",
  ];
  const a = await spawnServer(common);
  const b = await spawnServer(common);
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
    const approved = await cli([
      "approve",
      holdId,
      "--key",
      `${dir}/op/operator.key`,
      "--url",
      b.url,
      "--token",
      TOKEN,
    ]);
    assert.equal(approved.code, 0, approved.stderr);
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
    const hold = await (await fetch(`${a.url}/holds/${holdId}`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    })).json();
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
    const denied = await cli([
      "deny",
      secondHold,
      "--key",
      `${dir}/op/operator.key`,
      "--url",
      a.url,
      "--token",
      TOKEN,
    ]);
    assert.equal(denied.code, 0, denied.stderr);
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
    let waitingOperator: any;
    for (let i = 0; i < 100; i++) {
      waitingOperator = await onA.get(third.taskId);
      if (waitingOperator.status === "working" && !waitingOperator.inputRequests) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(waitingOperator.status, "working", JSON.stringify(waitingOperator));
    // "working" is written as the answer is taken; the run that records it on the hold follows
    // (in the background, at the process that took it), so the hold is read until it shows it.
    let thirdView: any;
    for (let i = 0; i < 100; i++) {
      thirdView = await (await fetch(`${b.url}/holds/${thirdHold}`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      })).json();
      if (thirdView.human !== undefined) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(thirdView.status, "open", "the human's accept releases nothing");
    assert.equal(thirdView.human?.action, "accept");
    const signed = await cli([
      "approve",
      thirdHold,
      "--key",
      `${dir}/op/operator.key`,
      "--url",
      a.url,
      "--token",
      TOKEN,
    ]);
    assert.equal(signed.code, 0, signed.stderr);
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
    await a.stop();
    await b.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("modern tasks: a long call becomes a task the other process reads; cancel reaches a running task from the other process", async () => {
  const dir = await Deno.makeTempDir();
  const common = ["--kv", `${dir}/shared.db`, "--token", TOKEN, "--task-after", "200"];
  const a = await spawnServer(common);
  const b = await spawnServer(common);
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
    let stopped = false;
    for (let i = 0; i < 100 && !stopped; i++) {
      stopped = (await vault(a.url)).filter((e) =>
        e.type === "tool_call" && e.tool === "bus_subscribe"
      ).length === 2;
      if (!stopped) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(Date.now() - cancelledAt < 10_000);
    assert.ok(stopped, "the cancelled call was stopped and sealed");
    assert.equal((await onB.get(slow.taskId)).status, "cancelled");
  } finally {
    await onA.client.close();
    await onB.client.close();
    await a.stop();
    await b.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

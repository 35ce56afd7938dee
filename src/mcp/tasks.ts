/**
 * The `io.modelcontextprotocol/tasks` extension (SEP-2663) on the 2026-07-28
 * path. A `tools/call` from a request that declares the extension may be
 * answered with a `CreateTaskResult` (`resultType: "task"`) instead of the
 * tool's result; the client then polls `tasks/get`, answers input through
 * `tasks/update` and may `tasks/cancel`. (`tasks/result` and `tasks/list` are
 * not in the extension: the SDK answers them `-32601`.)
 *
 * Every task is a record in KV, so any instance answers any task request, and
 * nothing a task needs lives only in the process that created it except the
 * body it is running right now:
 * - a running body holds a lease on its record, refreshed while it runs; a
 *   record whose lease lapsed (its instance died) is reported `failed` and is
 *   never re-run, because the call may have had effects and was sealed;
 * - a task waiting on client input (`input_required`) or on an operator's
 *   decision about a hold (`working`, with the hold named) runs nobody: the
 *   instance that receives the last input (`tasks/update`), or the first
 *   `tasks/get` after the hold is decided, claims the record with a
 *   check-and-set and runs the body, so exactly one instance repeats the call.
 *
 * Bounded: tasks per principal, a TTL (`expireIn` on the record), the bytes of
 * a stored result and of the call kept for a repeat. A task is only ever seen
 * by its own principal: another principal's task id is "unknown" (-32602).
 *
 * @module
 */
import {
  type CallToolResult,
  CLIENT_CAPABILITIES_META_KEY,
  type McpServer,
  MissingRequiredClientCapabilityError,
  ProtocolError,
  ProtocolErrorCode,
  type ServerContext,
} from "@modelcontextprotocol/server";
import { z } from "zod";
import { taskByPrincipalKey, taskByPrincipalPrefix, taskKey, withKvRetry } from "../store/mod.ts";
import type { Logger } from "../lib/mod.ts";

/** The extension's identifier, in `capabilities.extensions` on both sides. */
export const TASKS_EXTENSION = "io.modelcontextprotocol/tasks";

/** Where a task stands (terminal: completed, failed, cancelled). */
export type TaskStatus = "working" | "input_required" | "completed" | "failed" | "cancelled";

const TERMINAL: ReadonlySet<TaskStatus> = new Set(["completed", "failed", "cancelled"]);

/** A task's JSON-RPC-shaped error (status `failed`). */
export interface TaskError {
  readonly code: number;
  readonly message: string;
  readonly data?: unknown;
}

/** One task, as kept in KV (never returned whole: see {@link detailedTask}). */
export interface TaskRecord {
  readonly id: string;
  readonly principal: string;
  readonly tool: string;
  readonly status: TaskStatus;
  readonly statusMessage?: string;
  readonly createdAt: string;
  readonly lastUpdatedAt: string;
  readonly ttlMs: number;
  readonly expiresAtMs: number;
  readonly result?: Record<string, unknown>;
  readonly error?: TaskError;
  /** Pending input requests (status `input_required`), keyed as the client answers them. */
  readonly inputRequests?: Record<string, unknown>;
  /** The 888_HOLD the task waits on (status `working`, no lease) or ran under. */
  readonly hold?: string;
  /**
   * What a later run needs: the call's arguments, the client's capabilities and the input
   * answered so far. Kept only while the task is not terminal, never returned by any method.
   */
  readonly resume?: {
    readonly args: Record<string, unknown>;
    readonly capabilities: Record<string, unknown>;
    readonly inputResponses: Record<string, unknown>;
  };
  /** The run in progress: a claim token and until when it counts. */
  readonly lease?: { readonly owner: string; readonly untilMs: number };
}

/** What one run of a task's body ends with. */
export type TaskStep =
  | { readonly kind: "result"; readonly result: CallToolResult }
  | { readonly kind: "input"; readonly inputRequests: Record<string, unknown> }
  | {
    readonly kind: "held";
    readonly hold: string;
    readonly message: string;
    readonly expiresAtMs?: number;
    /** Asked of the client meanwhile (the human's confirmation): the task is input_required. */
    readonly inputRequests?: Record<string, unknown>;
  };

/** What a task's body is given. */
export interface TaskRun {
  readonly taskId: string;
  readonly args: Record<string, unknown>;
  readonly principal: string;
  readonly capabilities: Record<string, unknown>;
  /** Every input the client answered, across rounds. */
  readonly inputResponses: Record<string, unknown>;
  /** Set when the run repeats a held call after the operator decided. */
  readonly holdId?: string;
  /** Set when the run resumes a held task after the client answered its input (not decided). */
  readonly heldBy?: string;
  readonly signal: AbortSignal;
}

/** A tool's work as a task: one run to a step (a thrown error fails the task). */
export type TaskBody = (run: TaskRun) => Promise<TaskStep>;

/** The task bounds. */
export interface TaskLimits {
  /** Live tasks one principal may hold. */
  readonly maxPerPrincipal: number;
  /** How long a task is kept (from its creation; a held task at least as long as its hold). */
  readonly ttlMs: number;
  /** Largest stored result (UTF-8 JSON bytes); a larger one fails the task, saying so. */
  readonly maxResultBytes: number;
  /** Largest call kept for a later run (arguments and capabilities, UTF-8 JSON bytes). */
  readonly maxCallBytes: number;
  /** The poll interval suggested to clients. */
  readonly pollIntervalMs: number;
  /** How long a run's claim lasts without a refresh (refreshed once a third of it is used). */
  readonly leaseMs: number;
}

/** Defaults: 32 tasks per principal, 1 h, 48 KiB results, 16 KiB calls, 500 ms, 15 s. */
export const DEFAULT_TASK_LIMITS: TaskLimits = {
  maxPerPrincipal: 32,
  ttlMs: 3_600_000,
  maxResultBytes: 48 * 1024,
  maxCallBytes: 16 * 1024,
  pollIntervalMs: 500,
  leaseMs: 15_000,
};

/** How often a process checks its running tasks (cancelled elsewhere? lease to refresh?). */
const CHECK_MS = 1000;

/** The longest a task is kept, whatever its hold says. */
const MAX_TTL_MS = 86_400_000;

/** What a new task starts from. */
export interface NewTask {
  readonly tool: string;
  readonly principal: string;
  readonly args: Record<string, unknown>;
  readonly capabilities: Record<string, unknown>;
  readonly inputResponses?: Record<string, unknown>;
}

/** The tasks of every instance sharing one KV. */
export interface TaskEngine {
  readonly limits: TaskLimits;
  /** The body a tool's tasks run (the conformance fixtures); others use the engine's fallback. */
  register(tool: string, body: TaskBody): void;
  /** Whether `tool` has a body here (registered or from the fallback). */
  supports(tool: string): boolean;
  /**
   * Creates a task and starts its body in this process. The record is committed before this
   * resolves (a `tasks/get` for it then succeeds anywhere). `undefined` when the principal is
   * at its cap, or the call is too large to keep.
   */
  start(task: NewTask): Promise<TaskRecord | undefined>;
  /**
   * Creates a task for a call already running here (`running` settles it; `abort` stops it on
   * cancel), or for one that already ended in `step` (a new hold). `undefined` as for start.
   */
  adopt(
    task: NewTask,
    running: Promise<TaskStep> | TaskStep,
    abort?: AbortController,
  ): Promise<TaskRecord | undefined>;
  /** The principal's task (a held one is run once its hold is decided); -32602 when unknown. */
  get(id: string, principal: string): Promise<TaskRecord>;
  /** Delivers input; the last pending answer resumes the task. -32602 when unknown. */
  update(id: string, principal: string, inputResponses: Record<string, unknown>): Promise<void>;
  /** Cancels a live task (a terminal one is left as it is). -32602 when unknown. */
  cancel(id: string, principal: string): Promise<void>;
  /** Tasks running in this process right now. */
  readonly running: number;
  /** Stops this process's runs (their tasks fail: the instance stopped) and its timer. */
  close(): Promise<void>;
}

/** What the engine needs. */
export interface TaskEngineOptions {
  readonly kv: Deno.Kv;
  readonly limits?: Partial<TaskLimits>;
  /** The body of a tool without a registered one (Warden's registry tools), if any. */
  readonly fallback?: (tool: string) => TaskBody | undefined;
  /** Whether a hold is still waiting for an operator (open). */
  readonly holdOpen?: (id: string) => Promise<boolean>;
  readonly logger?: Logger;
  readonly now?: () => number;
}

const unknownTask = () => new ProtocolError(ProtocolErrorCode.InvalidParams, "Unknown task");

const jsonBytes = (value: unknown) => new TextEncoder().encode(JSON.stringify(value)).byteLength;

function errorOf(e: unknown): TaskError {
  const err = e as { code?: unknown; message?: unknown; data?: unknown };
  const code = typeof err?.code === "number" && Number.isSafeInteger(err.code)
    ? err.code
    : ProtocolErrorCode.InternalError;
  const message = typeof err?.message === "string" ? err.message.slice(0, 1000) : "Internal error";
  return { code, message, ...(err?.data !== undefined ? { data: err.data } : {}) };
}

/**
 * Creates the task engine over `kv`.
 *
 * @example
 * ```ts
 * import { createTaskEngine } from "./tasks.ts";
 * const kv = await Deno.openKv(":memory:");
 * const tasks = createTaskEngine({ kv });
 * tasks.register("echo", (run) =>
 *   Promise.resolve({ kind: "result", result: { content: [{ type: "text", text: "hi" }] } }));
 * const task = await tasks.start({ tool: "echo", principal: "alice", args: {}, capabilities: {} });
 * while ((await tasks.get(task!.id, "alice")).status === "working") {
 *   await new Promise((r) => setTimeout(r, 5));
 * }
 * if ((await tasks.get(task!.id, "alice")).status !== "completed") throw new Error("not done");
 * await tasks.close();
 * kv.close();
 * ```
 */
// Kept whole: its closures share the KV, the bodies, this process's runs and their timer; the
// record transitions (write, claim, settle) are only correct together.
export function createTaskEngine(options: TaskEngineOptions): TaskEngine {
  const kv = options.kv;
  const limits: TaskLimits = { ...DEFAULT_TASK_LIMITS, ...options.limits };
  const now = options.now ?? Date.now;
  const bodies = new Map<string, TaskBody>();
  /** Runs in this process: task id → its abort and claim token. */
  const running = new Map<string, { abort: AbortController; owner: string }>();
  let timer: ReturnType<typeof setInterval> | undefined;
  let closed = false;

  const bodyOf = (tool: string) => bodies.get(tool) ?? options.fallback?.(tool);
  const iso = (ms: number) => new Date(ms).toISOString();
  const expireIn = (r: TaskRecord) => Math.max(1000, r.expiresAtMs - now());
  const indexKey = (r: TaskRecord) =>
    taskByPrincipalKey(r.principal, Date.parse(r.createdAt), r.id);

  async function write(
    id: string,
    mutate: (r: TaskRecord) => TaskRecord | undefined,
  ): Promise<TaskRecord | undefined> {
    for (let attempt = 0; attempt < 16; attempt++) {
      const entry = await withKvRetry(() => kv.get<TaskRecord>(taskKey(id)));
      const current = entry.value;
      if (current === null) return undefined;
      const next = mutate(current);
      if (next === undefined) return current;
      const stamped = { ...next, lastUpdatedAt: iso(now()) };
      const res = await withKvRetry(() =>
        kv.atomic().check(entry).set(taskKey(id), stamped, { expireIn: expireIn(stamped) })
          .set(indexKey(stamped), TERMINAL.has(stamped.status), { expireIn: expireIn(stamped) })
          .commit()
      );
      if (res.ok) return stamped;
    }
    throw new Error(`task ${id}: too many concurrent updates`);
  }

  /** Applies a run's end to a live record (a terminal one stays as it is). */
  function applyStep(r: TaskRecord, step: TaskStep | { kind: "error"; error: TaskError }) {
    if (TERMINAL.has(r.status)) return undefined;
    const { lease: _l, inputRequests: _i, statusMessage: _m, ...rest } = r;
    switch (step.kind) {
      case "result": {
        const bytes = jsonBytes(step.result);
        const { resume: _r, ...done } = rest;
        if (bytes > limits.maxResultBytes) {
          return {
            ...done,
            status: "failed" as const,
            error: {
              code: ProtocolErrorCode.InternalError,
              message:
                `The call ran, but its result (${bytes} bytes) is larger than a task keeps ` +
                `(${limits.maxResultBytes} bytes); its vault entry has it`,
              ...(step.result._meta ? { data: { _meta: step.result._meta } } : {}),
            },
          };
        }
        return { ...done, status: "completed" as const, result: step.result };
      }
      case "input":
        return {
          ...rest,
          status: "input_required" as const,
          inputRequests: step.inputRequests,
          statusMessage: "waiting for the client's input (tasks/update)",
        };
      case "held": {
        const until = step.expiresAtMs !== undefined
          ? Math.min(
            Date.parse(r.createdAt) + MAX_TTL_MS,
            Math.max(r.expiresAtMs, step.expiresAtMs + 60_000),
          )
          : r.expiresAtMs;
        const asking = step.inputRequests !== undefined &&
          Object.keys(step.inputRequests).length > 0;
        return {
          ...rest,
          status: asking ? "input_required" as const : "working" as const,
          ...(asking ? { inputRequests: step.inputRequests } : {}),
          hold: step.hold,
          statusMessage: step.message,
          expiresAtMs: until,
          ttlMs: until - Date.parse(r.createdAt),
        };
      }
      case "error": {
        const { resume: _r, ...done } = rest;
        return { ...done, status: "failed" as const, error: step.error };
      }
    }
  }

  function ensureTimer() {
    if (timer !== undefined || closed) return;
    timer = setInterval(() => void refresh(), CHECK_MS);
  }

  /**
   * Every second: stops this process's runs cancelled elsewhere (or whose claim was lost), and
   * refreshes a lease once a third of it is used.
   */
  async function refresh() {
    if (running.size === 0) {
      clearInterval(timer);
      timer = undefined;
      return;
    }
    for (const [id, run] of running) {
      try {
        const r = (await withKvRetry(() => kv.get<TaskRecord>(taskKey(id)))).value;
        if (r === null || r.lease?.owner !== run.owner || TERMINAL.has(r.status)) {
          run.abort.abort();
          continue;
        }
        if (r.lease.untilMs - now() > (limits.leaseMs * 2) / 3) continue;
        const after = await write(
          id,
          (x) =>
            x.lease?.owner === run.owner && !TERMINAL.has(x.status)
              ? { ...x, lease: { owner: run.owner, untilMs: now() + limits.leaseMs } }
              : undefined,
        );
        if (after === undefined || after.lease?.owner !== run.owner) run.abort.abort();
      } catch (e) {
        options.logger?.warn("task lease refresh failed", { task: id, error: String(e) });
      }
    }
  }

  /** Settles a run's end on the record; a cancelled or lost claim leaves it as it is. */
  async function settle(
    id: string,
    owner: string,
    step: TaskStep | { kind: "error"; error: TaskError },
  ) {
    try {
      await write(id, (r) => r.lease?.owner === owner ? applyStep(r, step) : undefined);
    } catch (e) {
      options.logger?.error("task result could not be stored", { task: id, error: String(e) });
    }
  }

  /** Watches a running call for `id` under claim `owner` and stores how it ends. */
  function track(
    id: string,
    owner: string,
    work: Promise<TaskStep> | TaskStep,
    abort: AbortController,
  ) {
    running.set(id, { abort, owner });
    ensureTimer();
    Promise.resolve(work).then(
      (step) => settle(id, owner, step),
      (e) => settle(id, owner, { kind: "error", error: errorOf(e) }),
    ).finally(() => {
      if (running.get(id)?.owner === owner) running.delete(id);
    });
  }

  function runBody(r: TaskRecord, owner: string, holdId?: string, heldBy?: string) {
    const body = bodyOf(r.tool);
    const abort = new AbortController();
    const work = body === undefined
      ? Promise.reject(new Error(`no instance here can run a task of ${r.tool}`))
      : Promise.resolve().then(() =>
        body({
          taskId: r.id,
          args: r.resume?.args ?? {},
          principal: r.principal,
          capabilities: r.resume?.capabilities ?? {},
          inputResponses: r.resume?.inputResponses ?? {},
          ...(holdId !== undefined ? { holdId } : {}),
          ...(heldBy !== undefined ? { heldBy } : {}),
          signal: abort.signal,
        })
      );
    track(r.id, owner, work, abort);
  }

  /** Claims a live record for one run here; the claimed record, or undefined if another has it. */
  async function claim(
    id: string,
    when: (r: TaskRecord) => boolean,
    change: (r: TaskRecord) => Partial<TaskRecord> = () => ({}),
  ): Promise<{ record: TaskRecord; owner: string } | undefined> {
    const owner = crypto.randomUUID();
    const after = await write(id, (r) => {
      if (TERMINAL.has(r.status) || !when(r)) return undefined;
      if (r.lease !== undefined && r.lease.untilMs > now()) return undefined;
      return { ...r, ...change(r), lease: { owner, untilMs: now() + limits.leaseMs } };
    });
    return after?.lease?.owner === owner ? { record: after, owner } : undefined;
  }

  async function create(
    task: NewTask,
    init: (r: TaskRecord) => TaskRecord,
  ): Promise<TaskRecord | undefined> {
    if (closed) return undefined;
    const resume = {
      args: task.args,
      capabilities: task.capabilities,
      inputResponses: task.inputResponses ?? {},
    };
    if (jsonBytes(resume) > limits.maxCallBytes) return undefined;
    // At the cap, the oldest finished task makes room; when every kept task is live, none.
    let kept = 0;
    let evict: Deno.KvEntry<boolean> | undefined;
    await withKvRetry(async () => {
      kept = 0;
      evict = undefined;
      for await (
        const e of kv.list<boolean>({ prefix: taskByPrincipalPrefix(task.principal) })
      ) {
        kept++;
        if (evict === undefined && e.value === true) evict = e;
      }
    });
    if (kept >= limits.maxPerPrincipal && evict === undefined) return undefined;
    const at = now();
    const id = `task_${crypto.randomUUID().replaceAll("-", "")}`;
    const base: TaskRecord = {
      id,
      principal: task.principal,
      tool: task.tool,
      status: "working",
      createdAt: iso(at),
      lastUpdatedAt: iso(at),
      ttlMs: limits.ttlMs,
      expiresAtMs: at + limits.ttlMs,
      resume,
    };
    const record = init(base);
    const res = await withKvRetry(() => {
      const op = kv.atomic().check({ key: taskKey(id), versionstamp: null })
        .set(taskKey(id), record, { expireIn: expireIn(record) })
        .set(indexKey(record), TERMINAL.has(record.status), { expireIn: expireIn(record) });
      if (kept >= limits.maxPerPrincipal && evict !== undefined) {
        op.check(evict).delete(evict.key).delete(taskKey(String(evict.key[3])));
      }
      return op.commit();
    });
    return res.ok ? record : undefined;
  }

  async function owned(id: string, principal: string): Promise<TaskRecord> {
    if (typeof id !== "string" || id.length > 128) throw unknownTask();
    const got = (await withKvRetry(() => kv.get<TaskRecord>(taskKey(id)))).value;
    if (got === null || got.principal !== principal || got.expiresAtMs <= now()) {
      throw unknownTask();
    }
    return got;
  }

  return {
    limits,
    register(tool, body) {
      bodies.set(tool, body);
    },
    supports: (tool) => bodyOf(tool) !== undefined,
    async start(task) {
      const owner = crypto.randomUUID();
      const record = await create(task, (r) => ({
        ...r,
        lease: { owner, untilMs: now() + limits.leaseMs },
      }));
      if (record !== undefined) runBody(record, owner);
      return record;
    },
    async adopt(task, work, abort) {
      const owner = crypto.randomUUID();
      const ended = !(work instanceof Promise);
      const record = await create(
        task,
        (r) =>
          ended
            ? (applyStep(r, work) ?? r) as TaskRecord
            : { ...r, lease: { owner, untilMs: now() + limits.leaseMs } },
      );
      if (record !== undefined && !ended) {
        track(record.id, owner, work, abort ?? new AbortController());
      }
      return record;
    },
    async get(id, principal) {
      let r = await owned(id, principal);
      const waiting = r.status === "working" || r.status === "input_required";
      if (waiting && r.hold !== undefined && r.lease === undefined) {
        // Held: once the operator decided, the first instance to see it repeats the call under
        // the hold (the registry releases an approval once; a denial or expiry is answered).
        const open = options.holdOpen ? await options.holdOpen(r.hold) : true;
        if (!open) {
          const claimed = await claim(
            id,
            (x) =>
              x.hold === r.hold && x.lease === undefined &&
              (x.status === "working" || x.status === "input_required"),
            // Decided: whatever the client was still asked no longer matters.
            (x) => ({
              status: "working",
              statusMessage: `hold ${r.hold} decided; running`,
              inputRequests: undefined,
              ...(x.resume ? { resume: x.resume } : {}),
            }),
          );
          if (claimed) {
            runBody(claimed.record, claimed.owner, r.hold);
            return claimed.record;
          }
          r = await owned(id, principal);
        }
      }
      if (
        r.status === "working" && r.lease !== undefined && r.lease.untilMs <= now() &&
        !running.has(id)
      ) {
        // The instance running it stopped: the call may have run, so it is not run again.
        const lost = r.lease.owner;
        return await write(
          id,
          (x) =>
            x.lease?.owner === lost && !TERMINAL.has(x.status)
              ? applyStep(x, {
                kind: "error",
                error: {
                  code: ProtocolErrorCode.InternalError,
                  message: "The instance running this task stopped before it finished; " +
                    "the call is not repeated (it may have run: see the vault)",
                },
              })
              : undefined,
        ) ?? r;
      }
      return r;
    },
    async update(id, principal, inputResponses) {
      const r = await owned(id, principal);
      if (r.status !== "input_required") return;
      const owner = crypto.randomUUID();
      const after = await write(id, (x) => {
        if (x.status !== "input_required" || x.resume === undefined) return undefined;
        const pending = { ...x.inputRequests };
        const answered = { ...x.resume.inputResponses };
        let changed = false;
        for (const [key, value] of Object.entries(inputResponses)) {
          if (!(key in pending)) continue;
          delete pending[key];
          answered[key] = value;
          changed = true;
        }
        if (!changed) return undefined;
        const resume = { ...x.resume, inputResponses: answered };
        if (jsonBytes(resume) > limits.maxCallBytes) {
          throw new ProtocolError(
            ProtocolErrorCode.InvalidParams,
            `inputResponses: the answers are larger than a task keeps (${limits.maxCallBytes} bytes)`,
          );
        }
        if (Object.keys(pending).length > 0) return { ...x, inputRequests: pending, resume };
        const { inputRequests: _i, ...rest } = x;
        return {
          ...rest,
          status: "working",
          statusMessage: "input received; running",
          resume,
          lease: { owner, untilMs: now() + limits.leaseMs },
        };
      });
      if (after?.lease?.owner === owner) runBody(after, owner, undefined, after.hold);
    },
    async cancel(id, principal) {
      const r = await owned(id, principal);
      if (TERMINAL.has(r.status)) return;
      await write(id, (x) => {
        if (TERMINAL.has(x.status)) return undefined;
        const { resume: _r, lease: _l, inputRequests: _i, ...rest } = x;
        return { ...rest, status: "cancelled", statusMessage: "cancelled by the client" };
      });
      running.get(id)?.abort.abort();
    },
    get running() {
      return running.size;
    },
    async close() {
      closed = true;
      clearInterval(timer);
      timer = undefined;
      const stopping = [...running];
      running.clear();
      for (const [id, run] of stopping) {
        run.abort.abort();
        await settle(id, run.owner, {
          kind: "error",
          error: {
            code: ProtocolErrorCode.InternalError,
            message: "The instance running this task shut down before it finished",
          },
        });
      }
    },
  };
}

/** The task fields every answer about a task carries. */
function taskFields(r: TaskRecord, limits: TaskLimits) {
  return {
    taskId: r.id,
    status: r.status,
    ...(r.statusMessage !== undefined ? { statusMessage: r.statusMessage } : {}),
    createdAt: r.createdAt,
    lastUpdatedAt: r.lastUpdatedAt,
    ttlMs: r.ttlMs,
    ...(TERMINAL.has(r.status) ? {} : { pollIntervalMs: limits.pollIntervalMs }),
  };
}

/** The `tools/call` answer that hands the client a task (flat `Result & Task`). */
export function createTaskResult(r: TaskRecord, limits: TaskLimits): Record<string, unknown> {
  return { resultType: "task", ...taskFields(r, limits) };
}

/** The `tasks/get` answer: the task, with its result, error or pending input inlined. */
export function detailedTask(r: TaskRecord, limits: TaskLimits): Record<string, unknown> {
  return {
    ...taskFields(r, limits),
    ...(r.status === "completed" && r.result ? { result: r.result } : {}),
    ...(r.status === "failed" && r.error ? { error: r.error } : {}),
    ...(r.status === "input_required" && r.inputRequests ? { inputRequests: r.inputRequests } : {}),
  };
}

/** The client capabilities a 2026-07-28 request declared (empty on a 2025 session). */
export function declaredCapabilities(ctx: ServerContext): Record<string, unknown> {
  const env = ctx.mcpReq.envelope as Record<string, unknown> | undefined;
  const caps = env?.[CLIENT_CAPABILITIES_META_KEY];
  return caps !== null && typeof caps === "object" && !Array.isArray(caps)
    ? caps as Record<string, unknown>
    : {};
}

/** Whether this 2026-07-28 request declared the tasks extension. */
export function declaresTasks(ctx: ServerContext): boolean {
  const ext = declaredCapabilities(ctx).extensions;
  return ext !== null && typeof ext === "object" && TASKS_EXTENSION in ext;
}

/** The -32021 answer to a request that needs the extension but did not declare it. */
export function tasksRequired(): MissingRequiredClientCapabilityError {
  return new MissingRequiredClientCapabilityError({
    requiredCapabilities: { extensions: { [TASKS_EXTENSION]: {} } } as never,
  }, `This request needs the client capability extensions["${TASKS_EXTENSION}"]`);
}

const TaskIdParams = z.looseObject({ taskId: z.string().min(1).max(128) });
const UpdateParams = z.looseObject({
  taskId: z.string().min(1).max(128),
  inputResponses: z.record(z.string().max(256), z.unknown()).optional(),
});

/**
 * Registers `tasks/get`, `tasks/update` and `tasks/cancel` on a 2026-07-28 server; each is
 * refused with -32021 unless the request declares the extension, and serves only the caller's
 * own tasks.
 */
export function registerTaskHandlers(
  server: McpServer,
  engine: TaskEngine,
  caller: (ctx: ServerContext) => string,
): void {
  const low = server.server as unknown as {
    setRequestHandler(
      method: string,
      schemas: { params: z.ZodType },
      handler: (params: never, ctx: ServerContext) => Promise<Record<string, unknown>>,
    ): void;
  };
  low.setRequestHandler(
    "tasks/get",
    { params: TaskIdParams },
    async (params: z.infer<typeof TaskIdParams>, ctx) => {
      if (!declaresTasks(ctx)) throw tasksRequired();
      return detailedTask(await engine.get(params.taskId, caller(ctx)), engine.limits);
    },
  );
  low.setRequestHandler(
    "tasks/update",
    { params: UpdateParams },
    async (params: z.infer<typeof UpdateParams>, ctx) => {
      if (!declaresTasks(ctx)) throw tasksRequired();
      // The SDK lifts a 2026-07-28 request's inputResponses out of params into the context.
      const responses = params.inputResponses ??
        (ctx.mcpReq.inputResponses as Record<string, unknown> | undefined) ?? {};
      if (Object.keys(responses).length > 64) {
        throw new ProtocolError(ProtocolErrorCode.InvalidParams, "inputResponses: over 64 keys");
      }
      await engine.update(params.taskId, caller(ctx), responses);
      return {};
    },
  );
  low.setRequestHandler(
    "tasks/cancel",
    { params: TaskIdParams },
    async (params: z.infer<typeof TaskIdParams>, ctx) => {
      if (!declaresTasks(ctx)) throw tasksRequired();
      await engine.cancel(params.taskId, caller(ctx));
      return {};
    },
  );
}

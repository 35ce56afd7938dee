/**
 * Where verified executions are found again: by id and by case, per
 * principal, each pointing at the vault entry that records it and holding
 * its signed receipt. The vault is the record; this is only its index.
 */
import { executionByCaseKey, executionByCasePrefix, executionKey } from "./keys.ts";

/** One indexed execution. */
export interface ExecutionRecord {
  readonly execution_id: string;
  readonly vault_index: number;
  /** The signed receipt note. */
  readonly receipt: string;
  readonly case_id?: string;
}

/** Repository of execution records. */
export interface ExecutionStore {
  put(principal: string, record: ExecutionRecord): Promise<void>;
  get(principal: string, id: string): Promise<ExecutionRecord | null>;
  /** Up to `limit` of the principal's executions in `caseId`. */
  byCase(principal: string, caseId: string, limit?: number): Promise<ExecutionRecord[]>;
}

/**
 * Creates the store over `kv`.
 *
 * @example
 * ```ts
 * const store = createExecutionStore(await Deno.openKv(":memory:"));
 * await store.put("alice", { execution_id: "e1", vault_index: 4, receipt: "…" });
 * (await store.get("alice", "e1"))?.vault_index; // 4
 * ```
 */
export function createExecutionStore(kv: Deno.Kv): ExecutionStore {
  return {
    async put(principal, record) {
      const op = kv.atomic().set(executionKey(principal, record.execution_id), record);
      if (record.case_id !== undefined) {
        op.set(executionByCaseKey(principal, record.case_id, record.execution_id), null);
      }
      const res = await op.commit();
      if (!res.ok) throw new Error(`Cannot index execution ${record.execution_id}`);
    },
    async get(principal, id) {
      return (await kv.get<ExecutionRecord>(executionKey(principal, id))).value;
    },
    async byCase(principal, caseId, limit = 100) {
      const out: ExecutionRecord[] = [];
      for await (
        const e of kv.list({ prefix: executionByCasePrefix(principal, caseId) }, { limit })
      ) {
        const id = e.key[e.key.length - 1] as string;
        const record = await this.get(principal, id);
        if (record) out.push(record);
      }
      return out;
    },
  };
}

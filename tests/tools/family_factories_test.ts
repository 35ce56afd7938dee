/**
 * Each tool family is a factory given exactly the services it uses (issue 8 §1), checked when
 * the tools are made: a missing service is a TypeError naming it, not a fault at a first call.
 */
import assert from "node:assert/strict";
import {
  type BusToolServices,
  type ContextToolServices,
  createBusTools,
  createContextTools,
  createExecutionTools,
  createFileTools,
  createMemoryTools,
  createMetabolicTools,
  type ExecutionToolServices,
  type FileToolServices,
  type MemoryToolServices,
  type MetabolicToolServices,
} from "../../src/tools/mod.ts";
import {
  createBusService,
  createContextService,
  createFileService,
  createMemoryService,
} from "../../src/services/mod.ts";

/** Asserts `make` refuses `services` with exactly `message`. */
function refuses(make: () => unknown, message: string): void {
  assert.throws(make, (e: Error) => e instanceof TypeError && e.message === message);
}

Deno.test("the state-service families name their missing service when the tools are made", () => {
  refuses(
    () => createMemoryTools({} as MemoryToolServices),
    "Cannot create the memory tools: missing memory",
  );
  refuses(
    () => createFileTools({} as FileToolServices),
    "Cannot create the file tools: missing fileStore",
  );
  refuses(
    () => createContextTools({} as ContextToolServices),
    "Cannot create the context tools: missing context",
  );
  refuses(() => createBusTools({} as BusToolServices), "Cannot create the bus tools: missing bus");
  refuses(
    () => createMemoryTools(undefined as unknown as MemoryToolServices),
    "Cannot create the memory tools: missing memory",
  );
});

Deno.test("the state-service families, given their service, make their tools in SPEC order", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const names = (tools: readonly { name: string }[]) => tools.map((t) => t.name);
    assert.deepEqual(names(createMemoryTools({ memory: createMemoryService(kv) })), [
      "memory_store",
      "memory_retrieve",
      "memory_search",
      "memory_expire",
    ]);
    assert.deepEqual(names(createFileTools({ fileStore: createFileService(kv) })), [
      "file_read",
      "file_write",
      "file_list",
      "file_versions",
      "file_lock",
      "file_unlock",
    ]);
    assert.deepEqual(names(createContextTools({ context: createContextService(kv) })), [
      "context_add",
      "context_search",
      "context_graph",
      "context_delete",
    ]);
    assert.deepEqual(names(createBusTools({ bus: createBusService(kv) })), [
      "bus_publish",
      "bus_subscribe",
    ]);
  } finally {
    kv.close();
  }
});

Deno.test("createMetabolicTools() names each missing service, nested calls included", () => {
  refuses(
    () => createMetabolicTools({} as MetabolicToolServices),
    "Cannot create the metabolic tools: missing sessions, evidence, ledger, context, policy, " +
      "governance, tokens, shell, callTool, judgeTool",
  );
  // Given everything but the registry's nested calls, it names just those.
  const some = { sessions: {}, evidence: {}, ledger: {}, context: {}, policy: {}, governance: {} };
  refuses(
    () => createMetabolicTools({ ...some, tokens: {}, shell: {} } as MetabolicToolServices),
    "Cannot create the metabolic tools: missing callTool, judgeTool",
  );
});

Deno.test("createExecutionTools() names secure_execute's missing services, then the chain's", () => {
  refuses(
    () => createExecutionTools({} as ExecutionToolServices),
    "Cannot create the execution tools: missing code, chat, policy, ledger, receipts, executions",
  );
  // secure_execute's services alone: the evidence-chain tools it makes too still lack theirs.
  const own = { code: {}, chat: {}, policy: {}, ledger: {}, receipts: {}, executions: {} };
  refuses(
    () => createExecutionTools(own as ExecutionToolServices),
    "Cannot create the evidence-chain tools: missing governance, shell",
  );
});

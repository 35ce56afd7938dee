/**
 * The built-in tool sets: MCP tool adapters over the domain folders, each a
 * definition (src/calls/'s contract) whose handler is a thin call into domain
 * code. The call path they run on is src/calls/.
 * @module
 */
export { utilityTools } from "./utilities.ts";
export { CHAIN, createMetabolicTools, type MetabolicToolServices } from "./metabolic.ts";
export { createEvidenceTools, type EvidenceToolServices } from "./evidence.ts";
export { createMemoryTools, type MemoryToolServices } from "./memory.ts";
export { createFileTools, type FileToolServices } from "./files.ts";
export {
  createExecutionTools,
  type ExecutionToolServices,
  type SecureExecuteServices,
} from "./execute.ts";
export { createEvidenceChainTools, type EvidenceChainServices } from "./evidence_chain.ts";
export { type ContextToolServices, createContextTools } from "./context.ts";
export { type BusToolServices, createBusTools } from "./bus.ts";
export { conformanceTools, FIXTURE_PNG_BASE64, FIXTURE_WAV_BASE64 } from "./conformance.ts";

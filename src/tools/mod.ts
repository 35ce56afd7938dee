/**
 * The built-in tool sets: MCP tool adapters over the domain folders, each a
 * definition (src/calls/'s contract) whose handler is a thin call into domain
 * code. The call path they run on is src/calls/.
 * @module
 */
export { utilityTools } from "./utilities.ts";
export { CHAIN, metabolicTools } from "./metabolic.ts";
export { createEvidenceTools, type EvidenceToolServices } from "./evidence.ts";
export { createMemoryTools, type MemoryToolServices } from "./memory.ts";
export { createFileTools, type FileToolServices } from "./files.ts";
export { createExecutionTools } from "./execute.ts";
export { createEvidenceChainTools, type EvidenceChainServices } from "./evidence_chain.ts";
export { type ContextToolServices, createContextTools } from "./context.ts";
export { type BusToolServices, createBusTools } from "./bus.ts";
export { conformanceTools, FIXTURE_PNG_BASE64, FIXTURE_WAV_BASE64 } from "./conformance.ts";
import { createEvidenceTools, type EvidenceToolServices } from "./evidence.ts";
import { metabolicTools } from "./metabolic.ts";
import type { ToolDefinition } from "../calls/mod.ts";

/** The 13 canonical tools (arifOS API names): 8 metabolic, 5 evidence (given their services). */
export function createCanonicalTools(services: EvidenceToolServices): ToolDefinition[] {
  return [...metabolicTools, ...createEvidenceTools(services)];
}

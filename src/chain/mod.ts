/**
 * The metabolic chain's domain, free of MCP: impact assessment, critique and
 * the session verdict apex_judge gives. The tools in `src/tools/metabolic.ts`
 * are thin adapters over this folder.
 * @module
 */
export { assessImpact, type Impact, needsOperator, sessionImpact, worstImpact } from "./impact.ts";
export { contradicts, critique, type CritiquedClaim, type CritiqueFindings } from "./critique.ts";
export {
  CHAIN,
  type ChainVerdict,
  judgeSession,
  REQUIRED_STEPS,
  type SessionJudgement,
  VERDICT_ORDER,
  worse,
} from "./verdict.ts";
export { canonicalEvidenceId, type EvidenceRef, parseEvidenceRef } from "./evidence_ids.ts";
export { createEvidenceResolver, type EvidenceResolver } from "./evidence_resolver.ts";

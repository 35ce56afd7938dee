/**
 * Warden's own resources and prompt, on every session's server:
 * `arifos://aaa/schemas` (JSON Schemas of the envelope and every tool),
 * `arifos://aaa/full-context-pack` (policy, floors, tools, verdict rules),
 * `warden://vault/checkpoint` (the latest signed checkpoint), and the prompt
 * `arifos.prompt.aaa_chain` (how to walk 000 → 999).
 */
import type { McpServer } from "@modelcontextprotocol/server";
import { z } from "zod";
import {
  canonicalPolicy,
  FLOOR_IDS,
  FLOOR_NAMES,
  floorMode,
  type Governance,
} from "../governance/mod.ts";
import { CHAIN } from "../tools/mod.ts";
import { ENVELOPE_VERSION, type ToolRegistry } from "../calls/mod.ts";
import type { Ledger } from "../vault/mod.ts";
import type { ServerExtension } from "./server.ts";

const VERDICT_RULES = [
  "Any hard failure that is not a hold → VOID (refused, nothing executed).",
  "Any hold condition (destructive without approval, kill switch, tool marked hold, changed definition) → 888_HOLD (an operator must sign).",
  "Any retryable failure (schema errors, ungrounded claims, rate limit) → SABAR (fix and retry; retry-after given).",
  "Any soft warning (PII redacted, humility, output doubts) → PARTIAL (executed, with warnings).",
  "Otherwise → SEAL.",
];

const CHAIN_PROMPT = (intent: string) =>
  `Walk this action through Warden's governance chain, one tool at a time, following each response's next_tool:

000 anchor_session {query: "${intent}"} → keep the returned session_id.
333 reason_mind {session_id, query: <your claim>, grounding: [<evidence ids>]} — cite vault indices or the evidence_id from fetch_content; ungrounded claims come back SABAR.
444 recall_memory {session_id, current_thought_vector: <what you need>}.
555 simulate_heart {session_id, query: <the action>, stakeholders: [...]}.
666 critique_thought {session_id, plan: {...}} — fix contradictions and overclaims it reports.
777 eureka_forge {session_id, action: {tool, arguments}} — the action runs through every floor.
888 apex_judge {session_id} → governance_token when the session is SEAL or PARTIAL.
999 seal_vault {session_id, summary, governance_token} → vault index, inclusion proof, checkpoint.

Verdicts: SEAL continue; PARTIAL continue with care; SABAR fix and retry; VOID stop; 888_HOLD wait for an operator's signature, then repeat the call with _meta {"warden/hold": <hold id>}.`;

/** Builds the extension over the session-independent services. */
export function wardenExtension(deps: {
  registry: ToolRegistry;
  governance: Governance;
  ledger: Ledger;
}): ServerExtension {
  const { registry, governance, ledger } = deps;
  // Both documents list only the tools the reader may call.
  const schemas = (principal: string) => ({
    envelope_version: ENVELOPE_VERSION,
    tools: Object.fromEntries(
      registry.list(principal).map((
        t,
      ) => [t.name, { input: t.inputSchema, output: t.outputSchema }]),
    ),
  });
  const contextPack = (principal: string) => ({
    policy_sha256: governance.policyHash,
    policy: JSON.parse(canonicalPolicy(governance.policy)),
    floors: FLOOR_IDS.map((id) => ({
      id,
      name: FLOOR_NAMES[id],
      mode: floorMode(governance.policy, id),
    })),
    verdict_rules: VERDICT_RULES,
    tools: registry.list(principal).map((t) => ({
      name: t.name,
      title: t.title,
      description: t.description,
    })),
    chain: CHAIN,
  });
  return (server: McpServer, caller) => {
    server.registerResource(
      "aaa-schemas",
      "arifos://aaa/schemas",
      {
        title: "Envelope and tool schemas",
        description: "JSON Schemas of the response envelope and of every tool's input and output",
        mimeType: "application/json",
      },
      (uri, ctx) => ({
        contents: [{
          uri: uri.href,
          mimeType: "application/json",
          text: JSON.stringify(schemas(caller(ctx))),
        }],
      }),
    );
    server.registerResource(
      "aaa-full-context-pack",
      "arifos://aaa/full-context-pack",
      {
        title: "Full context pack",
        description:
          "Active policy and its hash, floors and modes, tools, verdict rules, the 000→999 chain",
        mimeType: "application/json",
      },
      (uri, ctx) => ({
        contents: [{
          uri: uri.href,
          mimeType: "application/json",
          text: JSON.stringify(contextPack(caller(ctx))),
        }],
      }),
    );
    server.registerResource("vault-checkpoint", "warden://vault/checkpoint", {
      title: "Latest vault checkpoint",
      description: "The latest signed checkpoint of the vault (C2SP signed note)",
      mimeType: "text/plain",
    }, async (uri) => ({
      contents: [{
        uri: uri.href,
        mimeType: "text/plain",
        text: (await ledger.latestCheckpoint()) ?? "no checkpoint yet: the vault is empty\n",
      }],
    }));
    server.registerPrompt("arifos.prompt.aaa_chain", {
      title: "Walk the 000→999 chain",
      description: "How to take an action through Warden's governance chain, step by step",
      argsSchema: z.object({ intent: z.string().describe("What you intend to do").optional() }),
    }, ({ intent }) => ({
      messages: [{
        role: "user",
        content: { type: "text", text: CHAIN_PROMPT(intent ?? "<your intent>") },
      }],
    }));
  };
}

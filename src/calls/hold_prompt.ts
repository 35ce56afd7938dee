/**
 * The hold prompt on the 2025 protocol: when a call is held and the client
 * can elicit, the human behind it is asked whether they want it to run. The
 * answer is recorded; only an operator's signature releases the call. (The
 * 2026-07-28 `input_required` round is the MCP adapter's, in src/mcp/.)
 *
 * @module
 */
import type { OnHold } from "../governance/mod.ts";
import type { ClientBridge } from "./tool.ts";

/** The elicitation text for a hold: the tool, the hold id, the reasons and what to do. */
export function holdMessage(
  hold: { id: string; tool: string; reasons: readonly string[] },
): string {
  return `Warden is holding a call to "${hold.tool}" for operator approval (hold ${hold.id}). ` +
    `Reasons: ${
      hold.reasons.join("; ")
    }. Confirm that you want it to run; an operator must still ` +
    `sign the approval (warden approve ${hold.id}). Declining denies it.`;
}

/**
 * The `onHold` hook for a call from `client`, or undefined when there is no
 * client or it cannot elicit.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { elicitHold } from "./hold_prompt.ts";
 * assert.equal(elicitHold(undefined), undefined); // REST and stdio: nobody to ask
 * ```
 */
export function elicitHold(client: ClientBridge | undefined): OnHold | undefined {
  if (!client || !("elicitation" in client.capabilities)) return undefined;
  // The human is asked where the client can ask; an operator's signature still releases the call.
  return async (hold) => {
    const answer = await client.request("elicitation/create", {
      message: holdMessage(hold),
      requestedSchema: {
        type: "object",
        properties: {
          confirm: { type: "boolean", title: "I want this call to run", default: false },
        },
        required: ["confirm"],
      },
    });
    const confirmed = (answer.content as { confirm?: boolean } | undefined)?.confirm === true;
    return answer.action === "accept" && confirmed ? "accept" : String(answer.action ?? "decline");
  };
}

/**
 * An operator's signed decision on a hold, applied and sealed: the one
 * implementation behind `POST /holds/:id/approve|deny` (`warden approve`) and
 * the dashboard's decide form.
 *
 * @module
 */
import { HoldError, type HoldRecord } from "./holds.ts";
import type { Governance } from "./pipeline.ts";
import { redactText } from "./pii.ts";
import { boundText } from "./sealable.ts";

/** Text a caller sent (an operator name, a hold id, a message quoting them) as the vault keeps it. */
function retained(text: string, max: number): string {
  return boundText(redactText(text).text, max);
}

/**
 * Applies one operator's signed decision on a hold and seals it (or the
 * refusal) into the vault: what POST /holds/:id/approve|deny (`warden
 * approve`) and the dashboard both do. Throws HoldError when refused.
 */
export async function decideHold(
  governance: Governance,
  id: string,
  input: { decision: "approve" | "deny"; operator: string; signature: string },
): Promise<HoldRecord> {
  try {
    const hold = await governance.holds.decide(id, {
      decision: input.decision,
      operator: input.operator,
      signature: input.signature,
      operators: governance.policy.operators,
    });
    await governance.record({
      type: input.decision === "approve" ? "hold_approved" : "hold_denied",
      hold_id: id,
      operator: input.operator,
      status: hold.status,
      digest: hold.digest,
    });
    return hold;
  } catch (e) {
    if (e instanceof HoldError) {
      await governance.record({
        type: "hold_decision_refused",
        // A refused decision's fields are whatever the caller sent (an operator name can be a
        // pasted key): they are redacted with F6's detectors and bounded before sealing.
        hold_id: retained(id, 64),
        operator: retained(input.operator, 64),
        decision: input.decision,
        reason: retained(e.message, 500),
      });
    }
    throw e;
  }
}

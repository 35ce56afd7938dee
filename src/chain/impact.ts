/**
 * Impact assessment of an intended action (simulate_heart, 555): reversibility,
 * affected data and blast radius, by deterministic rules.
 * @module
 */

const IRREVERSIBLE =
  /\b(delete|drop|truncate|destroy|wipe|erase|purge|rm\s+-rf|format|overwrite|revoke|transfer|pay|send money|shutdown|terminate|deploy to prod\w*)\b/i;
const WRITE =
  /\b(create|update|write|insert|modify|change|rename|move|upload|post|publish|send|deploy|install)\b/i;
const WIDE = /\b(all|every|entire|whole|production|prod|global|everyone|\*)\b/i;
const AFFECTED =
  /\b(users?|customers?|accounts?|files?|records?|database|tables?|payments?|emails?|servers?|repos?(?:itory)?)\b/gi;

/** What simulate_heart found. */
export interface Impact {
  readonly reversibility: "irreversible" | "reversible" | "read_only";
  readonly blast_radius: "high" | "medium" | "low";
  readonly affected: string[];
  readonly stakeholders: { name: string; impact: string }[];
  readonly recommendation: string;
}

/**
 * Deterministic impact assessment.
 *
 * @example
 * ```ts
 * import { assessImpact } from "./impact.ts";
 * assessImpact("delete all customer records", []).reversibility; // "irreversible"
 * ```
 */
export function assessImpact(query: string, stakeholders: readonly string[]): Impact {
  const reversibility = IRREVERSIBLE.test(query)
    ? "irreversible"
    : WRITE.test(query)
    ? "reversible"
    : "read_only";
  const wide = WIDE.test(query);
  const score = (reversibility === "irreversible" ? 2 : reversibility === "reversible" ? 1 : 0) +
    (wide ? 2 : 0) + Math.min(2, Math.floor(stakeholders.length / 3));
  const blast = score >= 4 ? "high" : score >= 2 ? "medium" : "low";
  const affected = [...new Set((query.match(AFFECTED) ?? []).map((w) => w.toLowerCase()))];
  return {
    reversibility,
    blast_radius: blast,
    affected,
    stakeholders: stakeholders.map((name) => ({
      name,
      impact: reversibility === "irreversible"
        ? "high"
        : reversibility === "reversible"
        ? "medium"
        : "low",
    })),
    recommendation: needsOperator({ reversibility, blast_radius: blast })
      ? "Require an operator hold and a tested rollback before acting."
      : blast === "medium"
      ? "Proceed with a reversible plan and record evidence."
      : "Low impact; proceed.",
  };
}

/** An irreversible action or a high blast radius needs an operator's approval before sealing. */
export function needsOperator(
  impact: { readonly reversibility?: unknown; readonly blast_radius?: unknown },
): boolean {
  return impact.reversibility === "irreversible" || impact.blast_radius === "high";
}

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

const REVERSIBILITY_RANK = { read_only: 0, reversible: 1, irreversible: 2 } as const;
const BLAST_RANK = { low: 0, medium: 1, high: 2 } as const;

/**
 * The worse of two assessments, dimension by dimension (reversibility, blast radius; affected
 * data and stakeholders joined): what a session keeps when it is simulated again, so a second,
 * milder description of the action cannot wash out what the first found.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { assessImpact, needsOperator, worstImpact } from "./impact.ts";
 * const kept = worstImpact(assessImpact("drop every table", []), assessImpact("read a file", []));
 * assert.ok(needsOperator(kept));
 * ```
 */
export function worstImpact(a: Impact, b: Impact): Impact {
  const reversibility = REVERSIBILITY_RANK[a.reversibility] >= REVERSIBILITY_RANK[b.reversibility]
    ? a.reversibility
    : b.reversibility;
  const blast = BLAST_RANK[a.blast_radius] >= BLAST_RANK[b.blast_radius]
    ? a.blast_radius
    : b.blast_radius;
  const names = new Set<string>();
  const stakeholders = [...a.stakeholders, ...b.stakeholders].filter((s) =>
    !names.has(s.name) && names.add(s.name)
  );
  const worse = reversibility === a.reversibility && blast === a.blast_radius ? a : b;
  return {
    reversibility,
    blast_radius: blast,
    affected: [...new Set([...a.affected, ...b.affected])],
    stakeholders,
    recommendation: needsOperator({ reversibility, blast_radius: blast })
      ? "Require an operator hold and a tested rollback before acting."
      : worse.recommendation,
  };
}

/**
 * What a governed session's impact stands at: the worst of what simulate_heart found (kept
 * worst-first, see {@link worstImpact}) and of the session's own anchored intent — so a
 * session anchored for an irreversible action cannot pass by simulating a harmless one.
 * Undefined when nothing was simulated (the judge then reports the missing step).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { assessImpact, sessionImpact } from "./impact.ts";
 * const simulated = assessImpact("read the report", []);
 * const s = sessionImpact({ intent: "wipe the production database", notes: { impact: simulated } });
 * assert.equal(s?.reversibility, "irreversible");
 * assert.equal(s?.source, "intent");
 * ```
 */
export function sessionImpact(
  session: { readonly intent?: string; readonly notes: Readonly<Record<string, unknown>> },
): (Impact & { source: "simulation" | "intent" }) | undefined {
  const simulated = session.notes.impact as Impact | undefined;
  if (!simulated) return undefined;
  const intent = session.intent !== undefined ? assessImpact(session.intent, []) : undefined;
  if (!intent) return { ...simulated, source: "simulation" };
  const worst = worstImpact(simulated, intent);
  const fromIntent = needsOperator(worst) && !needsOperator(simulated);
  return { ...worst, source: fromIntent ? "intent" : "simulation" };
}

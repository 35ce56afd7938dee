/**
 * Governance over HTTP: dry-run judgement (`POST /judge`) and the holds an
 * operator releases with a signature (`GET /holds`, `POST /holds/:id/approve`,
 * `POST /holds/:id/deny`).
 */
import { Hono } from "hono";
import { z } from "zod";
import {
  decideHold,
  type FloorResult,
  type Governance,
  HoldError,
  type HoldRecord,
  type Telemetry,
  type Verdict,
} from "../governance/mod.ts";
import type { ToolRegistry } from "../calls/mod.ts";
import { holdStatus, HttpError } from "./errors.ts";

type Env = { Variables: { principal: string } };

const JudgeCall = z.object({
  tool: z.string().min(1).max(128),
  arguments: z.record(z.string(), z.unknown()).optional(),
}).strict();
const JudgeText = z.object({
  query: z.string().max(100_000),
  response: z.string().max(1_000_000),
}).strict();
const Decision = z.object({
  operator: z.string().min(1).max(64),
  signature: z.string().min(1).max(200),
}).strict();

function judgement(j: { verdict: Verdict; floors: FloorResult[]; telemetry: Telemetry }) {
  return {
    verdict: j.verdict.verdict,
    failed: j.verdict.failed,
    reasons: j.verdict.reasons,
    ...(j.verdict.fixes ? { fixes: j.verdict.fixes } : {}),
    ...(j.verdict.retryAfterS !== undefined ? { retry_after_s: j.verdict.retryAfterS } : {}),
    floors: j.floors.map((f) => ({
      id: f.id,
      name: f.name,
      score: f.score,
      pass: f.pass,
      reason: f.reason,
      ...(f.action ? { action: f.action } : {}),
    })),
    telemetry: j.telemetry,
    executed: false,
  };
}

/** The public view of a hold (everything in the record is safe to show). */
export function holdView(hold: HoldRecord) {
  return {
    id: hold.id,
    tool: hold.tool,
    principal: hold.principal,
    session: hold.session,
    digest: hold.digest,
    reasons: hold.reasons,
    status: hold.status,
    created_at: hold.createdAt,
    expires_at: new Date(hold.expiresAtMs).toISOString(),
    required_signers: hold.requiredSigners,
    approvals: hold.approvals,
    ...(hold.human ? { human: hold.human } : {}),
    // What the operator approves: the (redacted) arguments. With nothing
    // redacted, sha256 of canonical {tool, arguments, principal} is `digest`.
    ...(hold.arguments !== undefined ? { arguments: hold.arguments } : {}),
    ...(hold.argumentsRedacted !== undefined ? { arguments_redacted: hold.argumentsRedacted } : {}),
    ...(hold.argumentsOmitted !== undefined ? { arguments_omitted: hold.argumentsOmitted } : {}),
  };
}

/** Routes for judgement and holds; `body` reads a bounded JSON body. */
export function createGovernanceRoutes(deps: {
  governance: Governance;
  registry: ToolRegistry;
  body: (req: Request) => Promise<unknown>;
}): Hono<Env> {
  const app = new Hono<Env>();
  const { governance } = deps;

  app.post("/judge", async (c) => {
    const raw = await deps.body(c.req.raw);
    const asCall = JudgeCall.safeParse(raw);
    if (asCall.success) {
      const { request } = deps.registry.facts(asCall.data.tool, asCall.data.arguments ?? {}, {
        principal: c.get("principal"),
        transport: "rest",
      });
      return c.json({ tool: asCall.data.tool, ...judgement(await governance.judge(request)) });
    }
    const asText = JudgeText.safeParse(raw);
    if (asText.success) {
      return c.json(
        judgement(governance.judgeText({ ...asText.data, principal: c.get("principal") })),
      );
    }
    throw new HttpError(
      400,
      'Bad Request: expected {"tool": string, "arguments"?: object} or {"query": string, "response": string}',
    );
  });

  app.get("/holds", async (c) => {
    const holds = await governance.holds.listOpen();
    return c.json({ holds: holds.map(holdView) });
  });

  app.get("/holds/:id", async (c) => {
    const hold = await governance.holds.get(c.req.param("id"));
    if (!hold) throw new HttpError(404, `Not Found: no hold ${c.req.param("id")}`);
    return c.json(holdView(hold));
  });

  for (const decision of ["approve", "deny"] as const) {
    app.post(`/holds/:id/${decision}`, async (c) => {
      const parsed = Decision.safeParse(await deps.body(c.req.raw));
      if (!parsed.success) {
        throw new HttpError(
          400,
          'Bad Request: expected {"operator": string, "signature": base64 string}',
        );
      }
      const id = c.req.param("id");
      try {
        const hold = await decideHold(governance, id, { decision, ...parsed.data });
        return c.json(holdView(hold));
      } catch (e) {
        if (e instanceof HoldError) throw new HttpError(holdStatus(e.code), e.message);
        throw e;
      }
    });
  }

  return app;
}

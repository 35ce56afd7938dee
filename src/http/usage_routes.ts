/**
 * GET /api/usage: usage rows by tool, principal, upstream or session. A principal reads its own;
 * loopback callers and the `metrics` role read everyone's.
 * @module
 */
import { Hono } from "hono";
import { z } from "zod";
import { type Governance, rolesFor } from "../governance/mod.ts";
import { currentRequest } from "../identity/mod.ts";
import { type Accounting, isLoopbackIp } from "../usage/mod.ts";
import { HttpError } from "./errors.ts";

type Env = { Variables: { principal: string } };

/** A time as epoch milliseconds or an ISO 8601 date/time. */
const Instant = z.string().max(40).transform((v, ctx) => {
  const ms = /^\d{1,15}$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(ms)) {
    ctx.addIssue({ code: "custom", message: "expected epoch milliseconds or an ISO 8601 time" });
    return z.NEVER;
  }
  return ms;
});

const UsageQuery = z.object({
  principal: z.string().min(1).max(256).optional(),
  from: Instant.optional(),
  to: Instant.optional(),
  group_by: z.enum(["tool", "principal", "upstream", "session"]).default("tool"),
  /** One session's rows, by tool (they live as long as the session: no time range). */
  session: z.string().min(1).max(256).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
}).strict();

/** What the usage route reads. */
export interface UsageRoutesDeps {
  readonly governance: Governance;
  /** Absent: /api/usage answers 404. */
  readonly accounting?: Accounting;
}

/** The /api/usage route (mounted at `/` by the HTTP app, behind its auth middleware). */
export function createUsageRoutes(d: UsageRoutesDeps): Hono<Env> {
  const app = new Hono<Env>();
  // A principal reads its own usage; loopback callers and the `metrics` role read everyone's.
  app.get("/api/usage", async (c) => {
    const accounting = d.accounting;
    if (!accounting) throw new HttpError(404, "Not Found");
    const q = UsageQuery.safeParse(c.req.query());
    if (!q.success) {
      throw new HttpError(
        400,
        `Bad Request: ${
          q.error.issues.map((i) => `${i.path.join(".") || "(query)"}: ${i.message}`).join("; ")
        }`,
      );
    }
    const ip = currentRequest()?.clientIp;
    const principal = c.get("principal");
    const all = (ip !== undefined && isLoopbackIp(ip)) ||
      rolesFor(d.governance.policy, principal).includes("metrics");
    if (!all && q.data.principal !== principal) {
      throw new HttpError(
        403,
        `Forbidden: pass principal=${principal} (your own), or use the "metrics" role`,
      );
    }
    const toMs = q.data.to ?? Date.now();
    const fromMs = q.data.from ?? toMs - 86_400_000;
    if (fromMs > toMs) throw new HttpError(400, "Bad Request: from is after to");
    await accounting.flush();
    if (q.data.session !== undefined || q.data.group_by === "session") {
      // Session rows: one session's by tool, or one row per session; the caller's own unless all.
      const rows = await accounting.querySessions({
        ...(q.data.session !== undefined ? { session: q.data.session } : {}),
        ...(q.data.principal !== undefined ? { principal: q.data.principal } : {}),
        ...(q.data.limit !== undefined ? { limit: q.data.limit } : {}),
      });
      return c.json({ rows });
    }
    const rows = await accounting.query({
      ...(q.data.principal !== undefined ? { principal: q.data.principal } : {}),
      fromMs,
      toMs,
      groupBy: q.data.group_by,
    });
    return c.json({ rows });
  });

  return app;
}

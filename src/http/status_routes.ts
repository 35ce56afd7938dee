/**
 * GET /health (liveness, and readiness with `?ready`) and GET /metrics (Prometheus; loopback, or
 * the `metrics` role from elsewhere).
 * @module
 */
import { Hono } from "hono";
import type { Logger } from "../lib/mod.ts";
import type { Ledger } from "../vault/mod.ts";
import { type Governance, rolesFor } from "../governance/mod.ts";
import { currentRequest } from "../identity/mod.ts";
import { isLoopbackIp, type Metrics } from "../usage/mod.ts";
import { checkReadiness } from "../health/mod.ts";
import { HttpError } from "./errors.ts";

type Env = { Variables: { principal: string } };

/** What the status routes read. */
export interface StatusRoutesDeps {
  readonly version: string;
  readonly startedAtMs: number;
  /** This process's worker index and pid under --workers. */
  readonly worker?: { readonly index: number; readonly pid: number };
  readonly kv: Deno.Kv;
  readonly ledger: Ledger;
  readonly vkey: string;
  readonly logger: Logger;
  readonly governance: Governance;
  /** Absent: /metrics answers 404. */
  readonly metrics?: Metrics;
}

/** The /health and /metrics routes (mounted at `/` by the HTTP app, behind its auth middleware). */
export function createStatusRoutes(d: StatusRoutesDeps): Hono<Env> {
  const app = new Hono<Env>();
  app.get("/health", async (c) => {
    const base = {
      status: "ok",
      version: d.version,
      uptime_s: Math.floor((Date.now() - d.startedAtMs) / 1000),
      ...(d.worker ? { worker: d.worker.index, pid: d.worker.pid } : {}),
    };
    if (c.req.query("ready") === undefined) return c.json(base);
    const { ready, checks } = await checkReadiness({
      kv: d.kv,
      ledger: d.ledger,
      vkey: d.vkey,
      logger: d.logger,
    });
    return c.json(
      { ...base, ...(ready ? {} : { status: "unavailable" }), ready, checks },
      ready ? 200 : 503,
    );
  });

  // Open to loopback scrapers; from elsewhere the principal needs the `metrics` role.
  app.get("/metrics", async (c) => {
    const metrics = d.metrics;
    if (!metrics) throw new HttpError(404, "Not Found");
    const ip = currentRequest()?.clientIp;
    const loopback = ip !== undefined && isLoopbackIp(ip);
    if (!loopback && !rolesFor(d.governance.policy, c.get("principal")).includes("metrics")) {
      throw new HttpError(403, 'Forbidden: /metrics needs the "metrics" role off loopback');
    }
    return c.body(await metrics.render(), 200, { "content-type": metrics.contentType });
  });

  return app;
}

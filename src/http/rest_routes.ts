/**
 * The REST face of the call path for non-MCP callers: `GET /tools` (the catalogue),
 * `POST /invoke` (one governed call) and the core-service shape
 * `POST /api/mcp/{service}/{action}`. Each call takes the same path as MCP tools/call; the HTTP
 * status says what the outcome was.
 * @module
 */
import { Hono } from "hono";
import { z } from "zod";
import type { CallOutcome, ToolRegistry } from "../calls/mod.ts";
import { HttpError } from "./errors.ts";
import type { BodyReader } from "./body_limit.ts";

type Env = { Variables: { principal: string } };

/** What the REST routes use. */
export interface RestRoutesDeps {
  readonly registry: ToolRegistry;
  readonly body: BodyReader;
}

const InvokeBody = z.object({
  // Any name: an unknown one (empty, 100 KB, lone surrogates) is refused by the call path and
  // sealed there, bounded, like on /mcp — never a 400 that leaves no record.
  tool: z.string(),
  arguments: z.record(z.string(), z.unknown()).optional(),
  hold_id: z.string().max(64).optional(),
  debug: z.boolean().optional(),
}).strict();

/** HTTP status for a call outcome: what a REST client can act on without reading the body. */
function statusFor(outcome: CallOutcome): number {
  switch (outcome.errorKind) {
    case undefined:
      return 200;
    case "held":
      return 202;
    case "unknown_tool":
      return 404;
    case "invalid_arguments":
    case "tool_error":
      return 422;
    case "blocked":
      // SABAR is "fix and retry": a rate limit (with retry-after) is 429, anything else 422.
      if (outcome.verdict !== "SABAR") return 403;
      return outcome.envelope?._constitutional.retry_after_s !== undefined ? 429 : 422;
    case "timeout":
      return 504;
    default:
      return 500;
  }
}

/** The REST body: the envelope, plus the tool name, ok flag and one-line summary. */
function invokeResponse(outcome: CallOutcome) {
  return {
    tool: outcome.tool,
    ok: !outcome.isError,
    ...(outcome.errorKind ? { error_kind: outcome.errorKind } : {}),
    text: outcome.text,
    ...(outcome.envelope ?? {}),
    // An upstream tool's own result, untouched.
    ...(outcome.upstreamResult ? { result: outcome.upstreamResult } : {}),
  };
}

// The core-service REST shape (`POST /api/mcp/{service}/{action}`, body = the arguments):
// the same governed call as tools/call of `<prefix>_<action>`.
const SERVICES: Readonly<Record<string, string>> = {
  memory: "memory_",
  files: "file_",
  context: "context_",
  bus: "bus_",
};

/** The /tools, /invoke and /api/mcp/{service}/{action} routes (mounted at `/`). */
export function createRestRoutes(deps: RestRoutesDeps): Hono<Env> {
  const app = new Hono<Env>();
  const { registry, body } = deps;

  app.get("/tools", (c) => c.json({ tools: registry.list(c.get("principal")) }));

  app.post("/invoke", async (c) => {
    const parsed = InvokeBody.safeParse(await body.jsonOnly(c.req.raw));
    if (!parsed.success) {
      throw new HttpError(
        400,
        `Bad Request: expected {"tool": string, "arguments"?: object, "hold_id"?: string}: ${
          parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"} ${i.message}`).join("; ")
        }`,
      );
    }
    const outcome = await registry.call(parsed.data.tool, parsed.data.arguments ?? {}, {
      principal: c.get("principal"),
      transport: "rest",
      ...(parsed.data.hold_id !== undefined ? { holdId: parsed.data.hold_id } : {}),
      debug: parsed.data.debug === true,
    });
    const retryAfter = outcome.envelope?._constitutional.retry_after_s;
    if (retryAfter !== undefined) c.header("retry-after", String(retryAfter));
    return c.json(invokeResponse(outcome), statusFor(outcome) as 200);
  });

  app.post("/api/mcp/:service/:action", async (c) => {
    const service = c.req.param("service");
    const action = c.req.param("action");
    const prefix = Object.hasOwn(SERVICES, service) ? SERVICES[service] : undefined;
    if (prefix === undefined) {
      throw new HttpError(
        404,
        `Not Found: unknown service ${JSON.stringify(service.slice(0, 64))}; services are ${
          Object.keys(SERVICES).join(", ")
        }`,
      );
    }
    const tool = prefix + action;
    if (!/^[a-z]{1,32}$/.test(action) || registry.get(tool) === undefined) {
      const actions = registry.list().map((t) => t.name).filter((n) => n.startsWith(prefix))
        .map((n) => n.slice(prefix.length));
      throw new HttpError(
        404,
        `Not Found: service ${service} has no action ${JSON.stringify(action.slice(0, 64))}; ` +
          `actions are ${actions.join(", ")}`,
      );
    }
    const args = await body.jsonOnly(c.req.raw);
    if (typeof args !== "object" || args === null || Array.isArray(args)) {
      throw new HttpError(400, "Bad Request: the body must be a JSON object of arguments");
    }
    const outcome = await registry.call(tool, args, {
      principal: c.get("principal"),
      transport: "rest",
    });
    const retryAfter = outcome.envelope?._constitutional.retry_after_s;
    if (retryAfter !== undefined) c.header("retry-after", String(retryAfter));
    return c.json(invokeResponse(outcome), statusFor(outcome) as 200);
  });

  return app;
}

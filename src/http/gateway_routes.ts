/**
 * The gateway over HTTP: the upstream registry (`GET /api/servers`,
 * `GET /api/servers/:name`) and the operator's signed re-approval of a changed
 * upstream tool definition (`POST /api/servers/:name/tools/:tool/approve`).
 */
import { Hono } from "hono";
import { z } from "zod";
import {
  type Gateway,
  ManifestError,
  parseRegistration,
  RegistrationError,
} from "../gateway/mod.ts";
import { HttpError, statusOf } from "./errors.ts";
import { createBearerCheck } from "./guards.ts";

type Env = { Variables: { principal: string } };

const Approval = z.object({
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  operator: z.string().min(1).max(64),
  signature: z.string().min(1).max(200),
}).strict();

function refusal(e: unknown): never {
  if (e instanceof RegistrationError) {
    throw new HttpError(statusOf(e), e.message);
  }
  if (e instanceof ManifestError) throw new HttpError(400, `Bad Request: ${e.message}`);
  throw e;
}

/** Routes over the gateway; `body` reads a bounded JSON body. */
export function createGatewayRoutes(deps: {
  gateway: Gateway;
  body: (req: Request) => Promise<unknown>;
  registrationToken?: string;
}): Hono<Env> {
  const app = new Hono<Env>();
  const { gateway } = deps;
  // Constant-time comparison of SHA-256 digests (the guards' bearer check).
  const checkRegistration = deps.registrationToken
    ? createBearerCheck(deps.registrationToken)
    : undefined;
  function requireRegistrationToken(req: Request): void {
    if (!checkRegistration) {
      throw new HttpError(
        403,
        "Forbidden: runtime registration is disabled; start Warden with --registration-token",
      );
    }
    const denied = checkRegistration(req);
    if (denied) throw denied;
  }

  app.post("/api/servers/register", async (c) => {
    requireRegistrationToken(c.req.raw);
    try {
      const config = parseRegistration(await deps.body(c.req.raw));
      const status = await gateway.register(config);
      return c.json(status, 201);
    } catch (e) {
      refusal(e);
    }
  });

  app.delete("/api/servers/:name", async (c) => {
    requireRegistrationToken(c.req.raw);
    try {
      await gateway.remove(c.req.param("name"));
      return c.json({ removed: c.req.param("name") });
    } catch (e) {
      refusal(e);
    }
  });

  app.get("/api/servers", (c) => c.json({ servers: gateway.servers() }));

  app.get("/api/servers/:name", (c) => {
    const server = gateway.server(c.req.param("name"));
    if (!server) throw new HttpError(404, `Not Found: no upstream named "${c.req.param("name")}"`);
    return c.json(server);
  });

  app.post("/api/servers/:name/tools/:tool/approve", async (c) => {
    const parsed = Approval.safeParse(await deps.body(c.req.raw));
    if (!parsed.success) {
      throw new HttpError(
        400,
        `Bad Request: expected {"sha256": hex, "operator": string, "signature": base64 string}: ${
          parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"} ${i.message}`).join("; ")
        }`,
      );
    }
    try {
      const result = await gateway.approveTool({
        server: c.req.param("name"),
        tool: c.req.param("tool"),
        ...parsed.data,
      });
      return c.json({ server: c.req.param("name"), tool: c.req.param("tool"), ...result });
    } catch (e) {
      refusal(e);
    }
  });

  return app;
}

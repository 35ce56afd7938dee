/**
 * Execution, once the verdict lets a call run: an own tool's handler under
 * the call deadline, with its output checked against its schema and every
 * exception contained in the call; an upstream tool through its pooled
 * client. Both hand governance an `Execution`, never a throw.
 *
 * @module
 */
import type { UpstreamToolEntry } from "../gateway/mod.ts";
import type { Execution } from "../governance/mod.ts";
import { type DeadlineScheduler, type Logger, sha256HexOfText } from "../lib/mod.ts";
import { describeIssues } from "./facts.ts";
import {
  type ClientBridge,
  expectedErrorText,
  InputRequiredError,
  type ToolContext,
  type ToolDefinition,
  ToolError,
} from "./tool.ts";
import type { CallContext } from "./types.ts";

/** What a handler said about the call beyond its data (apex_judge's verdict, the next tool). */
export interface HandlerExtra {
  outcome?: string;
  nextTool?: string | null;
}

/** What execution needs from the registry. */
export interface ExecuteDeps {
  readonly logger: Logger;
  readonly timeoutMs: number;
  readonly deadlines: DeadlineScheduler;
}

/** Runs `tool`'s handler on parsed `args`: deadline, output check, fault containment. */
export async function executeOwn(
  deps: ExecuteDeps,
  tool: ToolDefinition,
  args: unknown,
  ctx: CallContext,
  extra: HandlerExtra,
): Promise<Execution> {
  const log = deps.logger;
  const controller = new AbortController();
  const onAbort = () => controller.abort(ctx.signal?.reason);
  ctx.signal?.addEventListener("abort", onAbort, { once: true });
  let cancelDeadline = () => {};
  const deadline = new Promise<"timeout">((resolve) => {
    cancelDeadline = deps.deadlines.after(deps.timeoutMs, () => resolve("timeout"));
  });
  const toolCtx: ToolContext = {
    sessionId: ctx.sessionId,
    principal: ctx.principal,
    signal: controller.signal,
    client: ctx.client,
    debug: ctx.debug,
    ...(ctx.holdId !== undefined ? { approvedHold: ctx.holdId } : {}),
  };
  try {
    const pending = Promise.resolve().then(() => tool.handler(args as never, toolCtx));
    // A handler that loses the race keeps running; its eventual rejection must not go unhandled.
    pending.catch(() => {});
    const result = await Promise.race([pending, deadline]);
    if (result === "timeout") {
      controller.abort(new DOMException("tool call timed out", "TimeoutError"));
      log.warn("tool timed out", { tool: tool.name, timeout_ms: deps.timeoutMs });
      return {
        isError: true,
        errorKind: "timeout",
        text: `Tool ${tool.name} timed out after ${deps.timeoutMs} ms`,
      };
    }
    if (tool.outputSchema) {
      const checked = tool.outputSchema.safeParse(result.data);
      if (!checked.success) {
        const issues = describeIssues(checked.error);
        log.error("tool returned output that does not match its schema", {
          tool: tool.name,
          issues,
        });
        return {
          isError: true,
          errorKind: "invalid_output",
          text: `Tool ${tool.name} produced output that does not match its output schema`,
          outputSchemaIssues: issues,
        };
      }
    }
    if (result.outcome !== undefined) extra.outcome = result.outcome;
    if (result.nextTool !== undefined) extra.nextTool = result.nextTool;
    return {
      isError: false,
      text: result.text,
      data: result.data as Record<string, unknown>,
      // The summary text may quote what was read: the vault gets its digest instead.
      ...(tool.recordResult
        ? {
          recorded: {
            data: tool.recordResult(result.data as never),
            text: `sha256:${sha256HexOfText(result.text)}`,
          },
        }
        : {}),
      ...(result.content ? { content: result.content } : {}),
      ...(tool.outputSchema ? { outputSchemaIssues: [] } : {}),
    };
  } catch (e) {
    if (e instanceof ToolError) {
      return { isError: true, errorKind: "tool_error", text: e.message };
    }
    if (e instanceof InputRequiredError) {
      return { isError: true, errorKind: "input_required", text: e.message };
    }
    const expected = expectedErrorText(tool.expectedErrors, e);
    if (expected !== undefined) return { isError: true, errorKind: "tool_error", text: expected };
    // Fault containment: any other exception stays inside this call.
    log.error("tool fault contained", { tool: tool.name, error: e });
    return {
      isError: true,
      errorKind: "fault",
      text: `Tool ${tool.name} failed with an internal error; other tools are unaffected`,
    };
  } finally {
    cancelDeadline();
    ctx.signal?.removeEventListener("abort", onAbort);
  }
}

/** How long Warden waits for a client to say whether its user opens an authorization link. */
const ELICIT_URL_TIMEOUT_MS = 60_000;

/**
 * Asks the client to open `url` for its user (MCP URL-mode elicitation) when
 * it declared it can; true when the user accepted. A client that cannot, a
 * decline or no answer in time: false, and the caller reads the link instead.
 */
async function askToOpen(
  client: ClientBridge | undefined,
  upstream: string,
  url: string,
  signal: AbortSignal,
): Promise<boolean> {
  const elicitation = client?.capabilities.elicitation;
  if (!client || typeof elicitation !== "object" || elicitation === null) return false;
  if (!("url" in elicitation)) return false;
  const timeout = AbortSignal.any([signal, AbortSignal.timeout(ELICIT_URL_TIMEOUT_MS)]);
  const unanswered = new Promise<undefined>((resolve) =>
    timeout.addEventListener("abort", () => resolve(undefined), { once: true })
  );
  try {
    const answer = await Promise.race([
      client.request("elicitation/create", {
        mode: "url",
        elicitationId: crypto.randomUUID(),
        url,
        message: `Upstream ${upstream} acts as you: sign in there and allow Warden to use it ` +
          `for you (the page is Warden's, then the upstream's own).`,
      }),
      unanswered,
    ]);
    return answer?.action === "accept";
  } catch (e) {
    if (e instanceof InputRequiredError) throw e;
    return false; // the client refused the request: the link is in the answer instead
  }
}

/**
 * Calls an upstream tool through its pooled client. `keep` receives the
 * upstream's own result, which the adapters pass back untouched when the
 * verdict lets it through.
 */
export async function executeUpstream(
  entry: UpstreamToolEntry,
  args: unknown,
  ctx: CallContext,
  keep: (raw: Record<string, unknown>) => void,
): Promise<Execution> {
  const controller = new AbortController();
  const onAbort = () => controller.abort(ctx.signal?.reason);
  ctx.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const outcome = await entry.call(args as Record<string, unknown>, {
      signal: controller.signal,
    });
    if (!outcome.ok && outcome.kind === "authorization_required") {
      // A client that can open URLs for its user is asked to (URL-mode elicitation); the answer
      // says so. Either way the vault records that a link was given, never the link (a
      // single-use capability for that principal).
      const opened = outcome.authorizationUrl !== undefined &&
        await askToOpen(ctx.client, entry.upstream, outcome.authorizationUrl, controller.signal);
      return {
        isError: true,
        errorKind: "tool_error",
        text: opened
          ? `Upstream ${entry.upstream} acts as you: finish authorizing Warden there in the ` +
            `page your client opened, then call again.`
          : outcome.message,
        data: { authorization_required: entry.upstream },
        recorded: {
          data: { authorization_required: entry.upstream },
          text: `authorization required at upstream ${entry.upstream}; a link was given`,
        },
      };
    }
    if (!outcome.ok) {
      return {
        isError: true,
        errorKind: outcome.kind === "unavailable" ? "fault" : outcome.kind,
        text: outcome.message,
        // Not as its pinned outputSchema says (sealed as invalid_output, like an own tool's).
        ...(outcome.issues ? { outputSchemaIssues: [...outcome.issues] } : {}),
      };
    }
    const raw = outcome.result as Record<string, unknown>;
    keep(raw);
    const blocks = Array.isArray(raw.content) ? raw.content as Record<string, unknown>[] : [];
    const text = blocks.filter((b) => b.type === "text").map((b) => String(b.text)).join("\n");
    const structured = raw.structuredContent;
    return {
      isError: raw.isError === true,
      ...(raw.isError === true ? { errorKind: "tool_error" } : {}),
      text,
      ...(structured && typeof structured === "object"
        ? { data: structured as Record<string, unknown> }
        : {}),
    };
  } finally {
    ctx.signal?.removeEventListener("abort", onAbort);
  }
}

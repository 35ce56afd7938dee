/**
 * The governance view of a call (shared by call, POST /judge and apex_judge's
 * dry run): the tool's facts, the parsed arguments and their schema issues,
 * claims, what the vault records of the arguments, and the caller.
 *
 * @module
 */
import type { z } from "zod";
import type { UpstreamToolEntry } from "../gateway/mod.ts";
import type { ToolFacts } from "../governance/mod.ts";
import { currentRequest } from "../identity/mod.ts";
import { utf8ByteLength } from "../lib/mod.ts";
import type { ToolDefinition } from "./tool.ts";
import type { CallContext, CallFacts } from "./types.ts";

/**
 * One line per zod issue, naming the argument to change: `` `path`: message ``; an unknown
 * argument is named and to be removed; a problem with the whole object is `` `arguments` ``.
 */
export function describeIssues(error: z.ZodError): string[] {
  return error.issues.map((i) => {
    const keys = (i as { keys?: unknown }).keys;
    if (i.code === "unrecognized_keys" && Array.isArray(keys)) {
      const where = i.path.length ? ` in \`${i.path.join(".")}\`` : "";
      return `${keys.slice(0, 5).map((k) => `\`${shownKey(String(k))}\``).join(", ")}${where}: ${
        keys.length === 1
          ? "not an argument of this tool; remove it"
          : "not arguments of this tool; remove them"
      }`;
    }
    const path = i.path.length ? i.path.map((p) => shownKey(String(p))).join(".") : "arguments";
    return `\`${path}\`: ${i.message}`;
  });
}

/** An argument name as echoed back: at most 64 characters, well formed. */
function shownKey(key: string): string {
  return key.length > 64 ? `${key.slice(0, 64).toWellFormed()}…` : key.toWellFormed();
}

/** UTF-8 size of the arguments as JSON; unserialisable arguments count as too large (F4). */
function argumentBytesOf(args: unknown): number {
  try {
    return utf8ByteLength(JSON.stringify(args ?? {}));
  } catch {
    // JSON.stringify throws only on a cycle or a BigInt: F4 refuses such arguments.
    return Number.MAX_SAFE_INTEGER;
  }
}

function clientIpOf(ctx: CallContext): { clientIp?: string } {
  const clientIp = ctx.clientIp ?? currentRequest()?.clientIp;
  return clientIp !== undefined ? { clientIp } : {};
}

/** The facts of a call to an own tool (`def` undefined: a tool nobody registered). */
export function ownFacts(
  def: ToolDefinition | undefined,
  input: {
    name: string;
    args: unknown;
    ctx: CallContext;
    definitionHash?: string;
    /** Facts from the tool's async `review`. */
    reviewed?: Record<string, unknown>;
  },
): CallFacts {
  const { name, args, ctx } = input;
  const parsed = def ? def.inputSchema.safeParse(args ?? {}) : undefined;
  const schemaIssues = parsed && !parsed.success ? describeIssues(parsed.error) : [];
  const data = parsed?.success ? parsed.data : undefined;
  const annotations = def
    ? {
      ...def.annotations,
      ...(data && def.assess ? def.assess(data) : {}),
      ...input.reviewed,
    }
    : undefined;
  const refusal = data && def?.refusal ? def.refusal(data, ctx.client) : undefined;
  const tool: ToolFacts = {
    name,
    registered: def !== undefined,
    ...(annotations ? { annotations } : {}),
    ...(refusal !== undefined ? { refusal } : {}),
    ...(input.definitionHash
      ? { definitionHash: input.definitionHash, pinnedHash: input.definitionHash }
      : {}),
    hasOutputSchema: def?.outputSchema !== undefined,
    ...(def ? { description: def.description } : {}),
  };
  return {
    parsed: data,
    request: {
      tool,
      call: {
        ...callOf(name, args, ctx),
        schemaIssues,
        ...(data && def?.claims ? { claims: def.claims(data) } : {}),
        ...(data && def?.recordArguments ? { recorded: def.recordArguments(data) } : {}),
        ...(ctx.holdId !== undefined ? { holdId: ctx.holdId } : {}),
        ...clientIpOf(ctx),
      },
    },
  };
}

/** What every call's facts say of the call itself, own tool or upstream. */
function callOf(tool: string, args: unknown, ctx: CallContext) {
  return {
    tool,
    arguments: args ?? {},
    principal: ctx.principal,
    sessionId: ctx.sessionId,
    actor: ctx.actor,
    transport: ctx.transport ?? "unknown",
    argumentBytes: argumentBytesOf(args),
  };
}

/** The facts of a call to an upstream tool: its pinned definition, breaker and credential. */
export function upstreamFacts(
  entry: UpstreamToolEntry,
  args: unknown,
  ctx: CallContext,
): CallFacts {
  const isObject = args === undefined ||
    (typeof args === "object" && args !== null && !Array.isArray(args));
  const tool: ToolFacts = {
    name: entry.descriptor.name,
    registered: true,
    annotations: entry.descriptor.annotations,
    definitionHash: entry.definitionHash,
    pinnedHash: entry.pinnedHash,
    hasOutputSchema: entry.descriptor.outputSchema !== undefined,
    upstream: entry.upstream,
    ...(entry.upstreamVersion ? { upstreamVersion: entry.upstreamVersion } : {}),
    upstreamCredential: entry.credential(),
    description: entry.descriptor.description,
  };
  return {
    parsed: undefined,
    request: {
      tool,
      circuit: entry.circuit(),
      call: {
        ...callOf(entry.descriptor.name, args, ctx),
        // The upstream validates against its own schema; Warden checks the shape only.
        schemaIssues: isObject ? [] : ["`arguments`: send an object of named arguments"],
        ...(ctx.holdId !== undefined ? { holdId: ctx.holdId } : {}),
      },
    },
  };
}

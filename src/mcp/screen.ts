/**
 * Hostile-input screen in front of the SDK (issue 9 §6): a parsed JSON-RPC
 * message is walked without recursion (depth and array length bounded) and the
 * params of a known client request are checked against the SDK's own schema,
 * so bad input is answered 400 with -32602 and one short reason — never 500,
 * -32603, a zod dump or a stack overflow. A tool's `arguments` are left to the
 * governed call path, which refuses and seals over-deep arguments itself.
 */
import { ClientRequestSchema } from "@modelcontextprotocol/core";

/** Nesting allowed outside a tool's arguments. */
export const MAX_MESSAGE_DEPTH = 64;
/** Elements allowed in one array outside a tool's arguments. */
export const MAX_ARRAY_LENGTH = 10_000;

interface Schema {
  safeParse(v: unknown): {
    success: boolean;
    error?: { issues: { path: PropertyKey[]; message: string }[] };
  };
}

const REQUEST_SCHEMAS: ReadonlyMap<string, Schema> = (() => {
  const out = new Map<string, Schema>();
  const options = (ClientRequestSchema as unknown as {
    options: { shape?: { method?: { value?: unknown } } }[];
  }).options;
  for (const option of options) {
    const method = option.shape?.method?.value;
    if (typeof method === "string") out.set(method, option as unknown as Schema);
  }
  return out;
})();

/** A refusal of one message: the id to answer with, the JSON-RPC code and a one-line reason. */
export interface ScreenRefusal {
  readonly id: string | number | null;
  readonly code: number;
  readonly message: string;
}

function idOf(message: unknown): string | number | null {
  const id = (message as { id?: unknown } | null)?.id;
  return typeof id === "string" && id.length <= 256 ? id : typeof id === "number" ? id : null;
}

/** The first place the value is nested deeper or wider than allowed, or undefined. */
function tooDeep(value: unknown, skip?: unknown): string | undefined {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== "object" || v === skip) continue;
    if (depth >= MAX_MESSAGE_DEPTH) return `nested more than ${MAX_MESSAGE_DEPTH} levels`;
    if (Array.isArray(v)) {
      if (v.length > MAX_ARRAY_LENGTH) {
        return `an array holds more than ${MAX_ARRAY_LENGTH} elements`;
      }
      for (const x of v) stack.push([x, depth + 1]);
    } else {
      for (const x of Object.values(v)) stack.push([x, depth + 1]);
    }
  }
  return undefined;
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** The methods the 2026-07-28 path serves with the same params as 2025 (others are the SDK's). */
const MODERN_METHODS = new Set([
  "ping",
  "tools/list",
  "tools/call",
  "resources/list",
  "resources/read",
  "resources/templates/list",
  "prompts/list",
  "prompts/get",
]);

/** 2026-07-28 request params outside a method's own: the envelope and the retry channel. */
const MODERN_PARAMS = new Set(["_meta", "inputResponses", "requestState"]);
/** The most bytes of `requestState` accepted (Warden's own are far shorter). */
const MAX_REQUEST_STATE = 16 * 1024;

/**
 * The 2026-07-28 retry channel, checked as the 2025 params are: `inputResponses` an object of
 * objects, `requestState` a bounded string. (The `_meta` envelope is the SDK's to judge: it
 * answers 400 with -32602 and a short reason.)
 */
function modernRetryProblem(params: Record<string, unknown>): string | undefined {
  const responses = params.inputResponses;
  if (responses !== undefined) {
    if (responses === null || typeof responses !== "object" || Array.isArray(responses)) {
      return "inputResponses: expected an object of responses keyed by request id";
    }
    for (const [key, value] of Object.entries(responses)) {
      if (value === null || typeof value !== "object" || Array.isArray(value)) {
        return `inputResponses.${clip(key, 80)}: expected an object`;
      }
    }
  }
  const state = params.requestState;
  if (state !== undefined) {
    if (typeof state !== "string") return "requestState: expected a string";
    if (state.length > MAX_REQUEST_STATE) {
      return `requestState: longer than ${MAX_REQUEST_STATE} characters`;
    }
  }
  return undefined;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** `tools/call` params the request schema certainly accepts (see screenMessage). */
function plainToolCallParams(params: Record<string, unknown> | undefined): boolean {
  if (params === undefined || typeof params.name !== "string" || "task" in params) return false;
  const args = params.arguments;
  if (args !== undefined && !isPlainObject(args)) return false;
  const meta = params._meta;
  if (meta === undefined) return true;
  return isPlainObject(meta) && !("progressToken" in meta) &&
    !("io.modelcontextprotocol/related-task" in meta);
}

/**
 * Screens one parsed message. Returns a refusal for a message nested too deep
 * or too wide (outside `tools/call` arguments) or whose params do not fit the
 * schema of a known request method; undefined otherwise (including messages
 * that are not requests: the transport judges those). `era: "2026-07-28"` checks the same
 * method params with that revision's envelope and retry fields set aside, and those fields'
 * own types: before, that path left params to the SDK, which answered a bad cursor or URI with
 * -32603 and a zod dump.
 */
export function screenMessage(
  message: unknown,
  options: { era?: "2025" | "2026-07-28" } = {},
): ScreenRefusal | undefined {
  if (message === null || typeof message !== "object" || Array.isArray(message)) return undefined;
  const m = message as { method?: unknown; params?: unknown; id?: unknown };
  const args = m.method === "tools/call" && m.params !== null && typeof m.params === "object"
    ? (m.params as { arguments?: unknown }).arguments
    : undefined;
  const shape = tooDeep(message, args);
  if (shape) {
    return { id: idOf(message), code: -32602, message: `Invalid params: the message is ${shape}` };
  }
  if (m.params !== undefined && (m.params === null || typeof m.params !== "object")) {
    return {
      id: idOf(message),
      code: -32602,
      message: `Invalid params: params must be an object, not ${
        m.params === null ? "null" : typeof m.params
      }`,
    };
  }
  if (typeof m.method !== "string" || m.id === undefined) return undefined;
  let params = m.params as Record<string, unknown> | undefined;
  if (options.era === "2026-07-28") {
    // A method this revision does not have is answered by the SDK (-32601), not judged here.
    if (!MODERN_METHODS.has(m.method)) return undefined;
  }
  if (options.era === "2026-07-28" && params !== undefined) {
    const retry = modernRetryProblem(params);
    if (retry) {
      return {
        id: idOf(message),
        code: -32602,
        message: `Invalid params for ${clip(m.method, 64)}: ${retry}`,
      };
    }
    params = Object.fromEntries(Object.entries(params).filter(([k]) => !MODERN_PARAMS.has(k)));
  }
  // The common tools/call needs no schema walk: a name, an arguments object and a _meta without
  // the typed keys (progress token, related task) is what the schema accepts. Anything else
  // is judged by the schema below.
  if (m.method === "tools/call" && plainToolCallParams(params)) return undefined;
  const schema = REQUEST_SCHEMAS.get(m.method);
  if (!schema) return undefined;
  const parsed = schema.safeParse({ method: m.method, params });
  if (parsed.success) return undefined;
  const reasons = (parsed.error?.issues ?? []).slice(0, 3).map((i) => {
    const path = i.path.map(String).join(".") || "params";
    return `${clip(path, 80)}: ${clip(i.message, 120)}`;
  });
  return {
    id: idOf(message),
    code: -32602,
    message: `Invalid params for ${m.method}: ${reasons.join("; ") || "does not match the schema"}`,
  };
}

/** Screens a message or a batch; the first refusal, if any. */
export function screenBody(
  body: unknown,
  options: { era?: "2025" | "2026-07-28" } = {},
): ScreenRefusal | undefined {
  if (!Array.isArray(body)) return screenMessage(body, options);
  if (body.length > 100) {
    return {
      id: null,
      code: -32600,
      message: "Invalid Request: a batch must hold 1 to 100 messages",
    };
  }
  for (const m of body) {
    const refusal = screenMessage(m, options);
    if (refusal) return refusal;
  }
  return undefined;
}

/** The 400 answer for a refusal. */
export function refusalResponse(refusal: ScreenRefusal): Response {
  return new Response(
    JSON.stringify({
      jsonrpc: "2.0",
      id: refusal.id,
      error: { code: refusal.code, message: refusal.message },
    }),
    { status: 400, headers: { "content-type": "application/json" } },
  );
}

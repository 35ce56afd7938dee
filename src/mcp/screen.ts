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

/**
 * Screens one parsed message. Returns a refusal for a message nested too deep
 * or too wide (outside `tools/call` arguments) or whose params do not fit the
 * schema of a known request method (unless `params: false`, for the 2026-07-28 path whose
 * handler checks its own methods); undefined otherwise (including messages
 * that are not requests: the transport judges those).
 */
export function screenMessage(
  message: unknown,
  options: { params?: boolean } = {},
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
  if (options.params === false) return undefined;
  if (typeof m.method !== "string" || m.id === undefined) return undefined;
  const schema = REQUEST_SCHEMAS.get(m.method);
  if (!schema) return undefined;
  const parsed = schema.safeParse({ method: m.method, params: m.params });
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
  options: { params?: boolean } = {},
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

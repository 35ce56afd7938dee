/**
 * The shape of an upstream: what the `--upstreams` file lists and what a
 * runtime registration carries. Validated strictly with zod — an unknown key
 * is an error, not a silently ignored setting — and every error names the
 * field (`[1].url: required for transport "sse"`).
 *
 * @module
 */
import { z } from "zod";
import type { UpstreamOAuthConfig } from "./upstream_oauth.ts";

/** How Warden reaches an upstream. */
export type UpstreamTransport = "streamable-http" | "sse" | "stdio";

/** One upstream, validated. */
export interface UpstreamConfig {
  readonly name: string;
  readonly transport: UpstreamTransport;
  readonly url?: string;
  readonly command?: string;
  readonly args?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly headers?: Readonly<Record<string, string>>;
  readonly tools?: { readonly allow?: readonly string[]; readonly deny?: readonly string[] };
  /** Prefix of the re-exposed tool names; default `<name>__`; "" exposes them unprefixed. */
  readonly prefix?: string;
  readonly timeout_ms?: number;
  /** A URL probed with GET for health; a ping otherwise. */
  readonly health_check?: string;
  /** Definition hashes pinned by the operator, tool name → SHA-256 hex. */
  readonly pin?: Readonly<Record<string, string>>;
  /** Version the upstream announced (runtime registration). */
  readonly version?: string;
  /** OAuth as a client: how Warden gets the access token it presents (upstreams file only). */
  readonly oauth?: UpstreamOAuthConfig;
  /**
   * stdio only: the bubblewrap sandbox. On by default with no network, a
   * private work dir and only the system directories mounted; `enabled: false`
   * runs a trusted command unsandboxed.
   */
  readonly sandbox?: {
    readonly enabled?: boolean;
    readonly network?: boolean;
    /** Extra paths mounted read-only. */
    readonly read?: readonly string[];
    /** Extra paths mounted read-write. */
    readonly write?: readonly string[];
    /** Size of the private /tmp and of /dev/shm, each a tmpfs in memory, in MiB (default 64). */
    readonly tmp_mb?: number;
    /** Size of the work dir (HOME, cwd), a tmpfs in memory, in MiB (default 128). */
    readonly work_mb?: number;
  };
}

/** Thrown when an upstreams file or a registration manifest is invalid. */
export class ManifestError extends Error {
  override name = "ManifestError";
  constructor(message: string, readonly field: string) {
    super(message);
  }
}

/** An object's type error gets our wording; unknown keys keep zod's message naming them. */
function objectError(message: string) {
  return (issue: { code?: string }) => issue.code === "invalid_type" ? message : undefined;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$/;
const TOOL_NAME = /^[A-Za-z0-9_.-]{1,128}$/;
const HEX64 = /^[0-9a-f]{64}$/;

const text = (max: number) =>
  z.string({ error: "expected a string" }).min(1, { error: "expected a non-empty string" })
    .max(max, { error: `expected at most ${max} characters` });
const httpUrl = z.string({ error: "expected a URL string" }).max(2048).refine((s) => {
  try {
    const u = new URL(s);
    return (u.protocol === "http:" || u.protocol === "https:") && u.username === "" &&
      u.password === "";
  } catch {
    return false;
  }
}, { error: "expected an http(s) URL without credentials" });
const stringMap = (max: number) =>
  z.record(
    z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]{0,127}$/, { error: "invalid name" }),
    z.string({ error: "expected a string value" }).max(8192),
    { error: "expected an object of strings" },
  ).refine((r) => Object.keys(r).length <= max, { error: `expected at most ${max} entries` });
const toolNames = z.array(
  z.string().regex(TOOL_NAME, { error: "expected a tool name" }),
  { error: "expected an array of tool names" },
).max(1000);

const Name = z.string({ error: "expected a string" }).regex(NAME, {
  error: "expected 1-48 letters, digits, '_' or '-', starting with a letter or digit",
}).refine((s) => !s.includes("__"), { error: 'must not contain "__"' });
const Prefix = z.string({ error: "expected a string" }).regex(/^[A-Za-z0-9_.-]{0,64}$/, {
  error: "expected up to 64 letters, digits, '_', '.' or '-'",
});
const TimeoutMs = z.number({ error: "expected a number" }).int({ error: "expected an integer" })
  .min(10, { error: "expected at least 10" }).max(3_600_000, { error: "expected at most 3600000" });

const absPaths = z.array(
  z.string({ error: "expected a path" }).max(4096).regex(/^\/(?!.*(?:^|\/)\.\.(?:\/|$))/, {
    error: "expected an absolute path without '..'",
  }),
  { error: "expected an array of absolute paths" },
).max(64);

const Scope = z.string({ error: "expected a string" }).max(1000).regex(
  /^[!#-[\]-~]+( [!#-[\]-~]+)*$/,
  { error: "expected space-separated scope tokens" },
);

/** Warden's own token, by client credentials or by exchanging the caller's (RFC 8693). */
const GrantOAuthSchema = z.strictObject({
  grant: z.enum(["client_credentials", "token_exchange"], {
    error: 'expected "client_credentials" | "token_exchange"',
  }),
  issuer: httpUrl,
  client_id: text(256),
  client_secret_env: z.string({ error: "expected an environment variable name" }).regex(
    /^[A-Za-z_][A-Za-z0-9_]{0,127}$/,
    { error: "expected an environment variable name" },
  ),
  resource: httpUrl.optional(),
  scope: Scope.optional(),
}, {
  error: objectError(
    'expected {grant, issuer, client_id, client_secret_env, resource?, scope?} or {mode: "authorization_code", scope?}',
  ),
});

/**
 * Each principal's own token, got by the authorization-code flow at the
 * upstream's authorization server (found from its 401); Warden registers by
 * its client ID metadata document, or dynamically.
 */
const AuthorizationCodeSchema = z.strictObject({
  mode: z.literal("authorization_code", { error: 'expected "authorization_code"' }),
  scope: Scope.optional(),
}, { error: objectError('expected {mode: "authorization_code", scope?}') });

/**
 * The `oauth` entry: `mode` picks the authorization-code shape, anything else
 * is the grant shape — so each error names the field of the shape meant,
 * not a union's "no match".
 */
const OAuthSchema = z.unknown().transform((raw, ctx) => {
  const schema = typeof raw === "object" && raw !== null && "mode" in raw
    ? AuthorizationCodeSchema
    : GrantOAuthSchema;
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data as UpstreamOAuthConfig;
  for (const issue of parsed.error.issues) {
    ctx.addIssue({ code: "custom", path: issue.path, message: issue.message });
  }
  return z.NEVER;
});

const MIB_ERROR = "expected a whole number of MiB from 1 to 4096";
const mebibytes = z.number({ error: MIB_ERROR }).int({ error: MIB_ERROR })
  .min(1, { error: MIB_ERROR }).max(4096, { error: MIB_ERROR });

const UpstreamSchema = z.strictObject({
  name: Name,
  transport: z.enum(["streamable-http", "sse", "stdio"], {
    error: 'expected "streamable-http" | "sse" | "stdio"',
  }),
  url: httpUrl.optional(),
  command: text(4096).optional(),
  args: z.array(z.string({ error: "expected a string" }).max(8192), {
    error: "expected an array of strings",
  }).max(256).optional(),
  env: stringMap(256).optional(),
  headers: stringMap(64).optional(),
  tools: z.strictObject({ allow: toolNames.optional(), deny: toolNames.optional() }, {
    error: objectError("expected {allow?, deny?}"),
  }).optional(),
  prefix: Prefix.optional(),
  timeout_ms: TimeoutMs.optional(),
  health_check: httpUrl.optional(),
  pin: z.record(
    z.string().regex(TOOL_NAME, { error: "expected a tool name" }),
    z.string().regex(HEX64, { error: "expected a lowercase SHA-256 hex digest" }),
    { error: "expected an object of tool name → SHA-256 hex" },
  ).optional(),
  version: text(128).optional(),
  oauth: OAuthSchema.optional(),
  sandbox: z.strictObject({
    enabled: z.boolean({ error: "expected true or false" }).optional(),
    network: z.boolean({ error: "expected true or false" }).optional(),
    read: absPaths.optional(),
    write: absPaths.optional(),
    tmp_mb: mebibytes.optional(),
    work_mb: mebibytes.optional(),
  }, { error: objectError("expected {enabled?, network?, read?, write?, tmp_mb?, work_mb?}") })
    .optional(),
}, { error: objectError("expected an object") }).superRefine((u, ctx) => {
  if (u.transport === "stdio") {
    if (u.command === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["command"],
        message: 'required for transport "stdio"',
      });
    }
    for (const key of ["url", "headers", "oauth"] as const) {
      if (u[key] !== undefined) {
        ctx.addIssue({ code: "custom", path: [key], message: 'not allowed for transport "stdio"' });
      }
    }
  } else {
    if (u.url === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["url"],
        message: `required for transport "${u.transport}"`,
      });
    }
    for (const key of ["command", "args", "env", "sandbox"] as const) {
      if (u[key] !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: [key],
          message: `only allowed for transport "stdio"`,
        });
      }
    }
  }
});

function fieldOf(path: readonly PropertyKey[]): string {
  return path.map((p) => typeof p === "number" ? `[${p}]` : `.${String(p)}`).join("")
    .replace(/^\./, "") || "(root)";
}

function firstIssue(error: z.ZodError, prefix: string): ManifestError {
  const issues = error.issues.map((i) => ({ field: prefix + fieldOf(i.path), message: i.message }));
  return new ManifestError(
    issues.map((i) => `${i.field}: ${i.message}`).join("; "),
    issues[0]?.field ?? "(root)",
  );
}

/**
 * Parses the `--upstreams` file: a JSON array of upstreams with unique names.
 * Throws `ManifestError` naming the first bad field.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ManifestError, parseUpstreams } from "./manifest.ts";
 * const [ev] = parseUpstreams('[{"name":"ev","transport":"sse","url":"http://127.0.0.1:3001/sse"}]');
 * assert.equal(ev.name, "ev");
 * assert.equal(ev.transport, "sse");
 * assert.throws(() => parseUpstreams('[{"name":"ev"}]'), ManifestError);
 * ```
 */
export function parseUpstreams(text: string): UpstreamConfig[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ManifestError(`not valid JSON: ${(e as Error).message}`, "(root)");
  }
  const parsed = z.array(UpstreamSchema, { error: "expected an array of upstreams" }).max(256, {
    error: "expected at most 256 upstreams",
  }).safeParse(raw);
  if (!parsed.success) throw firstIssue(parsed.error, "");
  const seen = new Set<string>();
  parsed.data.forEach((u, i) => {
    if (seen.has(u.name)) {
      throw new ManifestError(`[${i}].name: "${u.name}" is listed twice`, `[${i}].name`);
    }
    seen.add(u.name);
  });
  return parsed.data;
}

const RegistrationSchema = z.strictObject({
  server_name: Name,
  endpoint: httpUrl,
  transport: z.enum(["streamable-http", "sse"], {
    error: 'expected "streamable-http" | "sse" (stdio cannot be registered over HTTP)',
  }).optional(),
  tools: z.union([
    toolNames,
    z.strictObject({ allow: toolNames.optional(), deny: toolNames.optional() }),
  ], { error: "expected an array of tool names or {allow?, deny?}" }).optional(),
  version: text(128),
  health_check: httpUrl.optional(),
  prefix: Prefix.optional(),
  timeout_ms: TimeoutMs.optional(),
  /** Headers Warden presents to the upstream (an API key); kept encrypted, never echoed. */
  headers: stringMap(32).optional(),
}, { error: objectError("expected a JSON object") });

/**
 * Validates a runtime registration manifest (`POST /api/servers/register`,
 * the utilities container's shape) and maps it to an upstream. Throws
 * `ManifestError` naming the bad field.
 */
export function parseRegistration(raw: unknown): UpstreamConfig {
  const parsed = RegistrationSchema.safeParse(raw);
  if (!parsed.success) throw firstIssue(parsed.error, "");
  const m = parsed.data;
  const tools = Array.isArray(m.tools) ? { allow: m.tools } : m.tools;
  return {
    name: m.server_name,
    transport: m.transport ?? "streamable-http",
    url: m.endpoint,
    version: m.version,
    ...(tools ? { tools } : {}),
    ...(m.health_check ? { health_check: m.health_check } : {}),
    ...(m.prefix !== undefined ? { prefix: m.prefix } : {}),
    ...(m.timeout_ms !== undefined ? { timeout_ms: m.timeout_ms } : {}),
    ...(m.headers !== undefined ? { headers: m.headers } : {}),
  };
}

/** The exposed name of an upstream tool. */
export function exposedName(upstream: UpstreamConfig, tool: string): string {
  return `${upstream.prefix ?? `${upstream.name}__`}${tool}`;
}

/** Whether the upstream's tools filter lets this tool through. */
export function toolAllowed(upstream: UpstreamConfig, tool: string): boolean {
  const { allow, deny } = upstream.tools ?? {};
  if (allow && !allow.includes(tool)) return false;
  return !(deny && deny.includes(tool));
}

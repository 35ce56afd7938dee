/**
 * The only reader of `Deno.env` and command-line flags. Everything else receives
 * a `Readonly<Config>` and never looks at the environment itself.
 */
import { parseArgs } from "node:util";

/** How Streamable HTTP answers a POST that carries requests. */
export type ResponseMode = "sse" | "json";

/** Everything the server needs to know at start. */
export interface Config {
  readonly command: string;
  /** Positional arguments after the command (e.g. the bundle path of `verify`). */
  readonly args: readonly string[];
  readonly port: number;
  readonly host: string;
  /** KV path; `undefined` means "open with no path" (Deno Deploy). */
  readonly kvPath: string | undefined;
  readonly allowedHosts: readonly string[];
  readonly allowedOrigins: readonly string[];
  /**
   * --public-url: the base URL clients reach this server at (behind a proxy or a
   * real hostname). Its host is allowed as Host and its origin as Origin, and
   * it is the base of the URLs the server advertises.
   */
  readonly publicUrl: string | undefined;
  /** Peers whose X-Forwarded-For names the client (rate limits per client IP). */
  readonly trustedProxies: readonly string[];
  readonly token: string | undefined;
  readonly sessionTtlMs: number;
  readonly maxBodyBytes: number;
  readonly requestTimeoutMs: number;
  readonly toolTimeoutMs: number;
  readonly responseMode: ResponseMode;
  readonly maxEventsPerSession: number;
  /** Bytes of SSE events kept per session for resumption; the oldest go first. */
  readonly maxEventBytesPerSession: number;
  /** Streamable HTTP sessions (and, separately, legacy SSE streams) this process holds at once. */
  readonly maxSessions: number;
  /** Of those, per authenticated principal. */
  readonly maxSessionsPerPrincipal: number;
  /** Of those, per client IP. */
  readonly maxSessionsPerIp: number;
  /** Legacy SSE streams open at once per client IP (and per authenticated principal). */
  readonly maxSsePerClient: number;
  /** 2026-07-28 tasks (`io.modelcontextprotocol/tasks`) one principal holds at once. */
  readonly maxTasksPerPrincipal: number;
  /** How long a task is kept (ms; a held task at least as long as its hold). */
  readonly taskTtlMs: number;
  /** How long a task-declaring client's call runs before it is answered with a task (ms). */
  readonly taskAfterMs: number;
  readonly conformanceFixtures: boolean;
  readonly logLevel: LogLevel;
  readonly onDeploy: boolean;
  /** Checkpoint signing key string (C2SP note PRIVATE+KEY form), from WARDEN_SIGNING_KEY. */
  readonly signingKey: string | undefined;
  /** File holding the signing key string (--signing-key); read by main.ts. */
  readonly signingKeyFile: string | undefined;
  /** Upstream credential key string, from WARDEN_CREDENTIAL_KEY. */
  readonly credentialKey: string | undefined;
  /** Bearer key for the chat endpoint of secure_execute kind prompt (WARDEN_CHAT_API_KEY only). */
  readonly chatApiKey: string | undefined;
  /** Bearer key for the context embeddings endpoint (WARDEN_EMBEDDINGS_API_KEY only). */
  readonly embeddingsApiKey: string | undefined;
  /** File holding the upstream credential key (--credential-key); default `<kv>.credential-key`. */
  readonly credentialKeyFile: string | undefined;
  /** The log's origin line; undefined means "the one in KV, else warden/<hostname>". */
  readonly origin: string | undefined;
  readonly checkpointIntervalMs: number;
  /** Path of the policy file (read by main.ts). */
  readonly policyFile: string | undefined;
  /** Operator name for keygen/approve/deny. */
  readonly operatorName: string | undefined;
  /** Whether tool calls are sealed into the vault (off only for benchmarks). */
  readonly sealing: boolean;
  /** `export --out`. */
  readonly out: string | undefined;
  /** `verify --key`: the verifier key trusted out of band. */
  readonly key: string | undefined;
  /** `verify --url`: a running server to audit. */
  readonly url: string | undefined;
  /** `verify --checkpoint`: files of signed checkpoints held by the verifier. */
  readonly checkpointFiles: readonly string[];
  /**
   * The file the latest signed checkpoint is mirrored to, outside the KV
   * (`--checkpoint-mirror DIR` → DIR/latest.checkpoint, default
   * `<kv>.checkpoint`); undefined for :memory:, on Deno Deploy, or `none`.
   */
  readonly checkpointMirror: string | undefined;
  /** `serve --workers N`: processes sharing the port and the KV file. */
  readonly workers: number;
  /** 0 for the first process; 1…N−1 for the workers it started (WARDEN_WORKER_INDEX). */
  readonly workerIndex: number;
  /** `verify --allow-unsigned-tail`: entries after the last signed checkpoint only warn. */
  readonly allowUnsignedTail: boolean;
  /** `$HOME/.warden`, where the README keeps operator keys; never readable by file tools. */
  readonly keyDir: string | undefined;
  /** The upstreams file (--upstreams), read by main.ts. */
  readonly upstreamsFile: string | undefined;
  /** Bearer token for POST /api/servers/register and DELETE /api/servers/:name. */
  readonly registrationToken: string | undefined;
  /** Hosts or CIDRs a registration may name although private or loopback. */
  readonly registryAllowHosts: readonly string[];
  /**
   * Announce: the other gateway's base URL this Warden registers itself with
   * (POST `<base>/api/servers/register`), with its token, the name announced
   * and the base URL the other gateway reaches this Warden at.
   */
  readonly announce?: {
    readonly url: string;
    readonly token: string;
    readonly name: string;
    /** undefined: `http://<host>:<bound port>`. */
    readonly publicUrl: string | undefined;
    readonly checkIntervalMs: number;
    /** A bearer token of this Warden the other gateway presents when calling it. */
    readonly credential?: string;
  };
  /** `--auth oauth`: the built-in OAuth authorization server. */
  readonly auth: "oauth" | undefined;
  /** Public base URL (the OAuth issuer). */
  readonly issuer: string | undefined;
  /** Hosts whose CIMD documents may be plain http or private (tests). */
  readonly oauthCimdAllowHosts: readonly string[];
  /** Resources Warden's AS may issue token-exchange and client-credentials tokens for. */
  readonly oauthExchangeAudiences: readonly string[];
  /** `--oidc-issuer`: access tokens of an external OpenID provider are accepted. */
  readonly oidc?: OidcConfig;
}

/** Federation to an external OpenID provider (`--oidc-*`). */
export interface OidcConfig {
  readonly issuer: string;
  /** undefined: Warden's resource URL, `<issuer or public URL>/mcp`. */
  readonly audience: string | undefined;
  readonly rolesClaim: string;
  /** Provider value → Warden role; undefined: the values are role names. */
  readonly roleMap: ReadonlyMap<string, string> | undefined;
  readonly algorithms: readonly string[];
  readonly allowHosts: readonly string[];
  readonly fetchTimeoutMs: number;
  /** `--oidc-client-id`: people may sign in at /login through the provider. */
  readonly login?: OidcLoginConfig;
}

/** Login federation: Warden as a relying party of the provider. */
export interface OidcLoginConfig {
  readonly clientId: string;
  /** undefined: a public client (PKCE only). Never logged. */
  readonly clientSecret: string | undefined;
  /** Scopes asked for at the provider; `openid` first. */
  readonly scopes: readonly string[];
}

/** What `--oidc-algorithms` may name: asymmetric JWS algorithms only (no `none`, no HS*). */
export const OIDC_ALGORITHMS: readonly string[] = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "Ed25519",
];

export type LogLevel = "debug" | "info" | "warn" | "error";

/** Thrown for a bad flag or environment value; main.ts prints it and exits 2. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** One flag: its env fallback, default and help text, in one place so --help cannot drift. */
interface FlagSpec {
  readonly name: string;
  readonly env?: string;
  readonly type: "string" | "boolean";
  /** The flag may be given several times. */
  readonly multiple?: boolean;
  readonly placeholder?: string;
  readonly help: string;
  readonly default?: string;
}

/** Every flag `serve` and `stdio` understand. */
export const FLAGS: readonly FlagSpec[] = [
  {
    name: "port",
    env: "PORT",
    type: "string",
    placeholder: "N",
    default: "8000",
    help: "TCP port to listen on; 0 picks a free port (the first log line says which)",
  },
  {
    name: "host",
    env: "HOST",
    type: "string",
    placeholder: "ADDR",
    default: "127.0.0.1",
    help: "address to bind; a non-loopback address requires --token or --auth oauth",
  },
  {
    name: "kv",
    env: "WARDEN_KV",
    type: "string",
    placeholder: "PATH",
    default: "./warden.db",
    help: "Deno KV file (':memory:' for a throw-away store; ignored on Deno Deploy)",
  },
  {
    name: "allowed-hosts",
    env: "WARDEN_ALLOWED_HOSTS",
    type: "string",
    placeholder: "LIST",
    help:
      "comma-separated Host values accepted (default: localhost, 127.0.0.1, [::1] with the bound port)",
  },
  {
    name: "allowed-origins",
    env: "WARDEN_ALLOWED_ORIGINS",
    type: "string",
    placeholder: "LIST",
    help:
      "comma-separated Origin values accepted (default: http(s)://<each allowed host> with the bound port)",
  },
  {
    name: "trusted-proxies",
    env: "WARDEN_TRUSTED_PROXIES",
    type: "string",
    placeholder: "LIST",
    help: "comma-separated proxy IPs whose X-Forwarded-For names the client (default: none)",
  },
  {
    name: "token",
    env: "WARDEN_TOKEN",
    type: "string",
    placeholder: "SECRET",
    help: "static bearer token every HTTP request must carry (Authorization: Bearer …)",
  },
  {
    name: "session-ttl",
    env: "WARDEN_SESSION_TTL",
    type: "string",
    placeholder: "SECONDS",
    default: "3600",
    help: "idle time after which an MCP session expires",
  },
  {
    name: "max-body",
    env: "WARDEN_MAX_BODY",
    type: "string",
    placeholder: "BYTES",
    default: "1048576",
    help: "largest request body accepted (413 above it)",
  },
  {
    name: "request-timeout",
    env: "WARDEN_REQUEST_TIMEOUT",
    type: "string",
    placeholder: "MS",
    default: "30000",
    help: "time allowed to receive a request body and to answer a non-streaming request",
  },
  {
    name: "tool-timeout",
    env: "WARDEN_TOOL_TIMEOUT",
    type: "string",
    placeholder: "MS",
    default: "25000",
    help: "time a single tool call may run before it becomes a tool error",
  },
  {
    name: "response-mode",
    env: "WARDEN_RESPONSE_MODE",
    type: "string",
    placeholder: "sse|json",
    default: "sse",
    help:
      "how /mcp answers POSTs: 'sse' streams (needed for sampling/elicitation), 'json' sends one JSON body",
  },
  {
    name: "max-events",
    env: "WARDEN_MAX_EVENTS",
    type: "string",
    placeholder: "N",
    default: "1000",
    help: "SSE events kept per session for resumption with Last-Event-ID",
  },
  {
    name: "max-event-bytes",
    env: "WARDEN_MAX_EVENT_BYTES",
    type: "string",
    placeholder: "BYTES",
    default: "4194304",
    help: "bytes of SSE events kept per session for resumption (the oldest are dropped first)",
  },
  {
    name: "max-sessions",
    env: "WARDEN_MAX_SESSIONS",
    type: "string",
    placeholder: "N",
    default: "4096",
    help:
      "Streamable HTTP sessions one process holds and all processes on the KV open (and legacy SSE streams per process); more get 503",
  },
  {
    name: "max-sessions-per-principal",
    env: "WARDEN_MAX_SESSIONS_PER_PRINCIPAL",
    type: "string",
    placeholder: "N",
    default: "256",
    help: "Streamable HTTP sessions one authenticated principal holds across the KV; more get 429",
  },
  {
    name: "max-tasks-per-principal",
    env: "WARDEN_MAX_TASKS_PER_PRINCIPAL",
    type: "string",
    placeholder: "N",
    default: "32",
    help:
      "Live 2026-07-28 tasks one principal holds across the KV; past it a call is answered without a task",
  },
  {
    name: "task-ttl",
    env: "WARDEN_TASK_TTL",
    type: "string",
    placeholder: "SECONDS",
    default: "3600",
    help: "How long a 2026-07-28 task is kept (a held call's task at least as long as its hold)",
  },
  {
    name: "task-after",
    env: "WARDEN_TASK_AFTER",
    type: "string",
    placeholder: "MS",
    default: "1000",
    help:
      "How long a call of a client that declares the tasks extension runs before it is answered with a task",
  },
  {
    name: "max-sessions-per-ip",
    env: "WARDEN_MAX_SESSIONS_PER_IP",
    type: "string",
    placeholder: "N",
    default: "256",
    help: "Streamable HTTP sessions one client IP holds across the KV; more get 429",
  },
  {
    name: "max-sse-per-client",
    env: "WARDEN_MAX_SSE_PER_CLIENT",
    type: "string",
    placeholder: "N",
    default: "16",
    help:
      "legacy SSE streams open at once per client IP (and per authenticated principal), and separately 2026-07-28 subscriptions/listen streams",
  },
  {
    name: "log-level",
    env: "WARDEN_LOG_LEVEL",
    type: "string",
    placeholder: "LEVEL",
    default: "info",
    help: "debug | info | warn | error (JSON lines on stderr)",
  },
  {
    name: "origin",
    env: "WARDEN_ORIGIN",
    type: "string",
    placeholder: "TEXT",
    help:
      "the vault's checkpoint origin, fixed when the log is created (default warden/<hostname>)",
  },
  {
    name: "signing-key",
    type: "string",
    placeholder: "FILE",
    help:
      "file holding the checkpoint signing key (PRIVATE+KEY+… note key); or set WARDEN_SIGNING_KEY to the key itself",
  },
  {
    name: "credential-key",
    type: "string",
    placeholder: "FILE",
    help:
      "file holding the key that encrypts upstream credentials in KV; or set WARDEN_CREDENTIAL_KEY to the key itself",
  },
  {
    name: "workers",
    env: "WARDEN_WORKERS",
    type: "string",
    placeholder: "N",
    default: "1",
    help:
      "serve: N processes on one port (SO_REUSEPORT, Linux) and one KV file, supervised by the first; needs --kv FILE, not on Deno Deploy",
  },
  {
    name: "checkpoint-mirror",
    env: "WARDEN_CHECKPOINT_MIRROR",
    type: "string",
    placeholder: "DIR",
    help:
      "directory where the latest signed checkpoint is kept outside the KV (default: <kv>.checkpoint beside the KV file; none for :memory: and on Deno Deploy; 'none' turns it off)",
  },
  {
    name: "checkpoint-interval",
    env: "WARDEN_CHECKPOINT_INTERVAL",
    type: "string",
    placeholder: "MS",
    default: "1000",
    help: "how often a checkpoint is signed while entries arrive (and always on shutdown)",
  },
  {
    name: "policy",
    env: "WARDEN_POLICY",
    type: "string",
    placeholder: "FILE",
    help: "governance policy (JSON); the built-in default when absent",
  },
  {
    name: "name",
    type: "string",
    placeholder: "NAME",
    help:
      "keygen/approve/deny: the operator name (default: the one in the key file, else 'operator')",
  },
  {
    name: "sealing",
    env: "WARDEN_SEALING",
    type: "string",
    placeholder: "on|off",
    default: "on",
    help: "seal every tool call into the vault; 'off' exists only to measure its cost",
  },
  {
    name: "out",
    type: "string",
    placeholder: "FILE",
    help: "export: where to write the bundle; keygen: the directory for the key pair",
  },
  {
    name: "key",
    type: "string",
    placeholder: "VKEY",
    help:
      "verify: the verifier key you trust (name+keyid+base64); approve/deny: the operator key file",
  },
  {
    name: "checkpoint",
    type: "string",
    multiple: true,
    placeholder: "FILE",
    help: "verify: a signed checkpoint you obtained earlier; the log must contain it (repeatable)",
  },
  {
    name: "allow-unsigned-tail",
    type: "boolean",
    help:
      "verify: with --key, entries after the last signed checkpoint are a warning, not a failure",
  },
  {
    name: "url",
    type: "string",
    placeholder: "URL",
    help:
      "the running server (with or without /mcp) for verify, approve/deny/approve-tool and health",
  },
  {
    name: "conformance-fixtures",
    type: "boolean",
    help:
      "TEST ONLY: also serve the test_* tools, resources and prompts of the MCP conformance suite",
  },
  {
    name: "upstreams",
    env: "WARDEN_UPSTREAMS",
    type: "string",
    placeholder: "FILE",
    help: "JSON file of upstream MCP servers to govern and re-expose as <server>__<tool>",
  },
  {
    name: "registration-token",
    env: "WARDEN_REGISTRATION_TOKEN",
    type: "string",
    placeholder: "SECRET",
    help: "bearer token (≥ 16 chars) for POST /api/servers/register and DELETE /api/servers/:name",
  },
  {
    name: "registry-allow-hosts",
    env: "WARDEN_REGISTRY_ALLOW_HOSTS",
    type: "string",
    placeholder: "LIST",
    help: "comma-separated hosts or CIDRs a registration may name although private or loopback",
  },
  {
    name: "register-url",
    env: "WARDEN_REGISTER_URL",
    type: "string",
    placeholder: "URL",
    help:
      "announce: base URL of another gateway to register this Warden with on start (POST <URL>/api/servers/register); deregistered on shutdown",
  },
  {
    name: "register-token",
    env: "WARDEN_REGISTER_TOKEN",
    type: "string",
    placeholder: "SECRET",
    help: "announce: the other gateway's registration token (required with --register-url)",
  },
  {
    name: "register-credential",
    env: "WARDEN_REGISTER_CREDENTIAL",
    type: "string",
    placeholder: "SECRET",
    help:
      "announce: a bearer token of this Warden (warden token create) that the other gateway presents when it calls this one; required with --token",
  },
  {
    name: "register-name",
    env: "WARDEN_REGISTER_NAME",
    type: "string",
    placeholder: "NAME",
    default: "warden",
    help: "announce: the server_name this Warden registers as (its tools appear as NAME__<tool>)",
  },
  {
    name: "register-interval",
    env: "WARDEN_REGISTER_INTERVAL",
    type: "string",
    placeholder: "S",
    default: "30",
    help:
      "announce: seconds between checks that the other gateway still lists this Warden (re-registers if not)",
  },
  {
    name: "public-url",
    env: "WARDEN_PUBLIC_URL",
    type: "string",
    placeholder: "URL",
    help:
      "base URL clients and other gateways reach this Warden at (its host is added to the allowed Hosts and Origins; default http://<host>:<port>)",
  },
  {
    name: "auth",
    env: "WARDEN_AUTH",
    type: "string",
    placeholder: "MODE",
    help: "'oauth' runs the built-in OAuth 2.1 authorization server (users log in at /login)",
  },
  {
    name: "issuer",
    env: "WARDEN_ISSUER",
    type: "string",
    placeholder: "URL",
    help: "public base URL of this server, the OAuth issuer (default: http://<host>:<bound port>)",
  },
  {
    name: "oauth-cimd-allow-hosts",
    env: "WARDEN_OAUTH_CIMD_ALLOW_HOSTS",
    type: "string",
    placeholder: "LIST",
    help:
      "hosts (host or host:port) whose client metadata documents may be plain http or private (tests)",
  },
  {
    name: "oauth-exchange-audiences",
    env: "WARDEN_OAUTH_EXCHANGE_AUDIENCES",
    type: "string",
    placeholder: "LIST",
    help:
      "resource URLs (other servers' /mcp) the built-in OAuth server may issue RFC 8693 token-exchange and client-credentials tokens for",
  },
  {
    name: "oidc-issuer",
    env: "WARDEN_OIDC_ISSUER",
    type: "string",
    placeholder: "URL",
    help:
      "accept access tokens (JWTs) of this external OpenID provider (https; discovery and keys read from it)",
  },
  {
    name: "oidc-audience",
    env: "WARDEN_OIDC_AUDIENCE",
    type: "string",
    placeholder: "AUD",
    help: "the aud external tokens must carry (default: this server's resource URL, <base>/mcp)",
  },
  {
    name: "oidc-roles-claim",
    env: "WARDEN_OIDC_ROLES_CLAIM",
    type: "string",
    placeholder: "CLAIM",
    default: "roles",
    help: "the token claim (string or array) whose values give Warden roles",
  },
  {
    name: "oidc-role-map",
    env: "WARDEN_OIDC_ROLE_MAP",
    type: "string",
    placeholder: "LIST",
    help:
      "value=role pairs mapping the claim's values to Warden roles; unmapped values grant nothing (default: values are role names)",
  },
  {
    name: "oidc-algorithms",
    env: "WARDEN_OIDC_ALGORITHMS",
    type: "string",
    placeholder: "LIST",
    default: "RS256,PS256,ES256,EdDSA",
    help: "JWS algorithms external tokens may use (asymmetric only)",
  },
  {
    name: "oidc-fetch-timeout",
    env: "WARDEN_OIDC_FETCH_TIMEOUT",
    type: "string",
    placeholder: "MS",
    default: "5000",
    help: "time limit of one read of the provider's metadata or key set",
  },
  {
    name: "oidc-client-id",
    env: "WARDEN_OIDC_CLIENT_ID",
    type: "string",
    placeholder: "ID",
    help:
      "people may sign in at /login through the --oidc-issuer provider, Warden being this client of it (needs --auth oauth; its redirect URI is <base>/login/oidc/callback)",
  },
  {
    name: "oidc-client-secret",
    env: "WARDEN_OIDC_CLIENT_SECRET",
    type: "string",
    placeholder: "SECRET",
    help:
      "the client secret of --oidc-client-id at the provider (prefer the environment variable; none: a public client with PKCE)",
  },
  {
    name: "oidc-scopes",
    env: "WARDEN_OIDC_SCOPES",
    type: "string",
    placeholder: "LIST",
    default: "openid",
    help:
      "scopes asked for when signing in at the provider (openid is always asked; add the one that puts the roles claim in the ID token)",
  },
  {
    name: "oidc-allow-hosts",
    env: "WARDEN_OIDC_ALLOW_HOSTS",
    type: "string",
    placeholder: "LIST",
    help: "hosts (host or host:port) the provider may be on although plain http or private (tests)",
  },
  { name: "help", type: "boolean", help: "show this help" },
];

/** The commands main.ts dispatches. */
export const COMMANDS: Readonly<Record<string, string>> = {
  serve: "run the HTTP server (default)",
  stdio: "serve the same tools over stdin/stdout (logs go to stderr)",
  health: "probe a running server's /health on --host/--port; exit 0 when healthy",
  export: "write the vault (entries, checkpoints, verifier key) to --out FILE, from --kv",
  keygen: "write an operator key pair to --out DIR (operator.key private, operator.pub public)",
  approve: "approve HOLD_ID: sign its digest with --key FILE and send it to --url URL",
  deny: "deny HOLD_ID: sign a denial with --key FILE and send it to --url URL",
  "approve-tool":
    "approve-tool SERVER TOOL: sign the upstream tool's current definition with --key FILE at --url URL",
  token: "token create|list|revoke: bearer tokens for principals in --kv (see below)",
  user: "user add|list|remove: people who log in, in --kv (password from stdin or WARDEN_PASSWORD)",
  upstream:
    "upstream credential set|list|remove|keygen: encrypted credentials for upstreams, in --kv (secret from stdin)",
  verify: "verify BUNDLE offline (or --url URL): every hash, the chain, signatures, consistency",
};

/** Text printed by --help; generated from FLAGS so it always lists every flag. */
export function helpText(): string {
  const lines = [
    "Warden — a governed MCP server and gateway",
    "",
    "Usage: warden [command] [flags]",
    "",
    "Commands:",
    ...Object.entries(COMMANDS).map(([name, help]) => `  ${name.padEnd(10)} ${help}`),
    "",
    "Flags (each also read from the environment variable shown):",
  ];
  for (const f of FLAGS) {
    const left = `  --${f.name}${f.placeholder ? ` ${f.placeholder}` : ""}`;
    const env = f.env ? ` [${f.env}]` : "";
    const def = f.default !== undefined ? ` (default ${f.default})` : "";
    lines.push(`${left.padEnd(34)} ${f.help}${def}${env}`);
  }
  return lines.join("\n") + "\n";
}

// deno-lint-ignore no-control-regex -- a checkpoint origin must be one printable line
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);

/** True when an address only accepts connections from this machine. */
export function isLoopbackHost(host: string): boolean {
  return LOOPBACK.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function intIn(name: string, raw: string, min: number, max: number): number {
  if (!/^\d+$/.test(raw.trim())) {
    throw new ConfigError(`--${name} must be a whole number, got "${raw}"`);
  }
  const n = Number(raw);
  if (n < min || n > max) {
    throw new ConfigError(`--${name} must be between ${min} and ${max}, got ${n}`);
  }
  return n;
}

function onOff(name: string, raw: string): boolean {
  if (raw !== "on" && raw !== "off") {
    throw new ConfigError(`--${name} must be "on" or "off", got "${raw}"`);
  }
  return raw === "on";
}

/** `--oidc-*`, validated; undefined without `--oidc-issuer`. */
function oidcConfig(get: (name: string) => string | undefined): OidcConfig | undefined {
  const issuer = get("oidc-issuer");
  const allowHosts = list(get("oidc-allow-hosts"));
  if (issuer === undefined) {
    for (const f of ["oidc-audience", "oidc-role-map", "oidc-client-id", "oidc-client-secret"]) {
      if (get(f) !== undefined) throw new ConfigError(`--${f} needs --oidc-issuer`);
    }
    return undefined;
  }
  let u: URL | undefined;
  try {
    u = new URL(issuer);
  } catch { /* reported below */ }
  if (!u || u.search || u.hash || u.username || u.password) {
    throw new ConfigError(`--oidc-issuer must be a URL without query or credentials: ${issuer}`);
  }
  const allowed = allowHosts.includes(u.host) || allowHosts.includes(u.hostname);
  if (u.protocol !== "https:" && !(u.protocol === "http:" && allowed)) {
    throw new ConfigError(`--oidc-issuer must be an https URL, not ${issuer}`);
  }
  const algorithms = list(get("oidc-algorithms"));
  if (algorithms.length === 0 || algorithms.some((a) => !OIDC_ALGORITHMS.includes(a))) {
    throw new ConfigError(
      `--oidc-algorithms may list only ${OIDC_ALGORITHMS.join(", ")} (never none or HS*)`,
    );
  }
  const rolesClaim = get("oidc-roles-claim")!;
  if (!/^[A-Za-z0-9_:./-]{1,100}$/.test(rolesClaim)) {
    throw new ConfigError("--oidc-roles-claim must be a claim name");
  }
  const mapRaw = get("oidc-role-map");
  let roleMap: Map<string, string> | undefined;
  if (mapRaw !== undefined) {
    roleMap = new Map();
    for (const pair of list(mapRaw)) {
      const i = pair.lastIndexOf("=");
      const role = pair.slice(i + 1);
      if (i <= 0 || !/^[A-Za-z0-9_.@-]{1,64}$/.test(role)) {
        throw new ConfigError(`--oidc-role-map: "${pair}" is not value=role`);
      }
      roleMap.set(pair.slice(0, i), role);
    }
  }
  const audience = get("oidc-audience");
  if (audience !== undefined && (audience === "" || audience.length > 2048)) {
    throw new ConfigError("--oidc-audience must be a non-empty string");
  }
  const clientId = get("oidc-client-id");
  const clientSecret = get("oidc-client-secret");
  if (clientSecret !== undefined && clientId === undefined) {
    throw new ConfigError("--oidc-client-secret needs --oidc-client-id");
  }
  if (clientId !== undefined && (clientId === "" || clientId.length > 255)) {
    throw new ConfigError("--oidc-client-id must be 1 to 255 characters");
  }
  if (clientSecret !== undefined && (clientSecret === "" || clientSecret.length > 1024)) {
    throw new ConfigError("--oidc-client-secret must be 1 to 1024 characters");
  }
  const scopes = list(get("oidc-scopes")).flatMap((s) => s.split(" ")).filter((s) => s !== "");
  if (scopes.some((s) => !/^[\x21\x23-\x5B\x5D-\x7E]{1,100}$/.test(s)) || scopes.length > 20) {
    throw new ConfigError("--oidc-scopes must list at most 20 scope tokens (RFC 6749 §3.3)");
  }
  return {
    issuer,
    audience,
    rolesClaim,
    roleMap,
    algorithms: Object.freeze(algorithms),
    allowHosts: Object.freeze(allowHosts),
    fetchTimeoutMs: intIn("oidc-fetch-timeout", get("oidc-fetch-timeout")!, 100, 60_000),
    ...(clientId !== undefined
      ? {
        login: Object.freeze({
          clientId,
          clientSecret,
          scopes: Object.freeze([...new Set(["openid", ...scopes])]),
        }),
      }
      : {}),
  };
}

function list(raw: string | undefined): string[] {
  return (raw ?? "").split(",").map((s) => s.trim()).filter((s) => s.length > 0);
}

/** The Host values accepted by default: loopback names with the bound port. */
export function defaultAllowedHosts(port: number): string[] {
  return ["localhost", "127.0.0.1", "[::1]"].flatMap((h) => [`${h}:${port}`, h]);
}

/** An http(s) base URL without credentials, query or fragment; trailing slashes dropped. */
function baseUrl(flag: string, raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ConfigError(`--${flag} must be an http(s) URL, got "${raw.slice(0, 200)}"`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new ConfigError(`--${flag} must be an http(s) URL, got "${raw.slice(0, 200)}"`);
  }
  if (u.username !== "" || u.password !== "" || u.search !== "" || u.hash !== "") {
    throw new ConfigError(`--${flag} must be a base URL without credentials, query or fragment`);
  }
  if (/\/(api\/servers(\/register)?|mcp)\/?$/.test(u.pathname)) {
    throw new ConfigError(
      `--${flag} is the base URL (e.g. http://gateway:8000), not ${u.pathname}: ` +
        "Warden adds the path itself",
    );
  }
  return u.href.replace(/\/+$/, "");
}

/** The announce settings, refused with a message naming what is missing or wrong. */
function announceConfig(
  get: (name: string) => string | undefined,
  host: string,
  token: string | undefined,
  onDeploy: boolean,
): Config["announce"] {
  const url = get("register-url");
  const registerToken = get("register-token");
  const publicUrl = get("public-url");
  if (url === undefined) {
    if (registerToken !== undefined) {
      throw new ConfigError(
        "--register-token (WARDEN_REGISTER_TOKEN) is set but --register-url (WARDEN_REGISTER_URL) " +
          "is not: set the other gateway's base URL, or unset the token",
      );
    }
    return undefined;
  }
  const base = baseUrl("register-url", url);
  if (registerToken === undefined) {
    throw new ConfigError(
      "--register-url (WARDEN_REGISTER_URL) needs --register-token (WARDEN_REGISTER_TOKEN): " +
        "the other gateway's --registration-token",
    );
  }
  if (registerToken.length < 16) {
    throw new ConfigError("--register-token must be at least 16 characters");
  }
  const name = get("register-name")!;
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$/.test(name) || name.includes("__")) {
    throw new ConfigError(
      `--register-name must be 1-48 letters, digits, '_' or '-' without "__", got "${
        name.slice(0, 60)
      }"`,
    );
  }
  const credential = get("register-credential");
  if (
    credential !== undefined &&
    (credential.length < 16 || /\s/.test(credential) || CONTROL_CHARS.test(credential))
  ) {
    throw new ConfigError(
      "--register-credential must be at least 16 characters without spaces or control characters",
    );
  }
  if (token !== undefined && credential === undefined) {
    throw new ConfigError(
      "--register-url with --token needs --register-credential (WARDEN_REGISTER_CREDENTIAL): a " +
        "token of this Warden for the other gateway to present (make one with `warden token " +
        "create --name front --roles …`; never hand it --token itself)",
    );
  }
  if (credential !== undefined && credential === token) {
    throw new ConfigError(
      "--register-credential must not be --token: the bootstrap token is admin; mint a token " +
        "with only the roles the other gateway needs (warden token create)",
    );
  }
  const wildcard = host === "0.0.0.0" || host === "::" || host === "[::]";
  if (publicUrl === undefined && onDeploy) {
    throw new ConfigError(
      "WARDEN_REGISTER_URL on Deno Deploy needs WARDEN_PUBLIC_URL: this deployment's base URL",
    );
  }
  if (publicUrl === undefined && wildcard) {
    throw new ConfigError(
      `--register-url with --host ${host} needs --public-url (WARDEN_PUBLIC_URL): the address ` +
        "the other gateway reaches this Warden at",
    );
  }
  const pub = publicUrl === undefined ? undefined : baseUrl("public-url", publicUrl);
  if (pub !== undefined && pub === base) {
    throw new ConfigError("--register-url names this Warden itself (--public-url is the same)");
  }
  const checkIntervalMs = intIn("register-interval", get("register-interval")!, 1, 86_400) * 1000;
  return {
    url: base,
    token: registerToken,
    name,
    publicUrl: pub,
    checkIntervalMs,
    ...(credential !== undefined ? { credential } : {}),
  };
}

/**
 * Builds the configuration from argv and an environment getter. Flags win over
 * the environment, the environment over defaults. Throws `ConfigError` with a
 * message naming the flag for any bad value.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ConfigError, loadConfig } from "./config.ts";
 * const env = (name: string) => name === "PORT" ? "9000" : undefined;
 * assert.equal(loadConfig(["serve"], env).port, 9000);
 * assert.equal(loadConfig(["serve", "--port", "0"], env).port, 0); // the flag wins
 * assert.throws(() => loadConfig(["serve", "--port", "http"], env), ConfigError);
 * ```
 */
// Kept whole: one table of flags and environment variables, each line one setting; splitting it
// would scatter the precedence rules (flag over environment over default).
export function loadConfig(
  argv: readonly string[],
  getEnv: (name: string) => string | undefined,
): Readonly<Config> {
  const options: Record<string, { type: "string" | "boolean"; multiple?: boolean }> = {};
  for (const f of FLAGS) {
    options[f.name] = { type: f.type, ...(f.multiple ? { multiple: true } : {}) };
  }
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  const values = parsed.values as Record<string, string | boolean | string[] | undefined>;
  const get = (name: string): string | undefined => {
    const spec = FLAGS.find((f) => f.name === name)!;
    const v = values[name];
    if (typeof v === "string") return v;
    if (spec.env) {
      const e = getEnv(spec.env);
      if (e !== undefined && e !== "") return e;
    }
    return spec.default;
  };
  const [command = "serve", ...args] = parsed.positionals;
  const onDeploy = (getEnv("DENO_DEPLOYMENT_ID") ?? "") !== "";
  const port = intIn("port", get("port")!, 0, 65535);
  const host = get("host")!;
  const responseMode = get("response-mode");
  if (responseMode !== "sse" && responseMode !== "json") {
    throw new ConfigError(`--response-mode must be "sse" or "json", got "${responseMode}"`);
  }
  const logLevel = get("log-level");
  if (!["debug", "info", "warn", "error"].includes(logLevel!)) {
    throw new ConfigError(`--log-level must be debug, info, warn or error, got "${logLevel}"`);
  }
  const auth = get("auth");
  if (auth !== undefined && auth !== "oauth") {
    throw new ConfigError(`--auth must be "oauth", not ${JSON.stringify(auth)}`);
  }
  const issuer = get("issuer");
  if (issuer !== undefined) {
    let u: URL | undefined;
    try {
      u = new URL(issuer);
    } catch { /* reported below */ }
    if (!u || (u.protocol !== "https:" && u.protocol !== "http:") || u.search || u.hash) {
      throw new ConfigError(`--issuer must be an http(s) URL without query, not ${issuer}`);
    }
  }
  const oidc = oidcConfig(get);
  if (oidc?.login && auth !== "oauth") {
    throw new ConfigError(
      "--oidc-client-id needs --auth oauth (the sign-in ends in Warden's own consent and tokens)",
    );
  }
  const registrationToken = get("registration-token");
  if (registrationToken !== undefined && registrationToken.length < 16) {
    throw new ConfigError("--registration-token must be at least 16 characters");
  }
  const token = get("token");
  if (token !== undefined && token.length < 16) {
    throw new ConfigError("--token must be at least 16 characters");
  }
  const publicUrl = get("public-url");
  const announce = announceConfig(get, host, token, onDeploy);
  const allowedHosts = list(get("allowed-hosts"));
  const allowedOrigins = list(get("allowed-origins"));
  const kvPath = onDeploy ? undefined : get("kv")!;
  const mirrorFlag = get("checkpoint-mirror");
  if (mirrorFlag !== undefined && (mirrorFlag === "" || CONTROL_CHARS.test(mirrorFlag))) {
    throw new ConfigError("--checkpoint-mirror must be a directory, or none");
  }
  if (onDeploy && mirrorFlag !== undefined && mirrorFlag !== "none") {
    throw new ConfigError(
      "--checkpoint-mirror: Deno Deploy has no writable files; keep the latest checkpoint with `warden verify --url URL --checkpoint FILE` from outside instead",
    );
  }
  const checkpointMirror = mirrorFlag === "none"
    ? undefined
    : mirrorFlag !== undefined
    ? `${mirrorFlag.replace(/\/+$/, "") || "/"}/latest.checkpoint`
    : kvPath === undefined || kvPath === ":memory:"
    ? undefined
    : `${kvPath}.checkpoint`;
  const origin = get("origin");
  if (
    origin !== undefined &&
    (origin.length === 0 || origin.length > 200 || CONTROL_CHARS.test(origin))
  ) {
    throw new ConfigError("--origin must be 1 to 200 printable characters on one line");
  }
  return Object.freeze({
    command,
    args: Object.freeze(args),
    port,
    host,
    kvPath,
    allowedHosts: Object.freeze(allowedHosts),
    allowedOrigins: Object.freeze(allowedOrigins),
    trustedProxies: Object.freeze(list(get("trusted-proxies"))),
    token,
    sessionTtlMs: intIn("session-ttl", get("session-ttl")!, 1, 30 * 86400) * 1000,
    maxBodyBytes: intIn("max-body", get("max-body")!, 1024, 64 * 1024 * 1024),
    requestTimeoutMs: intIn("request-timeout", get("request-timeout")!, 100, 3_600_000),
    toolTimeoutMs: intIn("tool-timeout", get("tool-timeout")!, 10, 3_600_000),
    responseMode,
    maxEventsPerSession: intIn("max-events", get("max-events")!, 1, 100_000),
    maxEventBytesPerSession: intIn(
      "max-event-bytes",
      get("max-event-bytes")!,
      4096,
      1024 * 1024 * 1024,
    ),
    maxSessions: intIn("max-sessions", get("max-sessions")!, 1, 1_000_000),
    maxSessionsPerPrincipal: intIn(
      "max-sessions-per-principal",
      get("max-sessions-per-principal")!,
      1,
      1_000_000,
    ),
    maxSessionsPerIp: intIn("max-sessions-per-ip", get("max-sessions-per-ip")!, 1, 1_000_000),
    maxSsePerClient: intIn("max-sse-per-client", get("max-sse-per-client")!, 1, 1_000_000),
    maxTasksPerPrincipal: intIn(
      "max-tasks-per-principal",
      get("max-tasks-per-principal")!,
      1,
      100_000,
    ),
    taskTtlMs: intIn("task-ttl", get("task-ttl")!, 10, 86_400) * 1000,
    taskAfterMs: intIn("task-after", get("task-after")!, 0, 600_000),
    conformanceFixtures: values["conformance-fixtures"] === true,
    logLevel: logLevel as LogLevel,
    onDeploy,
    signingKey: getEnv("WARDEN_SIGNING_KEY") || undefined,
    signingKeyFile: get("signing-key"),
    credentialKey: getEnv("WARDEN_CREDENTIAL_KEY") || undefined,
    chatApiKey: getEnv("WARDEN_CHAT_API_KEY") || undefined,
    embeddingsApiKey: getEnv("WARDEN_EMBEDDINGS_API_KEY") || undefined,
    credentialKeyFile: get("credential-key"),
    keyDir: getEnv("HOME") ? `${getEnv("HOME")}/.warden` : undefined,
    origin,
    sealing: onOff("sealing", get("sealing")!),
    policyFile: get("policy"),
    operatorName: get("name"),
    checkpointMirror,
    workers: intIn("workers", get("workers")!, 1, 64),
    workerIndex: getEnv("WARDEN_WORKER_INDEX")
      ? intIn("WARDEN_WORKER_INDEX", getEnv("WARDEN_WORKER_INDEX")!, 1, 63)
      : 0,
    checkpointIntervalMs: intIn("checkpoint-interval", get("checkpoint-interval")!, 50, 3_600_000),
    out: get("out"),
    key: get("key"),
    url: get("url"),
    checkpointFiles: Object.freeze([...(values["checkpoint"] as string[] | undefined ?? [])]),
    allowUnsignedTail: values["allow-unsigned-tail"] === true,
    upstreamsFile: get("upstreams"),
    registrationToken,
    registryAllowHosts: Object.freeze(list(get("registry-allow-hosts"))),
    ...(announce ? { announce: Object.freeze(announce) } : {}),
    publicUrl: publicUrl === undefined ? undefined : baseUrl("public-url", publicUrl),
    auth,
    issuer: issuer?.replace(/\/+$/, ""),
    oauthCimdAllowHosts: Object.freeze(list(get("oauth-cimd-allow-hosts"))),
    oauthExchangeAudiences: Object.freeze(
      list(get("oauth-exchange-audiences")).map((a) => {
        let u: URL | undefined;
        try {
          u = new URL(a);
        } catch { /* reported below */ }
        if (
          !u || (u.protocol !== "https:" && u.protocol !== "http:") || u.search || u.hash ||
          u.username || u.password
        ) {
          throw new ConfigError(`--oauth-exchange-audiences: ${a} is not an http(s) resource URL`);
        }
        return a.replace(/\/+$/, "");
      }),
    ),
    ...(oidc ? { oidc: Object.freeze(oidc) } : {}),
    ...(values["help"] === true ? { command: "help" } : {}),
  });
}

/**
 * Refuses configurations that would expose the server without authentication.
 * Returns an error message, or undefined when the configuration is safe.
 */
export function checkExposure(config: Readonly<Config>): string | undefined {
  if (config.token !== undefined || config.auth === "oauth" || config.oidc) return undefined;
  if (config.onDeploy) {
    return "Refusing to serve on Deno Deploy without authentication: " +
      "set the WARDEN_TOKEN environment variable to a secret of at least 16 characters.";
  }
  if (isLoopbackHost(config.host)) return undefined;
  return `Refusing to listen on ${config.host} without authentication: ` +
    `set --token (or WARDEN_TOKEN) to a secret of at least 16 characters, ` +
    `or bind a loopback address with --host 127.0.0.1.`;
}

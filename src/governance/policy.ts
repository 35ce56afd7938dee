/**
 * The governance policy: a JSON document validated with zod, every field
 * optional with a default, unknown keys refused so that a typo is an error
 * rather than a silently ignored rule.
 *
 * Thresholds are written as fractions in [0, 1] with at most three decimals
 * (`0.34`), like the scores they are compared with. The vault's canonical
 * JSON accepts integers only, so `policyHash` hashes the canonical JSON of
 * the parsed policy with every floor threshold written as integer per-mille
 * (`0.34` → `340`); the three-decimal rule makes that mapping exact and
 * one-to-one. `canonicalPolicy` returns the exact text hashed.
 *
 * @module
 */

import { z } from "zod";
import { canonicalString, fromBase64, sha256, toHex } from "../lib/mod.ts";
import { PII_KINDS } from "./pii.ts";
import { FLOOR_IDS, type FloorId } from "./types.ts";

/** A floor's mode: `hard` fails as the floor says, `soft` only warns, `off` skips it. */
export type FloorMode = "hard" | "soft" | "off";

const Mode = z.enum(["hard", "soft", "off"], { error: 'expected "hard" | "soft" | "off"' });

function object<T extends z.core.$ZodLooseShape>(shape: T) {
  return z.strictObject(shape, { error: "expected an object" });
}

function integer(min: number, max?: number) {
  const error = max === undefined
    ? `expected an integer ≥ ${min}`
    : `expected an integer from ${min} to ${max}`;
  const schema = z.number({ error }).int({ error }).min(min, { error });
  return max === undefined ? schema : schema.max(max, { error });
}

const bool = () => z.boolean({ error: "expected true or false" });
const text = () =>
  z.string({ error: "expected a string" }).min(1, { error: "expected a non-empty string" });
const texts = () => z.array(text(), { error: "expected an array of strings" });

function isThreshold(value: number): boolean {
  return value >= 0 && value <= 1 && Math.abs(value * 1000 - Math.round(value * 1000)) < 1e-9;
}

const Threshold = z.number({ error: "expected a number" }).refine(isThreshold, {
  error: "expected a number from 0 to 1 with at most 3 decimals",
});

function floor(mode: FloorMode) {
  return object({ mode: Mode.default(mode) }).prefault({});
}

function floorWithThreshold(mode: FloorMode, threshold: number) {
  return object({ mode: Mode.default(mode), threshold: Threshold.default(threshold) }).prefault({});
}

// `threshold` exists only where a floor compares a graded score with it;
// elsewhere it would be silently ignored, so it is refused as an unknown key.
const Floors = object({
  F1: floor("hard"),
  /** Minimum share of grounded claims. */
  F2: floorWithThreshold("hard", 1),
  F3: floor("hard"),
  F4: floor("hard"),
  F5: floor("hard"),
  /** Minimum F6 score (1 = any finding fails). */
  F6: floorWithThreshold("hard", 1),
  /** Maximum Ω0. */
  F7: floorWithThreshold("soft", 0.34),
  F8: floor("soft"),
  F9: floor("hard"),
  F10: floor("hard"),
  F11: floor("hard"),
  /** Minimum F12 score (1 = any match fails). */
  F12: floorWithThreshold("hard", 1),
  F13: floor("hard"),
}).prefault({});

const ToolRule = object({
  deny: bool().optional(),
  hold: bool().optional(),
  roles: texts().optional(),
  high_stakes: bool().optional(),
  reversible: bool().optional(),
});

// A tool name or glob: the characters tool names may hold, plus `*` (any
// run, possibly empty) and `?` (one character). Matching is linear in the
// name's length (see `toolGlobMatches`), so a hostile glob cannot stall a call.
const TOOL_GLOB = /^[A-Za-z0-9_.\/*?-]{1,200}$/;

const toolGlob = () =>
  z.string({ error: "expected a string" }).regex(TOOL_GLOB, {
    error: "expected a tool name or glob: 1 to 200 characters from A-Z a-z 0-9 _ . / - * ?",
  });

/** What a role may call: tools granted by name or glob, and tools denied (deny wins). */
const Role = object({
  tools: z.array(toolGlob(), { error: "expected an array of tool names or globs" }).default([]),
  deny: z.array(toolGlob(), { error: "expected an array of tool names or globs" }).default([]),
});

const OPERATOR_NAME = /^[A-Za-z0-9_.@-]{1,64}$/;

const Operator = object({
  name: z.string({ error: "expected a string" }).regex(OPERATOR_NAME, {
    error: "expected 1 to 64 characters from A-Z a-z 0-9 _ . @ -",
  }),
  public_key: z.string({ error: "expected a string" }).superRefine((value, ctx) => {
    let length: number;
    try {
      length = fromBase64(value).length;
    } catch {
      ctx.addIssue({ code: "custom", message: "expected standard padded base64" });
      return;
    }
    if (length !== 32) {
      ctx.addIssue({
        code: "custom",
        message: `expected a raw 32-byte Ed25519 public key, got ${length} bytes`,
      });
    }
  }),
});

// Cost units are whole numbers (say, micro-dollars): the policy hash is over
// canonical JSON, which holds integers only.
const costUnits = () => integer(0);

// A per-minute limit keeps the last minute's call times in one KV value (4 bytes each).
const perMinute = () => integer(0, 10_000);

const BUDGET_FIELDS = {
  calls_per_day: integer(0).default(0),
  calls_per_month: integer(0).default(0),
  cost_per_day: costUnits().default(0),
  cost_per_month: costUnits().default(0),
  /** Model tokens (input + output) that model-backed calls reported: prompts, sampling. */
  tokens_per_day: integer(0).default(0),
  tokens_per_month: integer(0).default(0),
};

const Budgets = object(BUDGET_FIELDS);

const LimitOverride = object({
  per_minute: perMinute().optional(),
  max_concurrent: integer(0).optional(),
  calls_per_day: integer(0).optional(),
  calls_per_month: integer(0).optional(),
  cost_per_day: costUnits().optional(),
  cost_per_month: costUnits().optional(),
  tokens_per_day: integer(0).optional(),
  tokens_per_month: integer(0).optional(),
});

const Price = object({
  per_call: costUnits().default(0),
  per_1k_input_tokens: costUnits().default(0),
  per_1k_output_tokens: costUnits().default(0),
});

/** The policy schema; `parsePolicy` is the usual entry point. */
export const PolicySchema = object({
  version: z.literal(1, { error: "expected 1" }).default(1),
  floors: Floors,
  tools: z.record(text(), ToolRule, { error: "expected an object" }).prefault({}),
  principals: z.record(text(), object({ roles: texts() }), { error: "expected an object" })
    .prefault({}),
  default_roles: texts().default(["user"]),
  /**
   * Per-role tool grants. Absent: every principal may call every tool (the
   * per-tool `roles` rules still apply). Present: a principal may call only
   * tools one of its roles grants, and a role's `deny` wins over any grant.
   */
  roles: z.record(text(), Role, { error: "expected an object" }).optional(),
  operators: z.array(Operator, { error: "expected an array" }).default([]).superRefine(
    (operators, ctx) => {
      const seen = new Set<string>();
      operators.forEach(({ name }, i) => {
        if (seen.has(name)) {
          ctx.addIssue({
            code: "custom",
            path: [i, "name"],
            message: `duplicate operator name "${name}"`,
          });
        }
        seen.add(name);
      });
    },
  ),
  approval: object({
    expiry_seconds: integer(10, 86400).default(900),
    required_signers: integer(1).default(1),
    /** Undecided holds one principal may have at once; 0 = unlimited. */
    max_open_per_principal: integer(0).default(20),
  }).prefault({}),
  kill_switch: object({
    tools: texts().default([]),
    principals: texts().default([]),
    upstreams: texts().default([]),
  }).prefault({}),
  rate_limits: object({
    /** 0 = unlimited, as for every limit here. */
    per_principal_per_minute: perMinute().default(600),
    per_tool_per_minute: perMinute().default(0),
    max_concurrent_per_principal: integer(0).default(32),
    /** Calls to `<upstream>__<tool>` tools, all principals together. */
    per_upstream_per_minute: perMinute().default(0),
    /** Unauthenticated callers are limited per client IP instead of sharing one principal. */
    per_ip_per_minute: perMinute().default(120),
    /** Unauthenticated loopback callers skip `per_ip_per_minute` (a first-run user is unthrottled). */
    exempt_loopback: bool().default(true),
    /** Per-principal overrides of the limits and budgets. */
    principals: z.record(text(), LimitOverride, { error: "expected an object" }).prefault({}),
    tools: z.record(text(), object({ per_minute: perMinute() }), { error: "expected an object" })
      .prefault({}),
    upstreams: z.record(text(), object({ per_minute: perMinute() }), {
      error: "expected an object",
    }).prefault({}),
  }).prefault({}),
  /** Per principal (per client IP when unauthenticated), in UTC days and months; 0 = unlimited. */
  budgets: Budgets.prefault({}),
  /** Whole cost units per call and per 1,000 tokens, by tool name; `default` applies to tools not named. */
  prices: z.record(text(), Price, { error: "expected an object" }).prefault({}),
  pii: object({
    forbid: z.array(
      z.enum(PII_KINDS, { error: `expected one of ${PII_KINDS.map((k) => `"${k}"`).join(" | ")}` }),
      { error: "expected an array" },
    ).default(["private_key"]),
  }).prefault({}),
  limits: object({ max_argument_bytes: integer(1).default(262144) }).prefault({}),
  tri_witness: object({ required: integer(1, 3).default(2) }).prefault({}),
  store_bodies: bool().default(false),
  /**
   * Which tools get an intent entry sealed before they run: those not
   * annotated read-only (default), or all of them.
   */
  seal_intent: z.enum(["not_read_only", "all"], { error: 'expected "not_read_only" or "all"' })
    .default("not_read_only"),
  fetch: object({
    allow_hosts: texts().default([]),
    max_bytes: integer(1).default(1048576),
    timeout_ms: integer(1).default(10000),
  }).prefault({}),
  files: object({
    /** Unset: `warden-files/` beside the KV file (never the working directory). */
    roots: texts().optional(),
    /** Read files with more than one hard link (another name may lie outside the roots). */
    allow_hardlinks: bool().default(false),
    /** inspect_file reads dotfiles and lists hidden entries (`.env`, `.git` often hold secrets). */
    include_hidden: bool().default(false),
    /** The file service (file_* tools): largest file, in bytes (base64 counts decoded). */
    max_file_bytes: integer(1, 10_485_760).default(131072),
    /** Versions kept per file; a write beyond drops the oldest. */
    max_versions: integer(1, 1000).default(20),
    /** Files the sandbox may hold. */
    max_files: integer(1, 1_000_000).default(10000),
    /** Lease length when file_lock names none, and the longest allowed, in seconds. */
    lease_seconds: integer(1, 86400).default(300),
    max_lease_seconds: integer(1, 86400).default(3600),
  }).prefault({}),
  /** The memory service (memory_* tools), per principal. */
  memory: object({
    max_value_bytes: integer(1, 60000).default(32768),
    default_ttl_seconds: integer(1).default(3600),
    max_ttl_seconds: integer(1, 31_536_000).default(2_592_000),
    max_keys_per_principal: integer(1, 100_000).default(1000),
  }).prefault({}),
  /** The context service (context_* tools). */
  context: object({
    /** An OpenAI-compatible embeddings endpoint blended with BM25 (key: WARDEN_EMBEDDINGS_API_KEY). */
    embeddings: object({
      /** Base URL of the API, e.g. https://api.openai.com/v1 (`/embeddings` is appended). */
      endpoint_url: z.url({ protocol: /^https?$/, error: "expected an http(s) URL" }).optional(),
      model: text().default("text-embedding-3-small"),
      /** Weight of cosine similarity in the hybrid score; BM25 (normalised) gets 1 − weight. */
      weight: z.number({ error: "expected a number from 0 to 1, in steps of 0.001" }).min(0).max(1)
        .multipleOf(0.001).default(0.5),
      timeout_ms: integer(100, 60_000).default(10000),
      max_response_bytes: integer(1, 10_485_760).default(1_048_576),
      /** Hosts exempt from the SSRF guard's private-address refusal (a local endpoint). */
      allow_hosts: texts().default([]),
    }).prefault({}),
  }).prefault({}),
  search: object({
    provider_url: z.url({ protocol: /^https?$/, error: "expected an http(s) URL" }).optional(),
  }).prefault({}),
  shell: object({
    /** Run `eureka_forge` commands in the bubblewrap sandbox (bwrap must be installed). */
    enabled: bool().default(false),
    timeout_ms: integer(1, 600_000).default(10000),
    /** CPU seconds per command; default: the timeout rounded up to whole seconds. */
    cpu_seconds: integer(1, 600).optional(),
    /** Bytes kept of stdout and of stderr each; more kills the command. */
    max_output_bytes: integer(1, 10_485_760).default(65536),
    /** Address space per process, in MiB. */
    memory_mb: integer(16, 65536).default(512),
    /** Size of the private writable /work (tmpfs), in MiB; also the largest file. */
    work_dir_mb: integer(1, 4096).default(64),
    max_processes: integer(1, 4096).default(64),
    /** Absolute host paths made visible read-only at the same path (never the KV or keys). */
    mounts: texts().default([]),
  }).prefault({}),
  sampling: object({ prefer: bool().default(true) }).prefault({}),
  /** secure_execute: untrusted code in a permissionless `deno run` process. */
  execution: object({
    code: object({
      /** Still unavailable where the runtime cannot be started (Deno Deploy, no --allow-run). */
      enabled: bool().default(true),
      timeout_ms: integer(100, 600_000).default(5000),
      /** CPU seconds per program; default: the timeout rounded up to whole seconds. */
      cpu_seconds: integer(1, 600).optional(),
      /** V8 heap of the program, in MiB. */
      heap_mb: integer(16, 16384).default(128),
      /** RLIMIT_DATA of the program's process (the runtime needs ~600 MiB of it), in MiB. */
      memory_mb: integer(64, 65536).default(1024),
      max_output_bytes: integer(1, 10_485_760).default(65536),
      max_code_bytes: integer(1, 1_048_576).default(65536),
      /** Programs running at once per Warden process. */
      max_concurrent: integer(1, 64).default(2),
      /** The deno executable; default the one running Warden (required in a compiled binary). */
      deno: text().optional(),
    }).prefault({}),
    /** secure_execute kind prompt: an OpenAI-compatible chat endpoint (key: WARDEN_CHAT_API_KEY). */
    prompt: object({
      /** Base URL of the API, e.g. https://api.openai.com/v1 (`/chat/completions` is appended). */
      endpoint_url: z.url({ protocol: /^https?$/, error: "expected an http(s) URL" }).optional(),
      /** The model used when a call names none. */
      model: text().optional(),
      /** Models a call may name; empty: any. fortress accepts only models listed here. */
      models: texts().default([]),
      timeout_ms: integer(100, 600_000).default(20000),
      max_tokens: integer(1, 1_000_000).default(1024),
      max_response_bytes: integer(1, 10_485_760).default(1_048_576),
    }).prefault({}),
  }).prefault({}),
}).superRefine((policy, ctx) => {
  const { operators, approval } = policy;
  // With no operators nothing can be approved, which is a valid choice; with
  // some, asking for more signers than exist would make every hold permanent.
  if (operators.length > 0 && approval.required_signers > operators.length) {
    ctx.addIssue({
      code: "custom",
      path: ["approval", "required_signers"],
      message:
        `${approval.required_signers} signers required but only ${operators.length} operators configured`,
    });
  }
});

/** A parsed policy with every default applied. */
export type Policy = z.output<typeof PolicySchema>;

/** One problem found in a policy document. */
export interface PolicyIssue {
  /** Dotted field path, e.g. "floors.F6.mode"; "" for the document itself. */
  path: string;
  message: string;
}

/** A policy document that does not validate; the message names every field and problem. */
export class PolicyError extends Error {
  override name = "PolicyError";
  readonly issues: readonly PolicyIssue[];

  constructor(issues: PolicyIssue[]) {
    const text = issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join("; ");
    super(`Invalid policy: ${text}`);
    this.issues = issues;
  }
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else if (IDENTIFIER.test(String(key))) out += `${out ? "." : ""}${String(key)}`;
    else out += `[${JSON.stringify(String(key))}]`;
  }
  return out;
}

function toIssue(issue: z.core.$ZodIssue): PolicyIssue {
  const path = formatPath(issue.path);
  switch (issue.code) {
    case "unrecognized_keys": {
      const keys = issue.keys.map((k) => JSON.stringify(k)).join(", ");
      return { path, message: `unknown key${issue.keys.length > 1 ? "s" : ""} ${keys}` };
    }
    case "invalid_key":
      return { path, message: `invalid key: ${issue.issues[0]?.message ?? issue.message}` };
    case "invalid_type":
      if (path === "") return { path, message: "expected a JSON object" };
      return { path, message: issue.message };
    default:
      return { path, message: issue.message };
  }
}

/**
 * Validates a policy document (already parsed from JSON) and applies every
 * default. Throws a `PolicyError` naming each bad field, e.g.
 * `Invalid policy: floors.F6.mode: expected "hard" | "soft" | "off"`.
 *
 * @example
 * ```ts
 * import { parsePolicy } from "./policy.ts";
 * const policy = parsePolicy({ floors: { F8: { mode: "hard" } } });
 * policy.floors.F7.threshold; // 0.34
 * ```
 */
export function parsePolicy(json: unknown): Policy {
  const result = PolicySchema.safeParse(json);
  if (!result.success) throw new PolicyError(result.error.issues.map(toIssue));
  return result.data;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** The built-in policy: `parsePolicy({})`, deeply frozen. */
export const DEFAULT_POLICY: Readonly<Policy> = deepFreeze(parsePolicy({}));

/**
 * The exact text `policyHash` hashes: canonical JSON of the policy with each
 * floor threshold (and the embeddings weight) as integer per-mille.
 *
 * @example
 * ```ts
 * import { canonicalPolicy, DEFAULT_POLICY } from "./policy.ts";
 * canonicalPolicy(DEFAULT_POLICY).includes('"F7":{"mode":"soft","threshold":340}'); // true
 * ```
 */
export function canonicalPolicy(policy: Policy): string {
  const floors: Record<string, unknown> = {};
  for (const id of FLOOR_IDS) {
    const config: Record<string, unknown> = { ...policy.floors[id] };
    if (typeof config.threshold === "number") {
      config.threshold = Math.round(config.threshold * 1000);
    }
    floors[id] = config;
  }
  // The embeddings weight (0-1) is hashed as integer per-mille too.
  const context = {
    ...policy.context,
    embeddings: {
      ...policy.context.embeddings,
      weight: Math.round(policy.context.embeddings.weight * 1000),
    },
  };
  return canonicalString({ ...policy, floors, context }, { name: "policy" });
}

/**
 * Hex SHA-256 of `canonicalPolicy(policy)`: equal for equal policies
 * whatever their key order, recorded in the vault when a policy is loaded.
 *
 * @example
 * ```ts
 * import { DEFAULT_POLICY, policyHash } from "./policy.ts";
 * policyHash(DEFAULT_POLICY).length; // 64
 * ```
 */
export function policyHash(policy: Policy): string {
  return toHex(sha256(new TextEncoder().encode(canonicalPolicy(policy))));
}

/** The mode policy sets for floor `id`. */
export function floorMode(policy: Policy, id: FloorId): FloorMode {
  return policy.floors[id].mode;
}

/** The threshold policy sets for floor `id`, if the floor has one. */
export function floorThreshold(policy: Policy, id: FloorId): number | undefined {
  const config = policy.floors[id];
  return "threshold" in config ? config.threshold : undefined;
}

/**
 * Whether tool `name` matches `glob`, where `*` matches any run of characters
 * (possibly empty) and `?` exactly one. Greedy with one backtrack point, so
 * the cost is O(glob × name) at worst and linear in practice.
 *
 * @example
 * ```ts
 * import { toolGlobMatches } from "./policy.ts";
 * toolGlobMatches("github__*", "github__create_issue"); // true
 * toolGlobMatches("get_?ime", "get_time"); // true
 * ```
 */
export function toolGlobMatches(glob: string, name: string): boolean {
  let g = 0;
  let n = 0;
  let star = -1;
  let resume = 0;
  while (n < name.length) {
    if (g < glob.length && (glob[g] === "?" || (glob[g] !== "*" && glob[g] === name[n]))) {
      g++;
      n++;
    } else if (g < glob.length && glob[g] === "*") {
      star = g++;
      resume = n;
    } else if (star >= 0) {
      g = star + 1;
      n = ++resume;
    } else {
      return false;
    }
  }
  while (g < glob.length && glob[g] === "*") g++;
  return g === glob.length;
}

/** Whether a principal holding `roles` may call `tool`, and if not, why. */
export type ToolPermission =
  | { readonly allowed: true }
  | {
    readonly allowed: false;
    readonly reason: string;
    /** True when no principal may call it (the policy denies the tool outright). */
    readonly everyone?: true;
  };

/**
 * Whether a principal holding `roles` may call `tool` under `policy`: the
 * tool's own rule (`tools.<name>.deny`, `tools.<name>.roles`), then, when the
 * policy has `roles`, the role grants — a matching `deny` in any held role
 * refuses, otherwise some held role must grant the tool.
 *
 * @example
 * ```ts
 * import { parsePolicy, toolPermission } from "./policy.ts";
 * const policy = parsePolicy({ roles: { ops: { tools: ["deploy", "github__*"] } } });
 * toolPermission(policy, ["ops"], "github__merge").allowed; // true
 * toolPermission(policy, ["dev"], "deploy").allowed; // false
 * ```
 */
export function toolPermission(
  policy: Policy,
  roles: readonly string[],
  tool: string,
): ToolPermission {
  const rule = Object.hasOwn(policy.tools, tool) ? policy.tools[tool] : undefined;
  if (rule?.deny === true) {
    return { allowed: false, everyone: true, reason: `policy denies tool ${tool}` };
  }
  if (rule?.roles !== undefined && !roles.some((role) => rule.roles?.includes(role))) {
    return {
      allowed: false,
      reason: `lacks a role permitted for ${tool} (${rule.roles.join(", ") || "none"})`,
    };
  }
  const grants = policy.roles;
  if (grants === undefined) return { allowed: true };
  let granted = false;
  for (const role of roles) {
    const grant = Object.hasOwn(grants, role) ? grants[role] : undefined;
    if (grant === undefined) continue;
    if (grant.deny.some((glob) => toolGlobMatches(glob, tool))) {
      return { allowed: false, reason: `is denied ${tool} by role ${role}` };
    }
    if (!granted && grant.tools.some((glob) => toolGlobMatches(glob, tool))) granted = true;
  }
  return granted ? { allowed: true } : { allowed: false, reason: `holds no role granting ${tool}` };
}

/**
 * The roles of `principal`: its entry in `principals`, else `default_roles`.
 *
 * @example
 * ```ts
 * import { DEFAULT_POLICY, rolesOf } from "./policy.ts";
 * rolesOf(DEFAULT_POLICY, "alice"); // ["user"]
 * ```
 */
export function rolesOf(policy: Policy, principal: string): string[] {
  const entry = Object.hasOwn(policy.principals, principal)
    ? policy.principals[principal]
    : undefined;
  return [...(entry?.roles ?? policy.default_roles)];
}

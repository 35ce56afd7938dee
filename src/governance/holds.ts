/**
 * 888_HOLD: a call that policy will not run without a human. The hold record
 * binds one exact call (the digest of tool + arguments + principal), expires,
 * and is released only by Ed25519 signatures of configured operators over
 * that digest — once. Every transition is a KV atomic with a check, so two
 * processes can never both release one approval.
 */
import {
  holdByPrincipalKey,
  holdByPrincipalPrefix,
  holdExpiryUnsealedKey,
  holdExpiryUnsealedPrefix,
  holdKey,
  holdOpenGenKey,
  holdPrefix,
  withKvRetry,
} from "../store/mod.ts";
import { digestJson, fromBase64 } from "../lib/mod.ts";

/** Where a hold stands. */
export type HoldStatus = "open" | "approved" | "denied" | "released" | "expired";

/** One hold. */
export interface HoldRecord {
  readonly id: string;
  /** Hex SHA-256 of canonical {tool, arguments, principal}. */
  readonly digest: string;
  readonly tool: string;
  readonly principal: string;
  readonly session: string | null;
  /** Why the call was held (the failed floors' reasons). */
  readonly reasons: readonly string[];
  readonly createdAt: string;
  readonly expiresAtMs: number;
  readonly requiredSigners: number;
  readonly approvals: readonly { operator: string; at: string }[];
  readonly status: HoldStatus;
  readonly decidedAt?: string;
  readonly deniedBy?: string;
  /** What a human answered through MCP elicitation (recorded; never releases a hold alone). */
  readonly human?: { action: string; at: string };
  /**
   * The call's arguments as the operator sees them: redacted, and absent
   * when too large to keep (then `argumentsOmitted` says why).
   */
  readonly arguments?: unknown;
  /** How many values were redacted from `arguments` (0: they are the real arguments). */
  readonly argumentsRedacted?: number;
  readonly argumentsOmitted?: string;
}

/** Hold records outlive their expiry by this long (so a late look says "expired"), then KV drops them. */
const HOLD_RETENTION_MS = 86_400_000;

/**
 * Why a hold operation was refused, as a code the edges translate (the HTTP status is chosen in
 * src/http/, not here).
 */
export type HoldErrorCode =
  | "unknown_hold"
  | "contended"
  | "too_many_open"
  | "expired"
  | "already_decided"
  | "unknown_operator"
  | "bad_signature"
  | "duplicate_approval"
  | "different_call"
  | "already_used"
  | "denied"
  | "pending";

/** A hold operation the caller can be told was refused, and why (`code`). */
export class HoldError extends Error {
  override name = "HoldError";
  constructor(message: string, readonly code: HoldErrorCode) {
    super(message);
  }
}

/** A configured operator key. */
export interface Operator {
  readonly name: string;
  /** Base64 of the raw 32-byte Ed25519 public key. */
  readonly public_key: string;
}

/** The decision an operator signs. */
export type HoldDecision = "approve" | "deny";

/**
 * The digest a hold is bound to: SHA-256 of the RFC 8785 canonical JSON of
 * {tool, arguments, principal}.
 */
export function holdDigest(call: { tool: string; arguments: unknown; principal: string }): string {
  return digestJson({
    tool: call.tool,
    arguments: call.arguments ?? {},
    principal: call.principal,
  });
}

/**
 * The exact bytes an operator signs: a domain-separation line, the decision,
 * the hold id and the digest. Binding the decision and the id means an
 * approval cannot be replayed as a denial, or against another hold.
 */
export function decisionMessage(
  decision: HoldDecision,
  holdId: string,
  digest: string,
): Uint8Array {
  return new TextEncoder().encode(`warden-hold/v1\n${decision}\n${holdId}\n${digest}\n`);
}

/** Verifies an operator's Ed25519 signature over a decision message. */
export async function verifyOperatorSignature(
  operator: Operator,
  message: Uint8Array,
  signatureB64: string,
): Promise<boolean> {
  let signature: Uint8Array;
  let publicKey: Uint8Array;
  try {
    signature = fromBase64(signatureB64);
    publicKey = fromBase64(operator.public_key);
  } catch {
    return false;
  }
  if (signature.byteLength !== 64 || publicKey.byteLength !== 32) return false;
  const key = await crypto.subtle.importKey(
    "raw",
    publicKey as Uint8Array<ArrayBuffer>,
    { name: "Ed25519" },
    false,
    ["verify"],
  );
  return await crypto.subtle.verify(
    { name: "Ed25519" },
    key,
    signature as Uint8Array<ArrayBuffer>,
    message as Uint8Array<ArrayBuffer>,
  );
}

/** Persistence and transitions of holds. */
export interface HoldStore {
  create(input: {
    digest: string;
    tool: string;
    principal: string;
    session: string | null;
    reasons: readonly string[];
    expirySeconds: number;
    requiredSigners: number;
    /** Redacted arguments to show the operator. */
    arguments?: unknown;
    argumentsRedacted?: number;
    argumentsOmitted?: string;
    /** Refuse (HoldError too_many_open) when the principal already has this many undecided holds. */
    maxOpenPerPrincipal?: number;
  }): Promise<HoldRecord>;
  get(id: string): Promise<HoldRecord | null>;
  /** Holds still waiting for operators (open and not expired), newest first. */
  listOpen(limit?: number): Promise<HoldRecord[]>;
  /**
   * Applies one operator's signed decision. Refuses an unknown operator, a bad
   * signature (which covers "another digest"), an expired or already decided
   * hold, and a second signature by the same operator.
   */
  decide(
    id: string,
    input: {
      decision: HoldDecision;
      operator: string;
      signature: string;
      operators: readonly Operator[];
    },
  ): Promise<HoldRecord>;
  /**
   * Consumes an approved hold for exactly this call: succeeds once. Returns
   * the released record, or throws HoldError saying why not.
   */
  release(id: string, digest: string): Promise<HoldRecord>;
  /** Records a human's elicitation answer; a decline denies the hold. */
  recordHuman(id: string, action: string): Promise<HoldRecord | null>;
  /**
   * Marks every hold whose time ran out as expired (open or approved but unused), each once
   * across all processes, and tells `onExpired`; returns how many this call marked.
   */
  sweepExpired(): Promise<number>;
}

const HOLD_ID = /^[0-9a-f-]{36}$/;

/**
 * An elicitation answer's action as Warden keeps it: `accept`, `decline` or
 * `cancel`. Anything else a client sends (free text, a pasted secret) is a
 * decline and is never stored or sealed as sent.
 */
export function elicitationAction(action: unknown): "accept" | "decline" | "cancel" {
  return action === "accept" || action === "cancel" ? action : "decline";
}

/**
 * Creates the KV-backed hold store. `now` is injectable so expiry can be
 * tested without waiting.
 */
// Kept whole: a factory of 13 small closures over one KV and the hold keys; each operation is a
// checked atomic over the same records.
export function createHoldStore(
  kv: Deno.Kv,
  options: {
    now?: () => number;
    retentionMs?: number;
    /**
     * Told once per hold, by the one process whose write marked it expired (the app seals a
     * `hold_expired` entry) — or again, by a later sweep, when that process failed or died before
     * it returned: so it must be idempotent (the app's entry has a once key). A failure here is
     * the caller's to log.
     */
    onExpired?: (record: HoldRecord) => Promise<void>;
    /**
     * Told of every hold this store creates or finds still waiting (open, or approved but
     * unused) — the app watches its expiry so it is sealed when it comes, not at the next sweep.
     */
    onWaiting?: (record: HoldRecord) => void;
  } = {},
): HoldStore {
  const now = options.now ?? Date.now;
  const retentionMs = options.retentionMs ?? HOLD_RETENTION_MS;

  function due(record: HoldRecord): boolean {
    return (record.status === "open" || record.status === "approved") && now() > record.expiresAtMs;
  }

  function waiting(record: HoldRecord | null): void {
    if (record && (record.status === "open" || record.status === "approved") && !due(record)) {
      options.onWaiting?.(record);
    }
  }

  function effective(record: HoldRecord): HoldRecord {
    return due(record) ? { ...record, status: "expired" } : record;
  }

  /**
   * The record as it stands; a hold whose time ran out is written as expired first (a checked
   * atomic: of several processes looking at once, one writes it and tells `onExpired`).
   */
  async function settle(
    entry: Deno.KvEntryMaybe<HoldRecord>,
  ): Promise<{ record: HoldRecord | null; marked: boolean }> {
    const record = entry.value;
    if (!record || !due(record)) return { record, marked: false };
    const expired: HoldRecord = {
      ...record,
      status: "expired",
      decidedAt: new Date(record.expiresAtMs).toISOString(),
    };
    // The marking leaves a note that the expiry is still to be sealed, in the same commit: a
    // process that dies before `onExpired` finishes leaves it for the next sweep.
    const op = kv.atomic().check(entry).set(holdKey(record.id), expired, keep(expired))
      .delete(holdByPrincipalKey(record.principal, record.id));
    if (options.onExpired) op.set(holdExpiryUnsealedKey(record.id), expired, keep(expired));
    const res = await withKvRetry(() => op.commit());
    if (res.ok) await sealExpiry(expired);
    return { record: expired, marked: res.ok };
  }

  /** Tells `onExpired` of an expiry marked before, then drops its note. */
  async function sealExpiry(expired: HoldRecord): Promise<void> {
    if (!options.onExpired) return;
    await options.onExpired(expired);
    await withKvRetry(() => kv.delete(holdExpiryUnsealedKey(expired.id)));
  }

  async function load(id: string): Promise<Deno.KvEntryMaybe<HoldRecord>> {
    if (!HOLD_ID.test(id)) {
      throw new HoldError(`Unknown hold ${JSON.stringify(id)}`, "unknown_hold");
    }
    const entry = await withKvRetry(() => kv.get<HoldRecord>(holdKey(id)));
    if (!entry.value) throw new HoldError(`Unknown hold ${id}`, "unknown_hold");
    if (due(entry.value)) await settle(entry);
    return entry;
  }

  function keep(record: HoldRecord): { expireIn: number } {
    return { expireIn: Math.max(1000, record.expiresAtMs + retentionMs - now()) };
  }

  async function update(
    entry: Deno.KvEntryMaybe<HoldRecord>,
    next: HoldRecord,
  ): Promise<HoldRecord> {
    const op = kv.atomic().check(entry).set(holdKey(next.id), next, keep(next));
    // A decided hold no longer counts against its principal's open holds.
    if (next.status !== "open") op.delete(holdByPrincipalKey(next.principal, next.id));
    // SQLite's write lock between processes sharing the file is transient: retried.
    const res = await withKvRetry(() => op.commit());
    if (!res.ok) {
      throw new HoldError(`Hold ${next.id} changed concurrently; try again`, "contended");
    }
    return next;
  }

  /** Creations under a cap in flight, per principal (the tail of each one's queue). */
  const creating = new Map<string, Promise<void>>();

  type CreateInput = Parameters<HoldStore["create"]>[0];

  /** How many of `principal`'s holds are still open (clearing index entries of decided ones). */
  async function countOpen(principal: string, cap: number): Promise<number> {
    let open = 0;
    const stale: Deno.KvKey[] = [];
    for await (
      const e of kv.list<string>({ prefix: holdByPrincipalPrefix(principal) }, {
        limit: cap + 50,
      })
    ) {
      const held = (await withKvRetry(() => kv.get<HoldRecord>(holdKey(e.value)))).value;
      const status = held ? effective(held).status : "expired";
      if (status === "open") open++;
      else stale.push(e.key);
    }
    for (const key of stale) await withKvRetry(() => kv.delete(key));
    return open;
  }

  function newRecord(input: CreateInput): HoldRecord {
    return {
      id: crypto.randomUUID(),
      digest: input.digest,
      tool: input.tool,
      principal: input.principal,
      session: input.session,
      reasons: input.reasons,
      createdAt: new Date(now()).toISOString(),
      expiresAtMs: now() + input.expirySeconds * 1000,
      requiredSigners: input.requiredSigners,
      approvals: [],
      status: "open",
      ...(input.arguments !== undefined ? { arguments: input.arguments } : {}),
      ...(input.argumentsRedacted !== undefined
        ? { argumentsRedacted: input.argumentsRedacted }
        : {}),
      ...(input.argumentsOmitted !== undefined ? { argumentsOmitted: input.argumentsOmitted } : {}),
    };
  }

  /** The hold and its index entry, in one commit (with `check` when given). */
  function writeHold(record: HoldRecord, check?: Deno.KvEntryMaybe<unknown>) {
    // Hold records expire from KV a day after the hold does: a flood of them cannot pile up.
    const op = kv.atomic();
    if (check) {
      op.check(check).set(holdOpenGenKey(record.principal), record.id, keep(record));
    }
    op.set(holdKey(record.id), record, keep(record))
      .set(holdByPrincipalKey(record.principal, record.id), record.id, keep(record));
    // SQLite's write lock between processes sharing the file is transient: retried.
    return withKvRetry(() => op.commit());
  }

  async function createHold(input: CreateInput): Promise<HoldRecord> {
    const record = newRecord(input);
    await writeHold(record);
    waiting(record);
    return record;
  }

  async function createCapped(input: CreateInput, cap: number): Promise<HoldRecord> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const gen = await withKvRetry(() => kv.get(holdOpenGenKey(input.principal)));
      const open = await countOpen(input.principal, cap);
      if (open >= cap) {
        throw new HoldError(
          `principal already has ${open} open holds, the most policy approval.max_open_per_principal allows (${cap}); ` +
            `wait for an operator to decide them or for them to expire`,
          "too_many_open",
        );
      }
      const record = newRecord(input);
      if ((await writeHold(record, gen)).ok) {
        waiting(record);
        return record;
      }
    }
    throw new HoldError(
      `too many holds are being created at once for this principal; repeat the call in a few seconds`,
      "too_many_open",
    );
  }

  return {
    create(input) {
      const cap = input.maxOpenPerPrincipal;
      // Under a cap, creations for one principal run one at a time here, and across processes
      // each commit checks the principal's generation key read before counting: the second of
      // two concurrent creations fails its check and counts again.
      if (cap === undefined || cap <= 0) return createHold(input);
      const prior = creating.get(input.principal) ?? Promise.resolve();
      const run = prior.then(() => createCapped(input, cap), () => createCapped(input, cap));
      const tail: Promise<void> = run.then(() => {}, () => {});
      creating.set(input.principal, tail);
      tail.then(() => {
        if (creating.get(input.principal) === tail) creating.delete(input.principal);
      });
      return run;
    },
    async get(id) {
      if (!HOLD_ID.test(id)) return null;
      const { record } = await settle(await withKvRetry(() => kv.get<HoldRecord>(holdKey(id))));
      waiting(record);
      return record;
    },
    async sweepExpired() {
      let marked = 0;
      // Expiries marked by a process that died before sealing them.
      for await (const e of kv.list<HoldRecord>({ prefix: holdExpiryUnsealedPrefix() })) {
        await sealExpiry(e.value);
      }
      for await (const e of kv.list<HoldRecord>({ prefix: holdPrefix() })) {
        if (!due(e.value)) {
          waiting(e.value);
          continue;
        }
        if ((await settle(e)).marked) marked++;
      }
      return marked;
    },
    async listOpen(limit = 100) {
      const out: HoldRecord[] = [];
      for await (const e of kv.list<HoldRecord>({ prefix: holdPrefix() })) {
        // Seen expired here for the first time: written and sealed as such.
        const record = due(e.value) ? (await settle(e)).record! : e.value;
        waiting(record);
        if (record.status === "open" || record.status === "approved") out.push(record);
      }
      out.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
      return out.slice(0, limit);
    },
    async decide(id, input) {
      const entry = await load(id);
      const record = effective(entry.value!);
      if (record.status === "expired") throw new HoldError(`Hold ${id} has expired`, "expired");
      if (record.status !== "open") {
        throw new HoldError(`Hold ${id} is already ${record.status}`, "already_decided");
      }
      const operator = input.operators.find((o) => o.name === input.operator);
      if (!operator) {
        throw new HoldError(
          `Operator ${JSON.stringify(input.operator)} is not configured`,
          "unknown_operator",
        );
      }
      const message = decisionMessage(input.decision, id, record.digest);
      if (!(await verifyOperatorSignature(operator, message, input.signature))) {
        throw new HoldError(
          `Signature by ${operator.name} does not verify for ${input.decision} of hold ${id} (digest ${record.digest})`,
          "bad_signature",
        );
      }
      const at = new Date(now()).toISOString();
      if (input.decision === "deny") {
        return await update(entry, {
          ...record,
          status: "denied",
          decidedAt: at,
          deniedBy: operator.name,
        });
      }
      if (record.approvals.some((a) => a.operator === operator.name)) {
        throw new HoldError(
          `Operator ${operator.name} already approved hold ${id}`,
          "duplicate_approval",
        );
      }
      const approvals = [...record.approvals, { operator: operator.name, at }];
      const approved = approvals.length >= record.requiredSigners;
      return await update(entry, {
        ...record,
        approvals,
        status: approved ? "approved" : "open",
        ...(approved ? { decidedAt: at } : {}),
      });
    },
    async release(id, digest) {
      const entry = await load(id);
      const record = effective(entry.value!);
      if (record.digest !== digest) {
        throw new HoldError(`Hold ${id} was approved for a different call`, "different_call");
      }
      switch (record.status) {
        case "approved":
          return await update(entry, {
            ...record,
            status: "released",
            decidedAt: new Date(now()).toISOString(),
          });
        case "released":
          throw new HoldError(
            `Hold ${id} was already used; an approval releases one call`,
            "already_used",
          );
        case "denied":
          throw new HoldError(
            `Hold ${id} was denied by ${record.deniedBy ?? "an operator"}`,
            "denied",
          );
        case "expired":
          throw new HoldError(`Hold ${id} has expired`, "expired");
        default:
          throw new HoldError(`Hold ${id} is still waiting for operator approval`, "pending");
      }
    },
    async recordHuman(id, answered) {
      const action = elicitationAction(answered);
      const entry = await withKvRetry(() => kv.get<HoldRecord>(holdKey(id)));
      if (!entry.value || entry.value.status !== "open") return null;
      const at = new Date(now()).toISOString();
      const next: HoldRecord = action === "accept" ? { ...entry.value, human: { action, at } } : {
        ...entry.value,
        human: { action, at },
        status: "denied",
        decidedAt: at,
        deniedBy: "human (elicitation)",
      };
      const op = kv.atomic().check(entry).set(holdKey(id), next, keep(next));
      if (next.status !== "open") op.delete(holdByPrincipalKey(next.principal, id));
      const res = await withKvRetry(() => op.commit());
      return res.ok ? next : null;
    },
  };
}

/** Watches waiting holds' expiries in one process (see {@link createExpiryWatch}). */
export interface ExpiryWatch {
  /** Watches a hold expiring at `expiresAtMs` (again: no change); ignored past the cap. */
  watch(id: string, expiresAtMs: number): void;
  /** How many holds are watched. */
  readonly size: number;
  /** Stops the timer; nothing is called after. */
  close(): void;
}

/**
 * A hold expiry watch: one timer for every hold this process knows is waiting, firing at the
 * earliest expiry — and at least every `tickMs`, so an expiry is seen within a tick of it even
 * when the clock jumps (the clock is the hold store's, injectable) — calling `onDue` with each
 * hold whose time ran out. `onDue` looks at the hold, which seals its expiry once across every
 * process (the store's checked write); several processes watching one hold is harmless. At most
 * `max` holds are watched; the rest wait for the reaper's sweep.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createExpiryWatch } from "./holds.ts";
 * let now = 0;
 * const due: string[] = [];
 * const watch = createExpiryWatch({ now: () => now, onDue: async (id) => { due.push(id); } });
 * watch.watch("h1", 5);
 * assert.equal(watch.size, 1);
 * watch.close();
 * assert.deepEqual(due, []);
 * ```
 */
export function createExpiryWatch(options: {
  now: () => number;
  onDue: (id: string) => Promise<void>;
  /** Told when `onDue` throws (the hold stays for the reaper's sweep). */
  onError?: (error: unknown, id: string) => void;
  max?: number;
  tickMs?: number;
}): ExpiryWatch {
  const max = options.max ?? 10_000;
  const tickMs = options.tickMs ?? 1000;
  const watched = new Map<string, number>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let armedAtMs = Infinity;
  let running = false;
  let closed = false;

  function arm(): void {
    if (closed || running || watched.size === 0) return;
    let earliest = Infinity;
    for (const at of watched.values()) earliest = Math.min(earliest, at);
    // Due once the clock is past the expiry (the store's `now() > expiresAtMs`).
    const delay = Math.max(0, Math.min(tickMs, earliest + 1 - options.now()));
    const at = Date.now() + delay;
    if (timer !== undefined && armedAtMs <= at) return;
    if (timer !== undefined) clearTimeout(timer);
    armedAtMs = at;
    const t = setTimeout(fire, delay);
    Deno.unrefTimer(t);
    timer = t;
  }

  async function fire(): Promise<void> {
    timer = undefined;
    armedAtMs = Infinity;
    running = true;
    try {
      const now = options.now();
      const due = [...watched].filter(([, at]) => now > at).map(([id]) => id);
      for (const id of due) {
        watched.delete(id);
        if (closed) return;
        await options.onDue(id).catch((e) => options.onError?.(e, id));
      }
    } finally {
      running = false;
      arm();
    }
  }

  return {
    watch(id, expiresAtMs) {
      if (closed || watched.has(id) || watched.size >= max) return;
      watched.set(id, expiresAtMs);
      arm();
    },
    get size() {
      return watched.size;
    },
    close() {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      watched.clear();
    },
  };
}

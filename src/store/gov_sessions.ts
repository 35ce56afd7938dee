/**
 * Governed sessions of the metabolic chain (000 → 999): the stated intent,
 * the claims made with their evidence, impact and critique notes, the floor
 * results of each step, and whether the session was sealed. One KV record per
 * session, updated with an atomic check so concurrent steps never lose writes,
 * and an index entry per principal written in the same atomic, so a
 * principal's own sessions are found without reading anyone else's.
 *
 * Text kept here is retrieved later (recall_memory, search_reality): the
 * `redact` option given by the composition root (the vault's detectors) is
 * applied to the intent, actor, claims and notes before anything is written.
 */
import { govSessionByPrincipalKey, govSessionByPrincipalPrefix, govSessionKey } from "./keys.ts";
import { withKvRetry } from "./retry.ts";

/** One claim recorded by reason_mind. */
export interface SessionClaim {
  readonly text: string;
  readonly evidence: readonly string[];
  readonly grounded: boolean;
  /** Withdrawn by a later reason_mind `retract`; kept for the record, ignored by critique. */
  readonly retracted?: boolean;
}

/** One governed step taken in the session. */
export interface SessionStep {
  readonly tool: string;
  readonly stage: string;
  readonly verdict: string;
  /** Floor scores, per-mille. */
  readonly floors: Readonly<Record<string, number>>;
  readonly at: string;
  readonly vaultIndex?: number;
  /** "ok" when the tool ran and succeeded, else its error kind or "not_executed". */
  readonly outcome?: string;
  /** For a refused step: what its refusal said to change (the argument and how). */
  readonly fix?: string;
}

/** The record of one governed session. */
export interface GovSession {
  readonly id: string;
  readonly principal: string;
  readonly actorId: string | null;
  readonly intent: string;
  readonly mcpSession: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly stage: string;
  readonly claims: readonly SessionClaim[];
  readonly steps: readonly SessionStep[];
  readonly notes: Readonly<Record<string, unknown>>;
  readonly sealed?: { readonly index: number; readonly leafHash: string };
  /**
   * A seal_vault call that claimed the session and is appending its seal: the others racing it
   * wait for its result instead of appending a second one.
   */
  readonly sealing?: { readonly claim: string; readonly atMs: number };
}

/** Raised when a session id is unknown or belongs to someone else. */
export class GovSessionError extends Error {
  override name = "GovSessionError";
}

const MAX_ITEMS = 200;

/** Repository of governed sessions. */
export interface GovSessionStore {
  create(
    input: { principal: string; actorId: string | null; intent: string; mcpSession: string | null },
  ): Promise<GovSession>;
  /** The session, if it exists and belongs to `principal`. */
  get(id: string, principal: string): Promise<GovSession>;
  /** Applies `change` under an atomic check (retried on a concurrent write). */
  update(id: string, principal: string, change: (s: GovSession) => GovSession): Promise<GovSession>;
  /** Up to `limit` sessions of `principal` (never another principal's), read through its index. */
  listOwn(principal: string, limit?: number): Promise<GovSession[]>;
}

/** Options of {@link createGovSessionStore}. */
export interface GovSessionStoreOptions {
  /** Idle time after which a record expires. */
  readonly ttlMs: number;
  /** Returns `value` with secrets replaced (deep); identity when absent. */
  readonly redact?: <T>(value: T) => T;
}

function bounded<T>(items: readonly T[]): T[] {
  return items.length > MAX_ITEMS ? items.slice(items.length - MAX_ITEMS) : [...items];
}

/**
 * Creates the repository. Records expire after `ttlMs` of inactivity (they
 * are working state; the vault keeps the permanent record).
 */
export function createGovSessionStore(
  kv: Deno.Kv,
  options: GovSessionStoreOptions,
): GovSessionStore {
  const expireIn = options.ttlMs;
  const redact = options.redact ?? (<T>(v: T) => v);
  /** The retained text of a session, redacted; ids, principal and stage are kept as they are. */
  const clean = (s: GovSession): GovSession => ({
    ...s,
    intent: redact(s.intent),
    actorId: s.actorId === null ? null : redact(s.actorId),
    claims: redact(s.claims),
    notes: redact(s.notes),
  });
  return {
    async create(input) {
      const now = new Date().toISOString();
      const session: GovSession = clean({
        id: `sess_${crypto.randomUUID()}`,
        principal: input.principal,
        actorId: input.actorId,
        intent: input.intent,
        mcpSession: input.mcpSession,
        createdAt: now,
        updatedAt: now,
        stage: "000",
        claims: [],
        steps: [],
        notes: {},
      });
      const res = await kv.atomic()
        .set(govSessionKey(session.id), session, { expireIn })
        .set(govSessionByPrincipalKey(session.principal, session.id), null, { expireIn })
        .commit();
      if (!res.ok) {
        throw new GovSessionError(`Session ${session.id} could not be stored; try again`);
      }
      return session;
    },
    async get(id, principal) {
      if (!/^sess_[0-9a-f-]{36}$/.test(id)) {
        throw new GovSessionError(
          `Unknown session_id ${JSON.stringify(id)}: call anchor_session first`,
        );
      }
      const entry = await withKvRetry(() => kv.get<GovSession>(govSessionKey(id)));
      if (!entry.value || entry.value.principal !== principal) {
        throw new GovSessionError(`Unknown session_id ${id}: call anchor_session first`);
      }
      return entry.value;
    },
    async update(id, principal, change) {
      // Processes sharing a KV file meet SQLite's write lock ("database is locked"): retried.
      for (let attempt = 0; attempt < 20; attempt++) {
        const entry = await withKvRetry(() => kv.get<GovSession>(govSessionKey(id)));
        if (!entry.value || entry.value.principal !== principal) {
          throw new GovSessionError(`Unknown session_id ${id}: call anchor_session first`);
        }
        const changed = change(entry.value);
        const next: GovSession = clean({
          ...changed,
          // The owner never changes: the index entry is keyed by it.
          id,
          principal: entry.value.principal,
          claims: bounded(changed.claims),
          steps: bounded(changed.steps),
          updatedAt: new Date().toISOString(),
        });
        const res = await withKvRetry(() =>
          kv.atomic().check(entry)
            .set(govSessionKey(id), next, { expireIn })
            .set(govSessionByPrincipalKey(next.principal, id), null, { expireIn })
            .commit()
        );
        if (res.ok) return next;
      }
      throw new GovSessionError(`Session ${id} is being changed concurrently; try again`);
    },
    async listOwn(principal, limit = 100) {
      const ids: string[] = [];
      for await (
        const e of kv.list({ prefix: govSessionByPrincipalPrefix(principal) }, { limit })
      ) {
        ids.push(String(e.key[2]));
      }
      const out: GovSession[] = [];
      for (let i = 0; i < ids.length; i += 10) {
        const got = await kv.getMany<GovSession[]>(ids.slice(i, i + 10).map(govSessionKey));
        for (const e of got) {
          // Belt and braces: the record itself must name the same owner.
          if (e.value && e.value.principal === principal) out.push(e.value);
        }
      }
      return out;
    },
  };
}

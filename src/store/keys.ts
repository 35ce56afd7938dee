/**
 * Every Deno KV key tuple Warden uses is built here, so the key space can be
 * read in one place and no two features collide.
 *
 * Layout (tuple keys, `[entity, id]` for records):
 * - `["session", id]` → session record (with `expireIn` = idle TTL)
 * - `["mcp_event", sessionId, seq]` → one SSE event kept for resumption (`seq` sorts by time);
 *   `["mcp_event", sessionId, seq, n]` → chunk n of an event too large for one value
 * - `["vault", "head"]` → the log head: size, root, compact range, last leaf hash (the only
 *   contended vault key; every append checks it)
 * - `["vault", "e", index]` → bytes: entry `index`'s 32-byte leaf hash ‖ the count and hashes
 *   of the subtrees it completes (levels 1..n; node (l, k) lives in entry (k+1)·2^l − 1) ‖ its
 *   canonical JSON
 * - `["vault", "cp", size]` → the signed checkpoint note for `size` (every one kept)
 * - `["vault", "blob", sha256hex, n]` → chunk n of a body too large to sit in an entry
 * - `["vault", "meta"]` → the log's fixed origin
 * - `["signing_key"]` → the generated checkpoint signing key (never part of the log)
 * - `["hold", id]` → an 888_HOLD record (call digest, expiry, approvals, status)
 * - `["gov_session", id]` → a governed (metabolic-chain) session: intent, claims, stage, floors
 * - `["gov_session_by_principal", principal, id]` → null; the index recall uses to find a principal's
 *   own sessions, written in the same atomic as the record
 * - `["evidence_by_principal", principal, sha256hex]` → null; which evidence a principal fetched
 * - `["evidence_url", sha256(url)]` → the content hash last fetched from that URL (or its final URL)
 * - `["evidence", sha256hex]` → fetched content kept as evidence (url, title, text)
 * - `["usage_rate", dimension, subject]` → a rate limit's GCRA state (`expireIn` when idle)
 * - `["usage_inflight", subject]` → calls in flight, with a lease so a crashed instance's count lapses
 * - `["usage_budget", subject, period]` / `["usage_cost", …]` → calls / cost units in a budget period
 * - `["upstream", name]` → a gateway upstream: transport, endpoint, version, source, tool names
 * - `["upstream_pin", server, tool]` → the pinned definition hash of an upstream tool (F10)
 * - `["usage_rollup", "h"|"d", startMs, principal, tool, upstream, instance]` → one instance's usage
 *   totals for an hour or a day (calls by verdict, latency histogram, bytes, tokens, cost)
 * - `["identity_token", sha256hex]` → a minted bearer token (by the hash of its secret): name,
 *   roles, scopes, expiry, revocation
 * - `["identity_user", name]` → a person who logs in: roles and the scrypt hash of the password
 * - `["memory", principal, key]` → one stored memory value (JSON text, digest, expiry), with
 *   `expireIn` = its TTL; namespaced by principal so no list can cross principals
 * - `["memory_count", principal]` → how many keys the principal holds (never below the truth:
 *   TTL expiry does not decrement it, so a full count is recounted before a store is refused)
 * - `["file", path]` → a sandbox file's head: current version, version list (newest last)
 * - `["file_blob", sha256hex]` → a content-addressed blob's manifest (size, chunk count, the upload
 *   id of its chunks, how many file versions reference it)
 * - `["file_chunk", sha256hex, upload, n]` → chunk n of a blob's bytes, under the id of the write
 *   that uploaded them (so deleting one upload never removes chunks another write is committing)
 * - `["file_count"]` → how many files the sandbox holds
 * - `["file_lease", path]` → the lease on a file (holder principal and session, expiry), with
 *   `expireIn` = its remaining time
 * - `["execution", principal, execution_id]` → a verified/fortress execution: its vault index and
 *   signed receipt (namespaced by principal: only the caller packages its own executions)
 * - `["execution_by_case", principal, case_id, execution_id]` → the vault index; a case's executions
 * - `["ctx_stats", ns]` → a context namespace's corpus statistics (documents, total length); every
 *   add checks it, so the document cap is exact
 * - `["ctx_doc", ns, docId]` → one context document (text, metadata, length, entities)
 * - `["ctx_df", ns, term]` → how many documents hold `term` (a KvU64 summed by each add)
 * - `["ctx_post", ns, term, 65535 − tf, length, docId]` → null: one BM25 posting; a term's postings
 *   list highest term frequency first, shorter documents first among equals
 * - `["ctx_entity", ns, entityId]` → a graph entity (display name, type)
 * - `["ctx_mention", ns, entityId, docId]` → null: the document mentions the entity
 * - `["ctx_rel", ns, fromId, type, toId]` / `["ctx_rel_in", ns, toId, type, fromId]` → a relation,
 *   listed from either end
 * - `["ctx_vec", ns, docId]` → a context document's embedding (Float32 bytes), when an embeddings
 *   endpoint is configured
 * - `["memidx_stats" | "memidx_doc" | "memidx_df" | "memidx_post", principal, …]` → the same BM25
 *   index over memory values (document id = memory key), which `memory_search` reads by text
 * - `["bus_head", principal, topic]` → a bus topic's last sequence number (what subscribers
 *   `watch`), with `expireIn` = the retention, refreshed by every publish
 * - `["bus_msg", principal, topic, seq]` → one published message (JSON, digest, time), with
 *   `expireIn` = the retention; a publish deletes the one that falls out of the kept window
 * - `["mcp_task", id]` → a 2026-07-28 task (`io.modelcontextprotocol/tasks`): owner, status,
 *   result or error, pending input requests, the hold it waits on and, until it runs, the call to
 *   repeat; `expireIn` = its TTL
 * - `["mcp_task_by_principal", principal, createdAtMs, id]` → whether the task is finished, same
 *   expiry; a principal's tasks oldest first (capped: the oldest finished one makes room)


/** The key of one MCP session record. */
export function sessionKey(id: string): Deno.KvKey {
  return ["session", id];
}

/**
 * A process's published count of the MCP sessions it opened, for the caps shared across
 * processes: `["total"]`, `["principal", p]` or `["ip", ip]`, then the instance id.
 */
export function sharedCapKey(key: readonly unknown[]): Deno.KvKey {
  return ["session_caps", ...key as Deno.KvKeyPart[]];
}

/**
 * The generation of one shared session cap (`["total"]`, `["principal", p]`, `["ip", ip]`):
 * changed by every reservation under it, so a reservation that summed the counts before
 * another's commit fails its check.
 */
export function sharedCapGenKey(key: readonly unknown[]): Deno.KvKey {
  return ["session_caps_gen", ...key as Deno.KvKeyPart[]];
}

/** Prefix of every session record (for listing). */
export function sessionPrefix(): Deno.KvKey {
  return ["session"];
}

/** The key of one stored SSE event. */
export function eventKey(sessionId: string, seq: string): Deno.KvKey {
  return ["mcp_event", sessionId, seq];
}

/** Prefix of every stored event of a session. */
export function eventSessionPrefix(sessionId: string): Deno.KvKey {
  return ["mcp_event", sessionId];
}

/** The vault head record. */
export function vaultHeadKey(): Deno.KvKey {
  return ["vault", "head"];
}

/** One vault entry's canonical bytes. */
export function vaultEntryKey(index: number): Deno.KvKey {
  return ["vault", "e", index];
}

/** Prefix of every vault entry (for export). */
export function vaultEntryPrefix(): Deno.KvKey {
  return ["vault", "e"];
}

/** A signed checkpoint, by tree size. */
export function vaultCheckpointKey(size: number): Deno.KvKey {
  return ["vault", "cp", size];
}

/** Prefix of every signed checkpoint. */
export function vaultCheckpointPrefix(): Deno.KvKey {
  return ["vault", "cp"];
}

/** One chunk of a content-addressed body. */
export function vaultBlobKey(sha256hex: string, part: number): Deno.KvKey {
  return ["vault", "blob", sha256hex, part];
}

/** Prefix of one body's chunks. */
export function vaultBlobPrefix(sha256hex: string): Deno.KvKey {
  return ["vault", "blob", sha256hex];
}

/** The generated checkpoint signing key. */
export function signingKeyKey(): Deno.KvKey {
  return ["signing_key"];
}

/** The log's fixed identity (origin). */
export function vaultMetaKey(): Deno.KvKey {
  return ["vault", "meta"];
}

/** One hold record. */
export function holdKey(id: string): Deno.KvKey {
  return ["hold", id];
}

/** Index of the holds one principal has asked for: value is the hold id. */
export function holdByPrincipalKey(principal: string, id: string): Deno.KvKey {
  return ["hold_by_principal", principal, id];
}

/** Prefix of one principal's hold index. */
export function holdByPrincipalPrefix(principal: string): Deno.KvKey {
  return ["hold_by_principal", principal];
}

/**
 * The generation of one principal's open holds: changed by every hold created under a cap, so
 * two creations that counted the open holds at once cannot both commit past it.
 */
export function holdOpenGenKey(principal: string): Deno.KvKey {
  return ["hold_open_gen", principal];
}

/**
 * A hold marked expired whose `hold_expired` entry is not known to be sealed yet: written in the
 * marking's own commit, deleted once the entry is sealed, so a process that dies in between
 * leaves it for the next sweep (the entry itself is once per hold: {@link holdExpiredSealKey}).
 */
export function holdExpiryUnsealedKey(id: string): Deno.KvKey {
  return ["hold_expiry_unsealed", id];
}

/** Prefix of {@link holdExpiryUnsealedKey}. */
export function holdExpiryUnsealedPrefix(): Deno.KvKey {
  return ["hold_expiry_unsealed"];
}

/** The vault index of hold `id`'s `hold_expired` entry (the ledger's once key for it). */
export function holdExpiredSealKey(id: string): Deno.KvKey {
  return ["hold_expired_seal", id];
}

/** Prefix of every hold record. */
export function holdPrefix(): Deno.KvKey {
  return ["hold"];
}

/** One governed session of the metabolic chain. */
export function govSessionKey(id: string): Deno.KvKey {
  return ["gov_session", id];
}

/**
 * The vault index of governed session `id`'s `session_seal` entry: set in that entry's own
 * commit (the ledger's `once` key), so a session is sealed in the vault at most once, whatever
 * the state of its seal claim.
 */
export function govSessionSealKey(id: string): Deno.KvKey {
  return ["gov_session_seal", id];
}

/** Prefix of every governed session. */
export function govSessionPrefix(): Deno.KvKey {
  return ["gov_session"];
}

/** Index entry: governed session `id` belongs to `principal`. */
export function govSessionByPrincipalKey(principal: string, id: string): Deno.KvKey {
  return ["gov_session_by_principal", principal, id];
}

/** Prefix of the governed sessions of one principal. */
export function govSessionByPrincipalPrefix(principal: string): Deno.KvKey {
  return ["gov_session_by_principal", principal];
}

/** Index entry: `principal` fetched the evidence `sha256hex`. */
export function evidenceByPrincipalKey(principal: string, sha256hex: string): Deno.KvKey {
  return ["evidence_by_principal", principal, sha256hex];
}

/** Prefix of the evidence one principal fetched. */
export function evidenceByPrincipalPrefix(principal: string): Deno.KvKey {
  return ["evidence_by_principal", principal];
}

/** The content hash last fetched from a URL (keyed by the URL's SHA-256, so no URL text is a key). */
export function evidenceUrlKey(urlSha256: string): Deno.KvKey {
  return ["evidence_url", urlSha256];
}

/** Fetched content kept as evidence, by content hash. */
export function evidenceKey(sha256hex: string): Deno.KvKey {
  return ["evidence", sha256hex];
}

/** Prefix of every evidence record. */
export function evidencePrefix(): Deno.KvKey {
  return ["evidence"];
}

/** A rate limit's state (GCRA theoretical arrival time) for one dimension and subject. */
export function usageRateKey(dimension: string, subject: string): Deno.KvKey {
  return ["usage_rate", dimension, subject];
}

/** Calls in flight for one subject, across every instance: each instance's acquisitions. */
export function usageInFlightKey(subject: string): Deno.KvKey {
  return ["usage_inflight", subject];
}

/**
 * How many of its calls in flight for one subject one instance (`holder`: its
 * id and generation) has finished: a `Deno.KvU64` only that instance raises.
 */
export function usageReleasedKey(subject: string, holder: string): Deno.KvKey {
  return ["usage_released", subject, holder];
}

/** Prefix of every release counter (swept when their holders lapse). */
export function usageReleasedPrefix(): Deno.KvKey {
  return ["usage_released"];
}

/** Calls counted against a budget period ("d" + UTC day, "m" + UTC month) of one subject. */
export function usageBudgetKey(subject: string, period: string): Deno.KvKey {
  return ["usage_budget", subject, period];
}

/** Cost units spent in a budget period of one subject (a `Deno.KvU64` summed atomically). */
export function usageCostKey(subject: string, period: string): Deno.KvKey {
  return ["usage_cost", subject, period];
}

/** Model tokens spent in a budget period of one subject (a `Deno.KvU64` summed atomically). */
export function usageTokensKey(subject: string, period: string): Deno.KvKey {
  return ["usage_tokens", subject, period];
}

/** An upstream in the gateway registry (public view: no headers or environment values). */
export function upstreamKey(name: string): Deno.KvKey {
  return ["upstream", name];
}

/** Prefix of every upstream record (for listing). */
export function upstreamPrefix(): Deno.KvKey {
  return ["upstream"];
}

/** The definition hash pinned for one upstream tool (F10). */
export function upstreamPinKey(server: string, tool: string): Deno.KvKey {
  return ["upstream_pin", server, tool];
}

/** One principal's OAuth tokens for an upstream (encrypted; the record says the kind only). */
export function upstreamUserTokenKey(upstream: string, principal: string): Deno.KvKey {
  return ["upstream_user_token", upstream, principal];
}

/** Every principal's tokens for `upstream`. */
export function upstreamUserTokenPrefix(upstream: string): Deno.KvKey {
  return ["upstream_user_token", upstream];
}

/** Warden's client registration at an upstream's authorization server (encrypted). */
export function upstreamOAuthClientKey(upstream: string): Deno.KvKey {
  return ["upstream_oauth_client", upstream];
}

/** A pending authorization at an upstream, by the SHA-256 of its `state`. */
export function upstreamAuthStateKey(stateSha256: string): Deno.KvKey {
  return ["upstream_auth_state", stateSha256];
}

/** A used authorization link, by its SHA-256 (each works once). */
export function upstreamAuthTicketUsedKey(ticketSha256: string): Deno.KvKey {
  return ["upstream_auth_ticket_used", ticketSha256];
}

/** One instance's usage totals for a period ("h" hour, "d" day starting at `startMs`) and group. */
export function usageRollupKey(
  period: "h" | "d",
  startMs: number,
  principal: string,
  tool: string,
  upstream: string,
  instance: string,
): Deno.KvKey {
  return ["usage_rollup", period, startMs, principal, tool, upstream, instance];
}

/** Prefix of every usage row of one period kind (rows sort by period start). */
export function usageRollupPrefix(period: "h" | "d"): Deno.KvKey {
  return ["usage_rollup", period];
}

/** One instance's usage row for (principal, tool, upstream) within one session (expires with it). */
export function usageSessionKey(
  session: string,
  principal: string,
  tool: string,
  upstream: string,
  instance: string,
): Deno.KvKey {
  return ["usage_session", session, principal, tool, upstream, instance];
}

/** Prefix of the session usage rows: all of them, or one session's. */
export function usageSessionPrefix(session?: string): Deno.KvKey {
  return session === undefined ? ["usage_session"] : ["usage_session", session];
}

/** The key of a minted token, by the SHA-256 (hex) of its secret. */
export function identityTokenKey(sha256hex: string): Deno.KvKey {
  return ["identity_token", sha256hex];
}

/** Prefix of every minted token. */
export function identityTokenPrefix(): Deno.KvKey {
  return ["identity_token"];
}

/** The key of one user record. */
export function identityUserKey(name: string): Deno.KvKey {
  return ["identity_user", name];
}

/** Prefix of every user record. */
export function identityUserPrefix(): Deno.KvKey {
  return ["identity_user"];
}

/** One stored memory value of a principal. */
export function memoryKey(principal: string, key: string): Deno.KvKey {
  return ["memory", principal, key];
}

/** Prefix of every memory value of one principal (a list never crosses principals). */
export function memoryPrefix(principal: string): Deno.KvKey {
  return ["memory", principal];
}

/** How many memory keys a principal holds (an upper bound; recounted when full). */
export function memoryCountKey(principal: string): Deno.KvKey {
  return ["memory_count", principal];
}

/** The head record of one sandbox file (versions, newest last). */
export function fileKey(path: string): Deno.KvKey {
  return ["file", path];
}

/** Prefix of every sandbox file head (listing). */
export function filePrefix(): Deno.KvKey {
  return ["file"];
}

/** A content-addressed blob's manifest (size, chunks, reference count). */
export function fileBlobKey(sha256hex: string): Deno.KvKey {
  return ["file_blob", sha256hex];
}

/** Chunk `n` of a content-addressed blob, as uploaded by write `upload`. */
export function fileBlobChunkKey(sha256hex: string, upload: string, n: number): Deno.KvKey {
  return ["file_chunk", sha256hex, upload, n];
}

/** How many files the sandbox holds. */
export function fileCountKey(): Deno.KvKey {
  return ["file_count"];
}

/** The lease on one sandbox file. */
export function fileLeaseKey(path: string): Deno.KvKey {
  return ["file_lease", path];
}

/** A dashboard session, by the SHA-256 (hex) of its cookie secret. */
export function dashboardSessionKey(sha256hex: string): Deno.KvKey {
  return ["dashboard_session", sha256hex];
}

/** A principal's verified execution: vault index and receipt. */
export function executionKey(principal: string, id: string): Deno.KvKey {
  return ["execution", principal, id];
}

/** Index entry: execution `id` of `principal` belongs to `caseId`. */
export function executionByCaseKey(principal: string, caseId: string, id: string): Deno.KvKey {
  return ["execution_by_case", principal, caseId, id];
}

/** Prefix of one principal's executions in a case. */
export function executionByCasePrefix(principal: string, caseId: string): Deno.KvKey {
  return ["execution_by_case", principal, caseId];
}

/**
 * Which index a context key belongs to: `ctx` the context_* documents, `memidx` the text index
 * of memory values (memory_search), so no namespace of one can reach the other.
 */
export type ContextFamily = "ctx" | "memidx";

/** A context namespace's corpus statistics. */
export function contextStatsKey(ns: string, family: ContextFamily = "ctx"): Deno.KvKey {
  return [`${family}_stats`, ns];
}

/** One context document. */
export function contextDocKey(
  ns: string,
  docId: string,
  family: ContextFamily = "ctx",
): Deno.KvKey {
  return [`${family}_doc`, ns, docId];
}

/** The document frequency of a term. */
export function contextDfKey(ns: string, term: string, family: ContextFamily = "ctx"): Deno.KvKey {
  return [`${family}_df`, ns, term];
}

/** One BM25 posting: `rank` is 65535 − tf, so a list yields the highest tf first. */
export function contextPostingKey(
  ns: string,
  term: string,
  rank: number,
  length: number,
  docId: string,
  family: ContextFamily = "ctx",
): Deno.KvKey {
  return [`${family}_post`, ns, term, rank, length, docId];
}

/** Prefix of every posting of one term. */
export function contextPostingPrefix(
  ns: string,
  term: string,
  family: ContextFamily = "ctx",
): Deno.KvKey {
  return [`${family}_post`, ns, term];
}

/** A graph entity. */
export function contextEntityKey(
  ns: string,
  entityId: string,
  family: ContextFamily = "ctx",
): Deno.KvKey {
  return [`${family}_entity`, ns, entityId];
}

/** Prefix of every entity of a namespace. */
export function contextEntityPrefix(ns: string, family: ContextFamily = "ctx"): Deno.KvKey {
  return [`${family}_entity`, ns];
}

/** A document's mention of an entity. */
export function contextMentionKey(
  ns: string,
  entityId: string,
  docId: string,
  family: ContextFamily = "ctx",
): Deno.KvKey {
  return [`${family}_mention`, ns, entityId, docId];
}

/** Prefix of the documents mentioning an entity. */
export function contextMentionPrefix(
  ns: string,
  entityId: string,
  family: ContextFamily = "ctx",
): Deno.KvKey {
  return [`${family}_mention`, ns, entityId];
}

/** A relation, keyed from its source (`in: false`) or from its target (`in: true`). */
export function contextRelationKey(
  ns: string,
  first: string,
  type: string,
  second: string,
  incoming: boolean,
  family: ContextFamily = "ctx",
): Deno.KvKey {
  return [incoming ? `${family}_rel_in` : `${family}_rel`, ns, first, type, second];
}

/** Prefix of the relations leaving (`incoming: false`) or reaching an entity. */
export function contextRelationPrefix(
  ns: string,
  entityId: string,
  incoming: boolean,
  family: ContextFamily = "ctx",
): Deno.KvKey {
  return [incoming ? `${family}_rel_in` : `${family}_rel`, ns, entityId];
}

/** A context document's embedding (Float32 bytes, unit length). */
export function contextVectorKey(
  ns: string,
  docId: string,
  family: ContextFamily = "ctx",
): Deno.KvKey {
  return [`${family}_vec`, ns, docId];
}

/** A bus topic's head: its last sequence number. */
export function busHeadKey(principal: string, topic: string): Deno.KvKey {
  return ["bus_head", principal, topic];
}

/** Prefix of every topic head of a principal (counting topics). */
export function busHeadPrefix(principal: string): Deno.KvKey {
  return ["bus_head", principal];
}

/** One published message. */
export function busMessageKey(principal: string, topic: string, seq: number): Deno.KvKey {
  return ["bus_msg", principal, topic, seq];
}

/** The head of the instances' event bus (its last sequence number), watched by every instance. */
export function instanceEventHeadKey(): Deno.KvKey {
  return ["instance_events", "head"];
}

/** One event on the instances' event bus. */
export function instanceEventKey(seq: number): Deno.KvKey {
  return ["instance_events", "e", seq];
}

/** The HMAC key sealing 2026-07-28 hold `requestState`s, shared by every instance. */
export function requestStateKeyKey(): Deno.KvKey {
  return ["mcp", "request_state_key"];
}

/** One 2026-07-28 task record. */
export function taskKey(id: string): Deno.KvKey {
  return ["mcp_task", id];
}

/** Index of one principal's tasks, oldest first (their count is capped). */
export function taskByPrincipalKey(principal: string, createdAtMs: number, id: string): Deno.KvKey {
  return ["mcp_task_by_principal", principal, createdAtMs, id];
}

/** Every task index entry of one principal. */
export function taskByPrincipalPrefix(principal: string): Deno.KvKey {
  return ["mcp_task_by_principal", principal];
}

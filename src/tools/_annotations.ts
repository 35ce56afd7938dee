/**
 * The MCP annotations most tools share, written once (a tool that differs spreads one and
 * overrides the hint that differs). Governance reads them: F1 weighs a write that is not
 * read-only, F10 hashes them with the rest of the definition.
 */

/** Changes nothing and reaches nothing outside Warden; the same call answers the same. */
export const READ_ONLY = Object.freeze({
  readOnlyHint: true,
  destructiveHint: false,
  idempotentHint: true,
  openWorldHint: false,
});

/** A reversible write that adds each time it is called (a message, a version, a document). */
export const WRITE = Object.freeze({
  readOnlyHint: false,
  destructiveHint: false,
  idempotentHint: false,
  openWorldHint: false,
});

/** A reversible write that, repeated, leaves the state as one call did (store, lease, expire). */
export const IDEMPOTENT_WRITE = Object.freeze({
  readOnlyHint: false,
  destructiveHint: false,
  idempotentHint: true,
  openWorldHint: false,
});

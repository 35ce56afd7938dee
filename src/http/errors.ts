/**
 * The one HTTP error type and the one place domain error codes become HTTP statuses. Domain
 * folders throw errors that carry a `code` (`HoldError`, …); only this edge decides what status
 * a code answers with.
 * @module
 */
import { HoldError, type HoldErrorCode } from "../governance/mod.ts";
// Types only: a value import would load the gateway (and the MCP SDK) wherever errors are used.
import type { RegistrationError, RegistrationErrorCode } from "../gateway/mod.ts";

/** What an {@link HttpError} carries besides its status and message. */
export interface HttpErrorOptions {
  /** The JSON-RPC error code of the body on MCP paths (default -32000). */
  readonly rpcCode?: number;
  /** Extra response headers (`WWW-Authenticate`, `Allow`, `Retry-After`, …). */
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * An HTTP-level refusal; the app's error handler renders it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { HttpError } from "./errors.ts";
 * const e = new HttpError(401, "Unauthorized: missing bearer token", {
 *   rpcCode: -32001,
 *   headers: { "www-authenticate": "Bearer" },
 * });
 * assert.equal(e.status, 401);
 * assert.equal(e.rpcCode, -32001);
 * assert.equal(new HttpError(404, "Not Found").rpcCode, -32000);
 * ```
 */
export class HttpError extends Error {
  override name = "HttpError";
  readonly rpcCode: number;
  readonly headers: Readonly<Record<string, string>>;
  constructor(readonly status: number, message: string, options: HttpErrorOptions = {}) {
    super(message);
    this.rpcCode = options.rpcCode ?? -32000;
    this.headers = options.headers ?? {};
  }
}

/** The HTTP status each hold refusal answers with (REST holds routes and the dashboard alike). */
export const HOLD_STATUS: Readonly<Record<HoldErrorCode, number>> = {
  unknown_hold: 404,
  contended: 409,
  too_many_open: 429,
  expired: 410,
  already_decided: 409,
  unknown_operator: 403,
  bad_signature: 403,
  duplicate_approval: 409,
  different_call: 403,
  already_used: 409,
  denied: 403,
  pending: 409,
};

/**
 * The status a hold refusal answers with.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { holdStatus } from "./errors.ts";
 * assert.equal(holdStatus("expired"), 410);
 * ```
 */
export function holdStatus(code: HoldErrorCode): number {
  return HOLD_STATUS[code];
}

/** The HTTP status each gateway refusal answers with (REST gateway routes and the dashboard). */
export const REGISTRATION_STATUS: Readonly<Record<RegistrationErrorCode, number>> = {
  invalid: 400,
  not_found: 404,
  conflict: 409,
  bad_signature: 403,
};

/**
 * The status a domain refusal answers with: a hold refusal or a gateway refusal by its code.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { HoldError } from "../governance/mod.ts";
 * import { statusOf } from "./errors.ts";
 * assert.equal(statusOf(new HoldError("Hold h has expired", "expired")), 410);
 * ```
 */
export function statusOf(e: HoldError | RegistrationError): number {
  return e instanceof HoldError ? HOLD_STATUS[e.code] : REGISTRATION_STATUS[e.code];
}

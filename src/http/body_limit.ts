/**
 * The one body reader every route that reads a body uses: bounded (413 past the limit), timed
 * (408 when the client is too slow) and parsed as JSON (400 with -32700 when empty or malformed);
 * the JSON-only routes also require `Content-Type: application/json` (415) before reading.
 * @module
 */
import type { DeadlineScheduler } from "../lib/mod.ts";
import { HttpError } from "./errors.ts";
import { parseJson, readBody, requireJsonContentType } from "./guards.ts";

/** Options of {@link bodyLimit}. */
export interface BodyLimitOptions {
  /** The largest body read, in bytes. */
  readonly maxBytes: number;
  /** How long the whole body may take to arrive. */
  readonly timeoutMs: number;
  /** The scheduler the read timeout runs on. */
  readonly deadlines: DeadlineScheduler;
}

/** Reads a request's JSON body within the limits {@link bodyLimit} was made with. */
export interface BodyReader {
  /** The bounded, timed JSON body, whatever Content-Type says (the judge, holds and gateway routes). */
  json(req: Request): Promise<unknown>;
  /** The same after requiring `Content-Type: application/json` (/invoke, /api/mcp, /mcp, /messages). */
  jsonOnly(req: Request): Promise<unknown>;
}

/**
 * Creates the reader; options are checked here, not on the first request.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDeadlineScheduler } from "../lib/mod.ts";
 * import { bodyLimit } from "./body_limit.ts";
 * import { HttpError } from "./errors.ts";
 * const body = bodyLimit({ maxBytes: 16, timeoutMs: 1000, deadlines: createDeadlineScheduler() });
 * const post = (text: string) => new Request("http://x/", { method: "POST", body: text });
 * assert.deepEqual(await body.json(post('{"a":1}')), { a: 1 });
 * await assert.rejects(body.json(post('{"a":"far too long"}')), (e) => e instanceof HttpError && e.status === 413);
 * await assert.rejects(body.jsonOnly(post("{}")), (e) => e instanceof HttpError && e.status === 415);
 * ```
 */
export function bodyLimit(options: BodyLimitOptions): BodyReader {
  const { maxBytes, timeoutMs, deadlines } = options;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) {
    throw new TypeError("Cannot create bodyLimit: maxBytes must be a non-negative integer");
  }
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new TypeError("Cannot create bodyLimit: timeoutMs must be a positive number");
  }
  if (typeof deadlines?.timeout !== "function") {
    throw new TypeError("Cannot create bodyLimit: deadlines must be a DeadlineScheduler");
  }
  const limits = { maxBytes, timeoutMs, deadlines };
  async function json(req: Request): Promise<unknown> {
    const text = await readBody(req, limits);
    if (text.trim() === "") {
      throw new HttpError(400, "Parse error: empty body", { rpcCode: -32700 });
    }
    return parseJson(text);
  }
  return {
    json,
    async jsonOnly(req) {
      requireJsonContentType(req);
      return await json(req);
    },
  };
}

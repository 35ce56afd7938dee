/**
 * HTTP surface: the Hono app, edge guards and REST routes.
 * @module
 */
export { createHttpApp, type HttpDeps } from "./app.ts";
export {
  HOLD_STATUS,
  holdStatus,
  HttpError,
  type HttpErrorOptions,
  REGISTRATION_STATUS,
  statusOf,
} from "./errors.ts";

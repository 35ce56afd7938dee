/**
 * The CLI commands main.ts hands over to that are not the server itself:
 * `warden token|user …` (principals in the --kv file) and
 * `warden upstream credential …` (the secrets Warden presents to upstreams).
 *
 * @module
 */
export { IDENTITY_USAGE, identityCommand } from "./identity.ts";
export { CREDENTIAL_USAGE, credentialCommand } from "./upstream.ts";
export {
  startWorkers,
  withPort,
  WORKER_INDEX_ENV,
  type Workers,
  workersRefusal,
} from "./workers.ts";

/**
 * The CLI commands main.ts hands over to, one file each: `serve` and `stdio` (serve.ts),
 * `health` (health.ts), `export` and `verify` (vault.ts), `keygen`, `approve|deny|approve-tool` (holds.ts),
 * `warden token|user …` (principals in the --kv file, identity.ts) and
 * `warden upstream credential …` (the secrets Warden presents to upstreams, upstream.ts).
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
export { type MainOptions, withSigningKeyFile } from "./_common.ts";
export { serve, stdio } from "./serve.ts";
export { health } from "./health.ts";
export { exportCommand, verifyCommand } from "./vault.ts";
export { keygenCommand } from "./keygen.ts";
export { approveToolCommand, decideCommand } from "./holds.ts";

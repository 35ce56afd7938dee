/**
 * The gateway: upstream registry, client pool, catalogue of pinned upstream
 * tools, circuit breakers. Upstream calls are governed by the tool registry's
 * one call path; nothing here runs a call outside it.
 *
 * @module
 */
export {
  type CatalogueKind,
  createGateway,
  definitionHash,
  type Gateway,
  type GatewayDeps,
  RegistrationError,
  type RegistrationErrorCode,
  signToolApproval,
  toolApprovalMessage,
  type UpstreamContent,
  type UpstreamFailure,
  type UpstreamStatus,
  type UpstreamToolDescriptor,
  type UpstreamToolEntry,
} from "./gateway.ts";
export {
  exposedName,
  ManifestError,
  parseRegistration,
  parseUpstreams,
  type UpstreamConfig,
  type UpstreamTransport,
} from "./manifest.ts";
export { type BreakerSnapshot, createBreaker } from "./breaker.ts";
export {
  createCredentialStore,
  CredentialError,
  type CredentialKind,
  type CredentialStore,
  type CredentialSummary,
  generateCredentialKeyString,
  importCredentialKey,
  loadCredentialKey,
  type LoadedCredentialKey,
  type SealedBox,
  type UpstreamCredential,
} from "./credentials.ts";
export { type ContentMethod, UpstreamUnavailableError } from "./connection.ts";
export {
  namespaceResultUris,
  parseUpstreamUri,
  UPSTREAM_URI_SCHEME,
  upstreamUri,
} from "./upstream_uri.ts";
export {
  AuthorizationFlowError,
  CALLBACK_PATH,
  CLIENT_METADATA_PATH,
  START_PATH,
  type UserAuthorizations,
} from "./user_authorization.ts";
export {
  type AnnounceManifest,
  type Announcer,
  type AnnounceState,
  createAnnouncer,
} from "./announce.ts";
export {
  boundedMessages,
  MAX_UPSTREAM_MESSAGE_BYTES,
  UpstreamMessageTooLargeError,
} from "./message_bound.ts";

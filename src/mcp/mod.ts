/**
 * MCP surfaces: the per-session server factory, Streamable HTTP sessions with
 * KV persistence and resumability, the legacy SSE transport and stdio.
 * @module
 */
export * from "./server.ts";
export * from "./session_store.ts";
export * from "./streamable.ts";
export * from "./modern.ts";
export * from "./legacy_sse.ts";
export * from "./websocket.ts";
export * from "./stdio.ts";
export { type HoldPromptDeps, loadRequestStateKey } from "./hold_prompt.ts";
export * from "./tasks.ts";
export { KvEventStore } from "./event_store.ts";
export { conformanceExtension } from "./conformance.ts";
export { modernConformanceExtension } from "./conformance_modern.ts";
export { wardenExtension } from "./warden_extension.ts";
export {
  createListenSubscriptions,
  createSubscriptionHub,
  type ListenSubscription,
  type ListenSubscriptions,
  MAX_SUBSCRIPTIONS,
  MAX_SUBSCRIPTIONS_PER_SESSION,
  parseUpstreamUri,
  type Subscriber,
  type SubscriptionHub,
  type UpstreamContentDeps,
  upstreamContentExtension,
  upstreamUri,
} from "./upstream_content.ts";
export { refusalResponse, screenBody, screenMessage } from "./screen.ts";

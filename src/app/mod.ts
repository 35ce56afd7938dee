/**
 * The composition root's steps, each wiring one part of the server from what the steps before it
 * built; src/app.ts calls them in order.
 * @module
 */
export { allowFor, publicBaseOf } from "./addresses.ts";
export { buildGateway, type GatewayStep, type GatewayStepDeps } from "./gateway.ts";
export { buildGovernance, type GovernanceStep, type GovernanceStepDeps } from "./governance.ts";
export { buildHttp, type HttpStepDeps } from "./http.ts";
export { buildIdentity, type IdentityStep, type IdentityStepDeps } from "./identity.ts";
export {
  type Background,
  type BackgroundDeps,
  closeApp,
  type ClosingParts,
  startBackground,
} from "./lifecycle.ts";
export {
  buildMcpServers,
  buildTransports,
  type McpServers,
  type McpServersDeps,
  type NewMcpServer,
  type Transports,
  type TransportsDeps,
} from "./mcp.ts";
export { type Core, type CoreDeps, openCore } from "./core.ts";
export { observeCalls } from "./observe_calls.ts";
export { buildTools, type ExtraTools, type ToolsStep, type ToolsStepDeps } from "./tools.ts";
export { openStores, secretPaths, type Stores } from "./stores.ts";
export { openVault, type VaultStep } from "./vault.ts";

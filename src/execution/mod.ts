/**
 * Sandboxes that run what a caller asks for without trusting it: today the
 * shell (bubblewrap) behind `eureka_forge`'s `command`.
 *
 * @module
 */
export {
  createShellSandbox,
  SandboxUnavailableError,
  type ShellLimits,
  type ShellResult,
  type ShellSandbox,
  type ShellSandboxOptions,
} from "./shell.ts";
export { openShell, type ShellService, type ShellSettings } from "./service.ts";

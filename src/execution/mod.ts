/**
 * Sandboxes that run what a caller asks for without trusting it: the shell
 * (bubblewrap) behind `eureka_forge`'s `command`, and the code sandbox (a
 * permissionless `deno run` process) behind `secure_execute`, and the chat
 * client its kind `prompt` sends to.
 *
 * @module
 */
export { type ProcessResult } from "./_child.ts";
export {
  createShellSandbox,
  SandboxUnavailableError,
  type ShellLimits,
  type ShellResult,
  type ShellSandbox,
  type ShellSandboxOptions,
} from "./shell.ts";
export { openShell, type ShellService, type ShellSettings } from "./service.ts";
export {
  type CodeLanguage,
  type CodeLimits,
  codeLimitsOf,
  type CodeResult,
  type CodeRuntime,
  type CodeSandbox,
  CodeSandboxBusyError,
  CodeSandboxUnavailableError,
  type CodeService,
  type CodeSettings,
  createCodeSandbox,
  openCodeSandbox,
} from "./code.ts";
export {
  type ChatClient,
  type ChatCompletion,
  ChatEndpointError,
  type ChatService,
  type ChatSettings,
  openChat,
} from "./prompt.ts";

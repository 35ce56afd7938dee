/**
 * The chat client behind `secure_execute` kind `prompt`: one call to a
 * configured OpenAI-compatible `POST /chat/completions` endpoint. The
 * endpoint is the operator's (policy), never the caller's; redirects are
 * refused (a key must not follow one), the answer is read within a size cap
 * and a deadline, and validated field by field. Redaction happens before
 * this is called: what `complete` gets is what leaves.
 *
 * @module
 */

import { callDeadline, endpointUrl, postJson } from "../net/mod.ts";

/** The policy's `execution.prompt` section, as far as the client reads it. */
export interface ChatSettings {
  /** Base URL of the API (`…/v1`); `/chat/completions` is appended. */
  readonly endpoint_url?: string;
  readonly model?: string;
  /** Models a prompt may name; empty: any (fortress needs a non-empty list). */
  readonly models: readonly string[];
  readonly timeout_ms: number;
  readonly max_tokens: number;
  readonly max_response_bytes: number;
}

/** What one completion returned. */
export interface ChatCompletion {
  readonly text: string;
  /** The model the endpoint says answered. */
  readonly model: string;
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly finishReason: string | null;
}

/** A client ready to send prompts. */
export interface ChatClient {
  /** The endpoint's origin (recorded in receipts; never the key). */
  readonly endpoint: string;
  readonly settings: ChatSettings;
  complete(
    request: { model: string; prompt: string; maxTokens?: number; signal?: AbortSignal },
  ): Promise<ChatCompletion>;
}

/** What the tools see: a client, or why prompts are refused. */
export type ChatService =
  | { readonly available: true; readonly client: ChatClient }
  | { readonly available: false; readonly reason: string };

/** The endpoint failed, timed out or answered something that is not a completion. */
export class ChatEndpointError extends Error {
  override name = "ChatEndpointError";
}

/**
 * Opens the chat service: unavailable with the reason when no endpoint is
 * configured or its URL is not http(s).
 *
 * @example
 * ```ts
 * import { openChat } from "./prompt.ts";
 * const chat = openChat({ settings: { models: [], timeout_ms: 30000, max_tokens: 1024,
 *   max_response_bytes: 1048576 } });
 * chat.available; // false: no endpoint configured
 * ```
 */
export function openChat(options: {
  readonly settings: ChatSettings;
  readonly apiKey?: string;
  readonly fetch?: typeof fetch;
}): ChatService {
  const { settings } = options;
  const at = endpointUrl(settings.endpoint_url, "/chat/completions", {
    label: "chat endpoint",
    setting: "execution.prompt.endpoint_url",
  });
  if (!at.ok) return { available: false, reason: at.reason };
  const { url } = at;
  return {
    available: true,
    client: {
      endpoint: at.origin,
      settings,
      async complete(request) {
        const text = await postJson(url, {
          model: request.model,
          messages: [{ role: "user", content: request.prompt }],
          max_tokens: Math.min(request.maxTokens ?? settings.max_tokens, settings.max_tokens),
        }, {
          ...(options.apiKey ? { apiKey: options.apiKey } : {}),
          deadline: callDeadline(settings.timeout_ms, request.signal),
          timeoutMs: settings.timeout_ms,
          maxResponseBytes: settings.max_response_bytes,
          label: "chat endpoint",
          capSetting: "execution.prompt.max_response_bytes",
          fail: (message) => new ChatEndpointError(message),
          ...(options.fetch ? { fetch: options.fetch } : {}),
        });
        return parseCompletion(text, request.model);
      },
    },
  };
}

function count(value: unknown): number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 ? value : 0;
}

function parseCompletion(text: string, asked: string): ChatCompletion {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new ChatEndpointError("the chat endpoint's answer is not JSON");
  }
  const choice = Array.isArray(doc?.choices) ? doc.choices[0] : undefined;
  const content = choice?.message?.content;
  if (typeof content !== "string") {
    throw new ChatEndpointError("the chat endpoint's answer has no choices[0].message.content");
  }
  const usage = (doc.usage ?? {}) as Record<string, unknown>;
  return {
    text: content,
    model: typeof doc.model === "string" ? doc.model.slice(0, 200) : asked,
    inputTokens: count(usage.prompt_tokens),
    outputTokens: count(usage.completion_tokens),
    finishReason: typeof choice.finish_reason === "string" ? choice.finish_reason : null,
  };
}

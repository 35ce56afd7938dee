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

import { readCapped } from "../net/mod.ts";

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
  if (settings.endpoint_url === undefined) {
    return {
      available: false,
      reason: "no chat endpoint is configured (policy execution.prompt.endpoint_url)",
    };
  }
  let base: URL;
  try {
    base = new URL(settings.endpoint_url);
  } catch {
    return { available: false, reason: "policy execution.prompt.endpoint_url is not a URL" };
  }
  if (base.protocol !== "http:" && base.protocol !== "https:") {
    return { available: false, reason: "policy execution.prompt.endpoint_url must be http(s)" };
  }
  const url = new URL(base.pathname.replace(/\/+$/, "") + "/chat/completions", base);
  const doFetch = options.fetch ?? fetch;
  return {
    available: true,
    client: {
      endpoint: base.origin,
      settings,
      async complete(request) {
        const signal = AbortSignal.any([
          AbortSignal.timeout(settings.timeout_ms),
          ...(request.signal ? [request.signal] : []),
        ]);
        let res: Response;
        try {
          res = await doFetch(url, {
            method: "POST",
            redirect: "error",
            signal,
            headers: {
              "content-type": "application/json",
              ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}),
            },
            body: JSON.stringify({
              model: request.model,
              messages: [{ role: "user", content: request.prompt }],
              max_tokens: Math.min(request.maxTokens ?? settings.max_tokens, settings.max_tokens),
            }),
          });
        } catch (e) {
          throw new ChatEndpointError(
            signal.aborted && !request.signal?.aborted
              ? `the chat endpoint did not answer within ${settings.timeout_ms} ms`
              : `cannot reach the chat endpoint ${base.origin}: ${(e as Error).message}`,
          );
        }
        let body: Uint8Array | undefined;
        try {
          body = res.body ? await readCapped(res.body, settings.max_response_bytes) : undefined;
        } catch (e) {
          throw new ChatEndpointError(
            signal.aborted
              ? `the chat endpoint did not finish answering within ${settings.timeout_ms} ms`
              : `cannot read the chat endpoint's answer: ${(e as Error).message}`,
          );
        }
        if (body === undefined && res.body) {
          throw new ChatEndpointError(
            `the chat endpoint's answer is over ${settings.max_response_bytes} bytes ` +
              "(policy execution.prompt.max_response_bytes)",
          );
        }
        const text = new TextDecoder().decode(body ?? new Uint8Array());
        if (!res.ok) {
          throw new ChatEndpointError(
            `the chat endpoint answered ${res.status}: ${text.slice(0, 200)}`,
          );
        }
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

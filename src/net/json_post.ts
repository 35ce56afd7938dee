/**
 * One JSON `POST` to an operator-configured API endpoint (the OpenAI-compatible
 * chat and embeddings clients), and the URL it goes to: redirects refused, since a key must not follow
 * one; the answer read within a size cap and the caller's deadline; every
 * failure told in one wording, naming the endpoint.
 *
 * @module
 */
import { readCapped } from "./body.ts";

/** A call's deadline joined with its caller's own signal. */
export interface CallDeadline {
  /** Aborts when the deadline passes or the caller aborts. */
  readonly signal: AbortSignal;
  /** True when the deadline, not the caller, ended the call. */
  readonly late: () => boolean;
}

/**
 * A deadline `timeoutMs` from now, joined with `caller` (when given): one
 * signal for the whole call, and whether it was the deadline that fired.
 *
 * @example
 * ```ts
 * import { callDeadline } from "./json_post.ts";
 * const caller = new AbortController();
 * const deadline = callDeadline(60_000, caller.signal);
 * caller.abort();
 * console.log(deadline.signal.aborted, deadline.late()); // true false
 * ```
 */
export function callDeadline(timeoutMs: number, caller?: AbortSignal): CallDeadline {
  const signal = caller
    ? AbortSignal.any([AbortSignal.timeout(timeoutMs), caller])
    : AbortSignal.timeout(timeoutMs);
  return { signal, late: () => signal.aborted && !caller?.aborted };
}

/**
 * The URL of an API path below an operator's configured base URL (`…/v1` +
 * `/embeddings`), or why there is none: no base configured, not a URL, or not
 * http(s). `setting` names the policy field in the reason.
 *
 * @example
 * ```ts
 * import { endpointUrl } from "./json_post.ts";
 * const at = endpointUrl("https://api.example/v1/", "/embeddings", {
 *   label: "embeddings endpoint", setting: "context.embeddings.endpoint_url",
 * });
 * console.log(at.ok && at.url.href); // https://api.example/v1/embeddings
 * ```
 */
export function endpointUrl(
  base: string | undefined,
  path: string,
  names: { readonly label: string; readonly setting: string },
): { ok: true; origin: string; url: URL } | { ok: false; reason: string } {
  if (base === undefined) {
    return { ok: false, reason: `no ${names.label} is configured (policy ${names.setting})` };
  }
  let parsed: URL;
  try {
    parsed = new URL(base);
  } catch {
    return { ok: false, reason: `policy ${names.setting} is not a URL` };
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    return { ok: false, reason: `policy ${names.setting} must be http(s)` };
  }
  const url = new URL(parsed.pathname.replace(/\/+$/, "") + path, parsed);
  return { ok: true, origin: parsed.origin, url };
}

/** What {@link postJson} needs besides the URL and the body. */
export interface JsonPostOptions {
  /** Sent as `authorization: Bearer …` when set. */
  readonly apiKey?: string;
  /** The call's deadline ({@link callDeadline}); errors name `timeoutMs` when it passed. */
  readonly deadline: CallDeadline;
  readonly timeoutMs: number;
  readonly maxResponseBytes: number;
  /** The endpoint as errors name it: `"chat endpoint"` reads "the chat endpoint answered 500: …". */
  readonly label: string;
  /** The policy setting of the size cap, named when an answer is over it. */
  readonly capSetting: string;
  /** Makes the error thrown for a failure (the caller's own error class). */
  readonly fail: (message: string) => Error;
  readonly fetch?: typeof fetch;
}

/**
 * POSTs `body` as JSON to `url` and resolves with the text of a 2xx answer;
 * throws `options.fail(message)` when the endpoint cannot be reached, does not
 * answer in time, answers more than `maxResponseBytes` or answers a non-2xx
 * status (its first 200 characters in the message).
 *
 * @example
 * ```ts
 * import { callDeadline, postJson } from "./json_post.ts";
 * // An endpoint that echoes the request body (a real one is reached over the network).
 * const echo = (_url: string | URL | Request, init?: RequestInit) =>
 *   Promise.resolve(new Response(init?.body));
 * const text = await postJson(new URL("https://api.example/v1/echo"), { a: 1 }, {
 *   deadline: callDeadline(5000), timeoutMs: 5000,
 *   maxResponseBytes: 1024, label: "echo endpoint", capSetting: "echo.max_response_bytes",
 *   fail: (message) => new Error(message), fetch: echo,
 * });
 * console.log(text); // {"a":1}
 * ```
 */
export async function postJson(
  url: URL,
  body: unknown,
  options: JsonPostOptions,
): Promise<string> {
  const { label, fail } = options;
  const { signal, late } = options.deadline;
  let res: Response;
  try {
    res = await (options.fetch ?? fetch)(url, {
      method: "POST",
      redirect: "error",
      signal,
      headers: {
        "content-type": "application/json",
        ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}),
      },
      body: JSON.stringify(body),
    });
  } catch (e) {
    throw fail(
      late()
        ? `the ${label} did not answer within ${options.timeoutMs} ms`
        : `cannot reach the ${label} ${url.origin}: ${(e as Error).message}`,
    );
  }
  let bytes: Uint8Array | undefined;
  try {
    bytes = res.body ? await readCapped(res.body, options.maxResponseBytes) : undefined;
  } catch (e) {
    throw fail(
      late()
        ? `the ${label} did not finish answering within ${options.timeoutMs} ms`
        : `cannot read the ${label}'s answer: ${(e as Error).message}`,
    );
  }
  if (bytes === undefined && res.body) {
    throw fail(
      `the ${label}'s answer is over ${options.maxResponseBytes} bytes ` +
        `(policy ${options.capSetting})`,
    );
  }
  const text = new TextDecoder().decode(bytes ?? new Uint8Array());
  if (!res.ok) throw fail(`the ${label} answered ${res.status}: ${text.slice(0, 200)}`);
  return text;
}

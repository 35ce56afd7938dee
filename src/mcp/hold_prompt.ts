/**
 * 888_HOLD on the 2026-07-28 path: protocol 2026-07-28 has no server→client
 * requests, so where a 2025 session is asked through `elicitation/create`, a
 * modern client that declares `elicitation` gets an `input_required` result
 * asking the human in-band. Its `requestState` names the hold and the tool,
 * is HMAC-sealed with a key every instance shares (kept in KV) and bound to
 * the method and the caller's principal, so a state minted for one caller,
 * one hold or one tool is refused (-32602) for any other. The human's answer
 * is recorded like an elicitation answer (a decline denies the hold); it
 * never releases the call: the operator's signature still does.
 *
 * @module
 */
import {
  CLIENT_CAPABILITIES_META_KEY,
  createRequestStateCodec,
  inputRequired,
  inputResponse,
  ProtocolError,
  ProtocolErrorCode,
  type RequestStateCodec,
  type ServerContext,
} from "@modelcontextprotocol/server";
import type { HoldRecord } from "../governance/mod.ts";
import { requestStateKeyKey } from "../store/mod.ts";

/** The input request key a held call's confirmation travels under. */
export const HOLD_INPUT_KEY = "warden_hold_confirm";

/** The input request key a tool's sampling request travels under. */
export const SAMPLING_INPUT_KEY = "warden_sampling";

/** What a minted requestState says: which flow, for which tool. */
export type PromptState =
  | { readonly kind: "hold"; readonly hold: string; readonly tool: string }
  | { readonly kind: "sampling"; readonly tool: string };

/** What the modern path needs to ask about a hold and record the answer. */
export interface HoldPrompts {
  readonly codec: RequestStateCodec<PromptState>;
  readonly getHold: (id: string) => Promise<HoldRecord | null>;
  /**
   * Records the human's answer (a decline denies) and seals it, saying how it came: a retried
   * request's `input_required` answer (the default) or a task's `tasks/update`.
   */
  readonly answer: (
    hold: HoldRecord,
    action: string,
    via?: "input_required" | "tasks/update",
  ) => Promise<void>;
}

/**
 * The key that seals hold `requestState`s, shared through KV by every
 * instance (a per-process key would fail a flow whose rounds reach two
 * instances). Created once with a check-and-set.
 */
export async function loadRequestStateKey(kv: Deno.Kv): Promise<Uint8Array> {
  const key = requestStateKeyKey();
  for (let attempt = 0; attempt < 5; attempt++) {
    const got = await kv.get<Uint8Array>(key);
    if (got.value instanceof Uint8Array && got.value.byteLength >= 32) return got.value;
    const fresh = crypto.getRandomValues(new Uint8Array(32));
    const res = await kv.atomic().check(got).set(key, fresh).commit();
    if (res.ok) return fresh;
  }
  throw new Error("cannot create the request-state key in KV");
}

/** What app.ts supplies: the shared key, and the hold store's read and answer. */
export interface HoldPromptDeps {
  readonly key: Uint8Array;
  readonly getHold: HoldPrompts["getHold"];
  readonly answer: HoldPrompts["answer"];
}

/** The hold prompts over a shared key; `principalOf` names the caller of a request. */
export function createHoldPrompts(
  options: HoldPromptDeps & { principalOf: (ctx: ServerContext) => string },
): HoldPrompts {
  return {
    codec: createRequestStateCodec<PromptState>({
      key: options.key,
      // A hold lasts longer, but the human answers now or the call is simply repeated.
      ttlSeconds: 900,
      bind: (ctx) => `warden-hold\0${ctx.mcpReq.method}\0${options.principalOf(ctx)}`,
    }),
    getHold: options.getHold,
    answer: options.answer,
  };
}

/** Whether this 2026-07-28 request's client declared form elicitation. */
export function canElicit(ctx: ServerContext): boolean {
  const env = ctx.mcpReq.envelope as Record<string, unknown> | undefined;
  const caps = env?.[CLIENT_CAPABILITIES_META_KEY];
  return caps !== null && typeof caps === "object" && "elicitation" in caps;
}

/** The elicitation asking the human to confirm a held call (the hold's id and reasons in it). */
export function holdConfirmRequest(
  hold: { id: string; reasons?: readonly string[] },
  tool: string,
): ReturnType<typeof inputRequired.elicit> {
  return inputRequired.elicit({
    message:
      `Warden is holding a call to "${tool}" for operator approval (hold ${hold.id})${
        hold.reasons?.length ? `. Reasons: ${hold.reasons.join("; ")}` : ""
      }. Confirm that you want it to run; an operator must still sign the approval ` +
      `(warden approve ${hold.id}). Declining denies it.`,
    requestedSchema: {
      type: "object",
      properties: {
        confirm: { type: "boolean", title: "I want this call to run", default: false },
      },
      required: ["confirm"],
    },
  });
}

/**
 * The human's answer to a hold's confirmation in `responses` ("accept" only with confirm: true;
 * an accept without it is a decline), or undefined when it is not there.
 */
export function holdAnswerOf(responses: Record<string, unknown> | undefined): string | undefined {
  const view = inputResponse(responses as never, HOLD_INPUT_KEY);
  if (view.kind !== "elicit") return undefined;
  const confirmed = view.action === "accept" && view.content?.confirm === true;
  return view.action === "accept" && !confirmed ? "decline" : view.action;
}

/** The input_required result asking the human about `hold`. */
export async function askAboutHold(
  prompts: HoldPrompts,
  ctx: ServerContext,
  hold: { id: string; reasons?: readonly string[] },
  tool: string,
): Promise<ReturnType<typeof inputRequired>> {
  return inputRequired({
    inputRequests: { [HOLD_INPUT_KEY]: holdConfirmRequest(hold, tool) },
    requestState: await prompts.codec.mint({ kind: "hold", hold: hold.id, tool }, ctx),
  });
}

/**
 * The verified requestState of a retried request: bad, expired, another
 * caller's or another tool's is -32602. `undefined` when it carries none.
 */
export async function readPromptState(
  prompts: HoldPrompts,
  ctx: ServerContext,
  tool: string,
): Promise<PromptState | undefined> {
  const raw = ctx.mcpReq.requestState();
  if (raw === undefined) return undefined;
  let state: PromptState;
  try {
    if (typeof raw !== "string") throw new Error("not a string");
    state = await prompts.codec.verify(raw, ctx);
  } catch {
    throw new ProtocolError(ProtocolErrorCode.InvalidParams, "Invalid or expired requestState");
  }
  if (state.tool !== tool) {
    throw new ProtocolError(
      ProtocolErrorCode.InvalidParams,
      `requestState is for a call to ${state.tool}, not ${tool}`,
    );
  }
  return state;
}

/**
 * Records the retried request's answer about a hold on it, when the hold is
 * still open and the caller's own, and returns the hold id the call is then
 * repeated with.
 */
export async function recordHoldAnswer(
  prompts: HoldPrompts,
  ctx: ServerContext,
  state: Extract<PromptState, { kind: "hold" }>,
  principal: string,
): Promise<string> {
  const action = holdAnswerOf(ctx.mcpReq.inputResponses as Record<string, unknown> | undefined);
  if (action === undefined) {
    throw new ProtocolError(
      ProtocolErrorCode.InvalidParams,
      `inputResponses.${HOLD_INPUT_KEY}: the answer to the hold's confirmation is missing`,
    );
  }
  const hold = await prompts.getHold(state.hold);
  if (hold !== null && hold.principal === principal && hold.status === "open") {
    await prompts.answer(hold, action);
  }
  return state.hold;
}

/** The client's sampling answer in a retried request (-32602 when it is missing). */
export function samplingAnswer(ctx: ServerContext): Record<string, unknown> {
  const view = inputResponse(ctx.mcpReq.inputResponses, SAMPLING_INPUT_KEY);
  if (view.kind !== "sampling") {
    throw new ProtocolError(
      ProtocolErrorCode.InvalidParams,
      `inputResponses.${SAMPLING_INPUT_KEY}: the client's sampling answer is missing`,
    );
  }
  return view.result as unknown as Record<string, unknown>;
}

/** The input_required result asking the client's model, for a tool's sampling request. */
export async function askForSampling(
  prompts: HoldPrompts,
  ctx: ServerContext,
  tool: string,
  params: Record<string, unknown>,
): Promise<ReturnType<typeof inputRequired>> {
  return inputRequired({
    inputRequests: { [SAMPLING_INPUT_KEY]: inputRequired.createMessage(params as never) },
    requestState: await prompts.codec.mint({ kind: "sampling", tool }, ctx),
  });
}

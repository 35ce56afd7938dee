/**
 * An upstream tool's `structuredContent`, checked against the `outputSchema`
 * pinned with its definition (F10) by the SDK's own JSON Schema validator —
 * the AJV provider its client applies in `callTool`. The spec says a server
 * MUST return structured results that conform to its output schema and a
 * client SHOULD validate them; the SDK's client does, and throws on a
 * mismatch (and on a missing `structuredContent`) unless the result is an
 * error. So Warden, the server its clients see, checks what the upstream
 * answered and answers a mismatch as a tool error (`isError`, errorKind
 * `invalid_output`, sealed so), never relaying the result.
 *
 * @module
 */
import { AjvJsonSchemaValidator } from "@modelcontextprotocol/client/validators/ajv";
import type { CallToolResult } from "@modelcontextprotocol/client";

/**
 * Checks one tool's results against its `outputSchema`: the problems found
 * (empty when the result conforms, or reports an error — the SDK's client
 * checks neither an error nor a tool without a schema).
 */
export type OutputCheck = (result: CallToolResult) => string[];

/**
 * A schema that cannot be compiled: the tool is quarantined (not listed, and a call is refused
 * before anything is sent, as the SDK's client refuses it).
 */
export class OutputSchemaError extends Error {
  override name = "OutputSchemaError";
}

/**
 * The output check of one tool, compiled when its upstream is listed with the
 * SDK's AJV provider, the validator its client uses — one provider per
 * upstream listing, so a `$id` one upstream declares never resolves to
 * another upstream's schema. The compiled check is the one its calls use
 * (never compiled twice). Undefined when the tool declares no
 * `outputSchema`; throws {@link OutputSchemaError} when the schema does not
 * compile — the SDK's v1 client throws on a whole listing that carries such a
 * schema, so the gateway quarantines the tool instead of listing it.
 *
 * @example
 * ```ts
 * import { outputCheck, OutputSchemaError, outputValidatorProvider } from "./output_check.ts";
 * const provider = outputValidatorProvider();
 * const check = outputCheck(
 *   { type: "object", properties: { n: { type: "number" } }, required: ["n"] },
 *   provider,
 * )!;
 * if (check({ content: [], structuredContent: { n: 1 } }).length !== 0) throw new Error();
 * if (check({ content: [], structuredContent: { n: "1" } }).length === 0) throw new Error();
 * try {
 *   outputCheck({ type: "object", properties: { n: { type: "nonsense" } } }, provider);
 *   throw new Error("compiled");
 * } catch (e) {
 *   if (!(e instanceof OutputSchemaError)) throw e;
 * }
 * ```
 */
export function outputCheck(
  schema: Record<string, unknown> | undefined,
  provider: AjvJsonSchemaValidator,
): OutputCheck | undefined {
  if (schema === undefined) return undefined;
  let validate: (input: unknown) => { valid: boolean; errorMessage?: string };
  try {
    validate = provider.getValidator(schema as never);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    throw new OutputSchemaError(`its outputSchema does not compile: ${message.slice(0, 200)}`);
  }
  return (result) => {
    if (result.isError === true) return [];
    const structured = (result as { structuredContent?: unknown }).structuredContent;
    if (structured === undefined) {
      return ["it declares an outputSchema but returned no structuredContent"];
    }
    const outcome = validate(structured);
    return outcome.valid ? [] : [(outcome.errorMessage ?? "invalid").slice(0, 500)];
  };
}

/** A fresh validator provider (one per upstream listing). */
export function outputValidatorProvider(): AjvJsonSchemaValidator {
  return new AjvJsonSchemaValidator();
}

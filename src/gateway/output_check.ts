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

/** A schema that cannot be compiled: the tool cannot be called (as the SDK's client refuses it). */
export class OutputSchemaError extends Error {
  override name = "OutputSchemaError";
}

/**
 * The output check of one tool, compiled on first use (so a listing of many
 * tools compiles only those called) with the SDK's AJV provider, the
 * validator its client uses — one provider per upstream listing, so a `$id`
 * one upstream declares never resolves to another upstream's schema.
 * Undefined when the tool declares no `outputSchema`; the returned function
 * throws {@link OutputSchemaError} when the schema does not compile, before
 * anything is sent upstream (as the SDK's client refuses such a call).
 *
 * @example
 * ```ts
 * import { outputCheck, outputValidatorProvider } from "./output_check.ts";
 * const compile = outputCheck(
 *   { type: "object", properties: { n: { type: "number" } }, required: ["n"] },
 *   outputValidatorProvider(),
 * )!;
 * const check = compile();
 * if (check({ content: [], structuredContent: { n: 1 } }).length !== 0) throw new Error();
 * if (check({ content: [], structuredContent: { n: "1" } }).length === 0) throw new Error();
 * ```
 */
export function outputCheck(
  schema: Record<string, unknown> | undefined,
  provider: AjvJsonSchemaValidator,
): (() => OutputCheck) | undefined {
  if (schema === undefined) return undefined;
  let compiled: OutputCheck | undefined;
  return () => {
    if (compiled !== undefined) return compiled;
    let validate: (input: unknown) => { valid: boolean; errorMessage?: string };
    try {
      validate = provider.getValidator(schema as never);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      throw new OutputSchemaError(`its outputSchema does not compile: ${message.slice(0, 200)}`);
    }
    compiled = (result) => {
      if (result.isError === true) return [];
      const structured = (result as { structuredContent?: unknown }).structuredContent;
      if (structured === undefined) {
        return ["it declares an outputSchema but returned no structuredContent"];
      }
      const outcome = validate(structured);
      return outcome.valid ? [] : [(outcome.errorMessage ?? "invalid").slice(0, 500)];
    };
    return compiled;
  };
}

/** A fresh validator provider (one per upstream listing). */
export function outputValidatorProvider(): AjvJsonSchemaValidator {
  return new AjvJsonSchemaValidator();
}

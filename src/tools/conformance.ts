/**
 * TEST-ONLY fixture tools for the MCP conformance suite
 * (`@modelcontextprotocol/conformance server --suite active`). Served only with
 * `--conformance-fixtures`, never by default. They run through the same
 * registry, transports and KV sessions as Warden's real tools, so a passing
 * suite proves Warden's stack rather than the SDK's examples.
 */
import { z } from "zod";
import { defineTool, type ToolDefinition, ToolError } from "../calls/mod.ts";
import { READ_ONLY } from "./_annotations.ts";

/** A 1×1 PNG and a tiny WAV, as the suite's reference server uses. */
export const FIXTURE_PNG_BASE64 =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
export const FIXTURE_WAV_BASE64 = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";

const NoArgs = z.object({});
const Echo = z.object({ text: z.string() });

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function fixture(
  name: string,
  description: string,
  handler: ToolDefinition<typeof NoArgs, typeof Echo>["handler"],
) {
  return defineTool({
    name,
    title: name,
    description,
    inputSchema: NoArgs,
    outputSchema: Echo,
    annotations: READ_ONLY,
    handler,
  });
}

const simpleText = fixture(
  "test_simple_text",
  "Returns a simple text response (conformance fixture).",
  () => {
    const text = "This is a simple text response for testing.";
    return { data: { text }, text, content: [{ type: "text", text }] };
  },
);

const image = fixture(
  "test_image_content",
  "Returns an image content block (conformance fixture).",
  () => ({
    data: { text: "image" },
    text: "image",
    content: [{ type: "image", data: FIXTURE_PNG_BASE64, mimeType: "image/png" }],
  }),
);

const audio = fixture(
  "test_audio_content",
  "Returns an audio content block (conformance fixture).",
  () => ({
    data: { text: "audio" },
    text: "audio",
    content: [{ type: "audio", data: FIXTURE_WAV_BASE64, mimeType: "audio/wav" }],
  }),
);

const embedded = fixture(
  "test_embedded_resource",
  "Returns an embedded resource (conformance fixture).",
  () => ({
    data: { text: "resource" },
    text: "resource",
    content: [{
      type: "resource",
      resource: {
        uri: "test://embedded-resource",
        mimeType: "text/plain",
        text: "This is an embedded resource content.",
      },
    }],
  }),
);

const mixed = fixture(
  "test_multiple_content_types",
  "Returns text, image and resource blocks together (conformance fixture).",
  () => ({
    data: { text: "mixed" },
    text: "mixed",
    content: [
      { type: "text", text: "Multiple content types test:" },
      { type: "image", data: FIXTURE_PNG_BASE64, mimeType: "image/png" },
      {
        type: "resource",
        resource: {
          uri: "test://mixed-content-resource",
          mimeType: "application/json",
          text: '{"test":"data","value":123}',
        },
      },
    ],
  }),
);

const withLogging = fixture(
  "test_tool_with_logging",
  "Sends three log notifications while it runs (conformance fixture).",
  async (_args, ctx) => {
    await ctx.client?.log("info", "Tool execution started");
    await sleep(50);
    await ctx.client?.log("info", "Tool processing data");
    await sleep(50);
    await ctx.client?.log("info", "Tool execution completed");
    const text = "Tool with logging executed successfully";
    return { data: { text }, text, content: [{ type: "text", text }] };
  },
);

const errorHandling = fixture(
  "test_error_handling",
  "Always returns a tool error (conformance fixture).",
  () => {
    throw new ToolError("This tool intentionally returns an error for testing");
  },
);

const withProgress = fixture(
  "test_tool_with_progress",
  "Reports progress 0, 50, 100 before answering (conformance fixture).",
  async (_args, ctx) => {
    for (const progress of [0, 50, 100]) {
      await ctx.client?.progress(progress, { total: 100, message: `Completed step ${progress}` });
      if (progress < 100) await sleep(50);
    }
    const text = "Progress tool completed";
    return { data: { text }, text, content: [{ type: "text", text }] };
  },
);

const sampling = defineTool({
  name: "test_sampling",
  title: "test_sampling",
  description: "Asks the client's model for a completion via sampling (conformance fixture).",
  inputSchema: z.object({ prompt: z.string().max(10_000) }),
  outputSchema: Echo,
  annotations: READ_ONLY,
  async handler(args, ctx) {
    if (!ctx.client) throw new ToolError("Sampling needs an MCP client");
    const result = await ctx.client.request("sampling/createMessage", {
      messages: [{ role: "user", content: { type: "text", text: args.prompt } }],
      maxTokens: 100,
    });
    const content = result.content as { type?: string; text?: string } | undefined;
    const text = `LLM response: ${content?.type === "text" ? content.text : "[non-text response]"}`;
    return { data: { text }, text, content: [{ type: "text", text }] };
  },
});

function elicitTool(
  name: string,
  description: string,
  message: (args: Record<string, unknown>) => string,
  requestedSchema: Record<string, unknown>,
  inputSchema: z.ZodObject = NoArgs,
) {
  return defineTool({
    name,
    title: name,
    description,
    inputSchema,
    outputSchema: Echo,
    annotations: READ_ONLY,
    async handler(args, ctx) {
      if (!ctx.client) throw new ToolError("Elicitation needs an MCP client");
      const result = await ctx.client.request("elicitation/create", {
        message: message(args as Record<string, unknown>),
        requestedSchema,
      });
      const text = `User response: action=${String(result.action)}, content=${
        JSON.stringify(result.content ?? {})
      }`;
      return { data: { text }, text, content: [{ type: "text", text }] };
    },
  });
}

const elicitation = elicitTool(
  "test_elicitation",
  "Asks the user for information via elicitation (conformance fixture).",
  (args) => String(args.message),
  {
    type: "object",
    properties: {
      username: { type: "string", description: "User's response" },
      email: { type: "string", description: "User's email address" },
    },
    required: ["username", "email"],
  },
  z.object({ message: z.string().max(10_000) }),
);

const elicitationDefaults = elicitTool(
  "test_elicitation_sep1034_defaults",
  "Elicitation whose schema carries default values (SEP-1034 conformance fixture).",
  () => "Please review and update the form fields with defaults",
  {
    type: "object",
    properties: {
      name: { type: "string", description: "User name", default: "John Doe" },
      age: { type: "integer", description: "User age", default: 30 },
      score: { type: "number", description: "User score", default: 95.5 },
      status: {
        type: "string",
        description: "User status",
        enum: ["active", "inactive", "pending"],
        default: "active",
      },
      verified: { type: "boolean", description: "Verification status", default: true },
    },
    required: [],
  },
);

const elicitationEnums = elicitTool(
  "test_elicitation_sep1330_enums",
  "Elicitation with every enum schema form (SEP-1330 conformance fixture).",
  () => "Please select options from the enum fields",
  {
    type: "object",
    properties: {
      untitledSingle: {
        type: "string",
        description: "Select one option",
        enum: ["option1", "option2", "option3"],
      },
      titledSingle: {
        type: "string",
        description: "Select one option with titles",
        oneOf: [
          { const: "value1", title: "First Option" },
          { const: "value2", title: "Second Option" },
          { const: "value3", title: "Third Option" },
        ],
      },
      legacyEnum: {
        type: "string",
        description: "Select one option (legacy)",
        enum: ["opt1", "opt2", "opt3"],
        enumNames: ["Option One", "Option Two", "Option Three"],
      },
      untitledMulti: {
        type: "array",
        description: "Select multiple options",
        minItems: 1,
        maxItems: 3,
        items: { type: "string", enum: ["option1", "option2", "option3"] },
      },
      titledMulti: {
        type: "array",
        description: "Select multiple options with titles",
        minItems: 1,
        maxItems: 3,
        items: {
          anyOf: [
            { const: "value1", title: "First Choice" },
            { const: "value2", title: "Second Choice" },
            { const: "value3", title: "Third Choice" },
          ],
        },
      },
    },
    required: [],
  },
);

/** Every fixture tool the active conformance suite calls. */
export const conformanceTools: readonly ToolDefinition[] = [
  simpleText,
  image,
  audio,
  embedded,
  mixed,
  withLogging,
  errorHandling,
  withProgress,
  sampling,
  elicitation,
  elicitationDefaults,
  elicitationEnums,
] as unknown as readonly ToolDefinition[];

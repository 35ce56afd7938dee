/**
 * TEST-ONLY resources and prompts for the MCP conformance suite, applied to
 * each session's server with `--conformance-fixtures` (never by default).
 */
import { completable, type McpServer, ResourceTemplate } from "@modelcontextprotocol/server";
import { z } from "zod";
import { FIXTURE_PNG_BASE64 } from "../tools/mod.ts";

/** Registers the suite's `test://` resources, resource template and `test_*` prompts. */
export function conformanceExtension(server: McpServer): void {
  server.registerResource("static-text", "test://static-text", {
    title: "Static text",
    description: "A static text resource for testing",
    mimeType: "text/plain",
  }, (uri) => ({
    contents: [{
      uri: uri.href,
      mimeType: "text/plain",
      text: "This is the content of the static text resource.",
    }],
  }));
  server.registerResource("static-binary", "test://static-binary", {
    title: "Static binary",
    description: "A static binary resource (image) for testing",
    mimeType: "image/png",
  }, (uri) => ({
    contents: [{ uri: uri.href, mimeType: "image/png", blob: FIXTURE_PNG_BASE64 }],
  }));
  server.registerResource(
    "template",
    new ResourceTemplate("test://template/{id}/data", { list: undefined }),
    {
      title: "Template",
      description: "A resource template with parameter substitution",
      mimeType: "application/json",
    },
    (uri, { id }) => ({
      contents: [{
        uri: uri.href,
        mimeType: "application/json",
        text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${id}` }),
      }],
    }),
  );
  server.registerResource("watched-resource", "test://watched-resource", {
    title: "Watched",
    description: "A resource that can be subscribed to",
    mimeType: "text/plain",
  }, (uri) => ({
    contents: [{ uri: uri.href, mimeType: "text/plain", text: "Watched resource content" }],
  }));
  const subscriptions = new Set<string>();
  server.server.registerCapabilities({ resources: { subscribe: true, listChanged: true } });
  server.server.setRequestHandler("resources/subscribe", (req) => {
    subscriptions.add(req.params.uri);
    return {};
  });
  server.server.setRequestHandler("resources/unsubscribe", (req) => {
    subscriptions.delete(req.params.uri);
    return {};
  });

  server.registerPrompt("test_simple_prompt", {
    title: "Simple prompt",
    description: "A simple prompt without arguments",
  }, () => ({
    messages: [{
      role: "user",
      content: { type: "text", text: "This is a simple prompt for testing." },
    }],
  }));
  server.registerPrompt("test_prompt_with_arguments", {
    title: "Prompt with arguments",
    description: "A prompt with required arguments",
    argsSchema: z.object({
      arg1: completable(
        z.string().describe("First test argument"),
        (value) => ["testValue1", "testValue2"].filter((v) => v.startsWith(value)),
      ),
      arg2: z.string().describe("Second test argument"),
    }),
  }, ({ arg1, arg2 }) => ({
    messages: [{
      role: "user",
      content: { type: "text", text: `Prompt with arguments: arg1='${arg1}', arg2='${arg2}'` },
    }],
  }));
  server.registerPrompt("test_prompt_with_embedded_resource", {
    title: "Prompt with embedded resource",
    description: "A prompt that includes an embedded resource",
    argsSchema: z.object({ resourceUri: z.string().describe("URI of the resource to embed") }),
  }, ({ resourceUri }) => ({
    messages: [
      {
        role: "user",
        content: {
          type: "resource",
          resource: {
            uri: resourceUri,
            mimeType: "text/plain",
            text: "Embedded resource content for testing.",
          },
        },
      },
      {
        role: "user",
        content: { type: "text", text: "Please process the embedded resource above." },
      },
    ],
  }));
  server.registerPrompt("test_prompt_with_image", {
    title: "Prompt with image",
    description: "A prompt that includes image content",
  }, () => ({
    messages: [
      { role: "user", content: { type: "image", data: FIXTURE_PNG_BASE64, mimeType: "image/png" } },
      { role: "user", content: { type: "text", text: "Please analyze the image above." } },
    ],
  }));
}

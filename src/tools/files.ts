/**
 * The file tools (SPEC §5 "State services"): `file_read`, `file_write`,
 * `file_list`, `file_versions`, `file_lock`, `file_unlock` — thin adapters
 * over `src/services/files.ts`. Content is UTF-8 text or base64 (binary-safe).
 * The vault records a write's content digest and size and a read's digest,
 * never the content.
 *
 * @module
 */
import { z } from "zod";
import {
  type FileCaller,
  type FileService,
  FileServiceError,
  MAX_FILE_PATH_CHARS,
} from "../services/mod.ts";
import { sha256HexOfText } from "../lib/mod.ts";
import { defineTool, type ToolContext, ToolError } from "../calls/mod.ts";
import { IDEMPOTENT_WRITE, READ_ONLY, WRITE } from "./_annotations.ts";
import { toolFamily } from "./_services.ts";

const path = z.string().min(1).max(MAX_FILE_PATH_CHARS).describe(
  'A path inside the sandbox root, e.g. "/notes/plan.md" ("/" is the sandbox root; ".." is refused).',
);
const encoding = z.enum(["utf8", "base64"]);

function callerOf(ctx: ToolContext): FileCaller {
  return { principal: ctx.principal, session: ctx.sessionId ?? null };
}

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

function decodeContent(content: string, enc: "utf8" | "base64"): Uint8Array {
  if (enc === "utf8") return utf8.encode(content);
  try {
    return Uint8Array.fromBase64(content);
  } catch {
    throw new ToolError("Cannot write: content is not valid base64");
  }
}

const leaseSchema = z.object({
  path: z.string(),
  holder: z.object({ principal: z.string(), session: z.string().nullable() }),
  acquired_at: z.string(),
  expires_at: z.string(),
});

const versionSchema = z.object({
  version: z.number().int(),
  sha256: z.string(),
  size: z.number().int(),
  written_at: z.string(),
  principal: z.string(),
  session: z.string().nullable(),
});

/** The `file_read` tool. */
function fileReadTool({ fileStore }: FileToolServices) {
  return defineTool({
    name: "file_read",
    title: "Read a file",
    description: "Read a file of the sandbox: the current version, or any kept version. Text " +
      "comes back as UTF-8; binary content (or encoding=base64) as base64.",
    inputSchema: z.object({
      path,
      version: z.number().int().min(1).optional().describe("A kept version; default the latest."),
      encoding: encoding.optional().describe(
        '"utf8" or "base64"; default utf8 when the content is valid UTF-8, else base64.',
      ),
    }),
    outputSchema: versionSchema.extend({
      path: z.string(),
      latest_version: z.number().int(),
      encoding,
      content: z.string(),
    }),
    annotations: READ_ONLY,
    recordResult: ({ content: _content, ...rest }) => rest,
    expectedErrors: [FileServiceError],
    handler: async ({ path, version, encoding }) => {
      const { bytes, ...got } = await fileStore.read({ path, version });
      let text: string | undefined;
      if (encoding !== "base64") {
        try {
          text = strictUtf8.decode(bytes);
        } catch {
          if (encoding === "utf8") {
            throw new ToolError(
              `Cannot read ${got.path} as UTF-8: it holds binary content (ask for encoding base64)`,
            );
          }
        }
      }
      const data = text !== undefined
        ? { ...got, encoding: "utf8" as const, content: text }
        : { ...got, encoding: "base64" as const, content: bytes.toBase64() };
      return {
        data,
        text: `${got.path} version ${got.version} of ${got.latest_version} (${got.size} bytes)` +
          (data.encoding === "utf8" ? `:\n${data.content.slice(0, 2000)}` : ", base64"),
      };
    },
  });
}

/** The `file_write` tool. */
function fileWriteTool({ fileStore }: FileToolServices) {
  return defineTool({
    name: "file_write",
    title: "Write a file",
    description:
      "Write a file of the sandbox. Every write creates a new version (earlier ones stay " +
      "readable up to the retention cap); identical content is stored once. Refused while someone " +
      "else holds a lease on the file, and when expected_version is not the current version.",
    inputSchema: z.object({
      path,
      content: z.string().describe("The content: UTF-8 text, or base64 with encoding=base64."),
      encoding: encoding.default("utf8"),
      expected_version: z.number().int().min(0).optional().describe(
        "Write only if this is the current version (0: only if the file does not exist yet).",
      ),
    }),
    outputSchema: z.object({
      path: z.string(),
      version: z.number().int(),
      sha256: z.string(),
      size: z.number().int(),
      deduplicated: z.boolean().describe("The content was already stored and is shared."),
      dropped_versions: z.array(z.number().int()).describe(
        "Versions dropped by the retention cap.",
      ),
    }),
    // Every write is a new version and the previous content stays readable: reversible (F1 0.5).
    annotations: WRITE,
    recordArguments: ({ path, content, encoding, expected_version }) => ({
      path,
      encoding,
      content_sha256: sha256HexOfText(content),
      content_chars: content.length,
      ...(expected_version !== undefined ? { expected_version } : {}),
    }),
    expectedErrors: [FileServiceError],
    handler: async ({ path, content, encoding, expected_version }, ctx) => {
      const data = await fileStore.write(callerOf(ctx), {
        path,
        content: decodeContent(content, encoding),
        ...(expected_version !== undefined ? { expectedVersion: expected_version } : {}),
      });
      return {
        data,
        text: `Wrote ${data.path} version ${data.version} (${data.size} bytes${
          data.deduplicated ? ", content already stored" : ""
        })`,
      };
    },
  });
}

/** The `file_list` tool. */
function fileListTool({ fileStore }: FileToolServices) {
  return defineTool({
    name: "file_list",
    title: "List a directory",
    description: "List the files and directories directly inside a sandbox directory.",
    inputSchema: z.object({
      path: path.default("/"),
      limit: z.number().int().min(1).max(1000).default(100),
    }),
    outputSchema: z.object({
      path: z.string(),
      entries: z.array(z.object({
        name: z.string(),
        path: z.string(),
        kind: z.enum(["file", "directory"]),
        size: z.number().int().optional(),
        version: z.number().int().optional(),
        updated_at: z.string().optional(),
      })),
      truncated: z.boolean(),
    }),
    annotations: READ_ONLY,
    expectedErrors: [FileServiceError],
    handler: async ({ path, limit }) => {
      const data = await fileStore.list({ path, limit });
      return {
        data,
        text: data.entries.length === 0
          ? `${data.path} is empty`
          : data.entries.map((e) => e.kind === "directory" ? `${e.name}/` : e.name).join("\n"),
      };
    },
  });
}

/** The `file_versions` tool. */
function fileVersionsTool({ fileStore }: FileToolServices) {
  return defineTool({
    name: "file_versions",
    title: "List a file's versions",
    description: "List the kept versions of a sandbox file (oldest first) with digest, size, " +
      "author and time; read one with file_read's version.",
    inputSchema: z.object({ path }),
    outputSchema: z.object({ path: z.string(), versions: z.array(versionSchema) }),
    annotations: READ_ONLY,
    expectedErrors: [FileServiceError],
    handler: async ({ path }) => {
      const data = await fileStore.versions({ path });
      return {
        data,
        text: data.versions.map((v) => `v${v.version} ${v.sha256.slice(0, 12)} ${v.size} B`)
          .join("\n"),
      };
    },
  });
}

/** The `file_lock` tool. */
function fileLockTool({ fileStore }: FileToolServices) {
  return defineTool({
    name: "file_lock",
    title: "Lease a file",
    description:
      "Take (or renew) a lease on a sandbox file for this principal and session: until " +
      "it expires or is unlocked, anyone else's write is refused. Refused while someone else " +
      "holds it, naming who and until when.",
    inputSchema: z.object({
      path,
      ttl: z.number().int().min(1).optional().describe(
        "Lease length in seconds; default files.lease_seconds (300), at most files.max_lease_seconds.",
      ),
    }),
    outputSchema: leaseSchema.extend({ renewed: z.boolean() }),
    annotations: IDEMPOTENT_WRITE,
    expectedErrors: [FileServiceError],
    handler: async ({ path, ttl }, ctx) => {
      const data = await fileStore.lock(callerOf(ctx), { path, ttl });
      return {
        data,
        text: `${data.renewed ? "Renewed" : "Leased"} ${data.path} until ${data.expires_at}`,
      };
    },
  });
}

/** The `file_unlock` tool. */
function fileUnlockTool({ fileStore }: FileToolServices) {
  return defineTool({
    name: "file_unlock",
    title: "Release a lease",
    description: "Release this principal and session's lease on a sandbox file.",
    inputSchema: z.object({ path }),
    outputSchema: z.object({ path: z.string(), released: z.boolean() }),
    annotations: IDEMPOTENT_WRITE,
    expectedErrors: [FileServiceError],
    handler: async ({ path }, ctx) => {
      const data = await fileStore.unlock(callerOf(ctx), { path });
      return {
        data,
        text: data.released ? `Released ${data.path}` : `${data.path} had no live lease`,
      };
    },
  });
}

/** The services the file tools use: the versioned, leased file sandbox in KV, and nothing else. */
export interface FileToolServices {
  readonly fileStore: FileService;
}

/**
 * The six file tools, in the order SPEC.md lists them, given the file sandbox (checked here, when
 * the tools are made).
 */
export const createFileTools = toolFamily<FileToolServices>(
  "file",
  ["fileStore"],
  [fileReadTool, fileWriteTool, fileListTool, fileVersionsTool, fileLockTool, fileUnlockTool],
);

/**
 * `warden approve|deny <hold>` and `warden approve-tool <server> <tool>`: sign an operator decision and send it to a running server.
 * @module
 */
import { signToolApproval } from "../gateway/mod.ts";
import { holdDigest, loadOperatorKey, type OperatorKey, signDecision } from "../governance/mod.ts";
import { type Config } from "../config.ts";
import { authHint, serverBase } from "./_common.ts";

/**
 * An operator command's link to a running server: the key from `--key`, the server's base URL,
 * and its two requests, sent with JSON headers and the bearer token when one is set.
 */
interface OperatorRequest {
  readonly key: OperatorKey;
  readonly base: string;
  /** GETs the path of `segments` (each URL-encoded): its JSON, or undefined after saying why. */
  // deno-lint-ignore no-explicit-any -- the server's JSON, checked where it is read
  get(segments: readonly string[]): Promise<any>;
  /**
   * POSTs `body` to the path of `segments`: the answer's JSON, or undefined after saying
   * `<what> refused (<status>): <message>`.
   */
  // deno-lint-ignore no-explicit-any -- the server's JSON, checked where it is read
  post(segments: readonly string[], body: unknown, what: string): Promise<any>;
}

/** The operator's link to the server; undefined, after saying why, when the key cannot be loaded. */
async function operatorRequest(
  config: Readonly<Config>,
  keyFile: string,
  url: string,
): Promise<OperatorRequest | undefined> {
  let key: OperatorKey;
  try {
    key = await loadOperatorKey(await Deno.readTextFile(keyFile));
  } catch (e) {
    console.error(`warden: cannot load operator key ${keyFile}: ${(e as Error).message}`);
    return undefined;
  }
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (config.token) headers.authorization = `Bearer ${config.token}`;
  const base = serverBase(url);
  const at = (segments: readonly string[]) =>
    `${base}/${segments.map((s) => encodeURIComponent(s)).join("/")}`;
  return {
    key,
    base,
    async get(segments) {
      const res = await fetch(at(segments), { headers, signal: AbortSignal.timeout(30_000) });
      const answer = await res.json();
      if (res.ok) return answer;
      console.error(
        authHint(
          `warden: ${answer?.error?.message ?? "refused"} (GET /${
            segments.join("/")
          } answered ${res.status})`,
        ),
      );
      return undefined;
    },
    async post(segments, body, what) {
      const res = await fetch(at(segments), {
        method: "POST",
        headers,
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
      const answer = await res.json();
      if (res.ok) return answer;
      console.error(
        authHint(
          `warden: ${what} refused (${res.status}): ${answer?.error?.message ?? "unknown error"}`,
        ),
      );
      return undefined;
    },
  };
}

/**
 * Shows the held call's arguments and recomputes the digest from them, so the
 * operator signs what they read. A mismatch refuses to sign; redacted or
 * omitted arguments are said to be unverifiable rather than silently trusted.
 */
function checkHoldDigest(
  // deno-lint-ignore no-explicit-any -- the server's JSON, checked field by field
  hold: any,
): { ok: boolean; message: string } {
  if (hold.arguments === undefined) {
    return {
      ok: true,
      message: `arguments: not shown (${
        hold.arguments_omitted ?? "this server does not report them"
      }); the digest cannot be recomputed here`,
    };
  }
  const shown = `arguments: ${JSON.stringify(hold.arguments, null, 2)}`;
  if (hold.arguments_redacted > 0) {
    return {
      ok: true,
      message: `${shown}\n${hold.arguments_redacted} value(s) redacted above: the digest covers ` +
        `the original values, so it cannot be recomputed from what is shown`,
    };
  }
  let recomputed: string;
  try {
    recomputed = holdDigest({
      tool: hold.tool,
      arguments: hold.arguments,
      principal: hold.principal,
    });
  } catch (e) {
    return { ok: false, message: `${shown}\ncannot recompute the digest: ${(e as Error).message}` };
  }
  if (recomputed !== hold.digest) {
    return {
      ok: false,
      message:
        `${shown}\nREFUSED: sha256 of canonical {tool, arguments, principal} is ${recomputed}, ` +
        `not the digest ${hold.digest} the server asks you to sign`,
    };
  }
  return {
    ok: true,
    message: `${shown}\ndigest recomputed from these arguments: ${recomputed} (matches)`,
  };
}

/** `warden approve|deny HOLD_ID --key FILE --url URL`: signs the hold's digest and sends it. */
export async function decideCommand(
  config: Readonly<Config>,
  decision: "approve" | "deny",
): Promise<number> {
  const holdId = config.args[0];
  if (!holdId || !config.key || !config.url) {
    console.error(
      `warden: ${decision} needs HOLD_ID, --key FILE and --url URL (the server, with or without /mcp)`,
    );
    return 2;
  }
  const opened = await operatorRequest(config, config.key, config.url);
  if (opened === undefined) return 2;
  const { key, base } = opened;
  try {
    const hold = await opened.get(["holds", holdId]);
    if (hold === undefined) return 1;
    // Show what is being signed: the operator decides on this exact call.
    console.error(
      `hold ${hold.id}: tool ${hold.tool} for ${hold.principal}, status ${hold.status}, expires ${hold.expires_at}\n` +
        `reasons: ${hold.reasons.join("; ")}\ndigest: ${hold.digest}`,
    );
    const check = checkHoldDigest(hold);
    console.error(check.message);
    if (!check.ok) return 1;
    const operator = config.operatorName ?? key.name;
    const signature = await signDecision(key, { decision, holdId: hold.id, digest: hold.digest });
    const body = await opened.post(["holds", holdId, decision], { operator, signature }, decision);
    if (body === undefined) return 1;
    console.log(
      `${
        decision === "approve" ? "approved" : "denied"
      } hold ${holdId} as ${operator}: status ${body.status}`,
    );
    return 0;
  } catch (e) {
    console.error(`warden: cannot reach ${base}: ${(e as Error).message}`);
    return 1;
  }
}

/**
 * `warden approve-tool SERVER TOOL --key FILE --url URL`: shows the upstream
 * tool's current definition hash, signs it and sends the approval; the server
 * re-pins the tool (sealed) and releases it from F10's hold.
 */
export async function approveToolCommand(config: Readonly<Config>): Promise<number> {
  const [server, tool] = config.args;
  if (!server || !tool || !config.key || !config.url) {
    console.error(
      "warden: approve-tool needs SERVER TOOL, --key FILE and --url URL (the server, with or without /mcp)",
    );
    return 2;
  }
  const opened = await operatorRequest(config, config.key, config.url);
  if (opened === undefined) return 2;
  const { key, base } = opened;
  try {
    const status = await opened.get(["api", "servers", server]);
    if (status === undefined) return 1;
    const entry = (status.tools as {
      upstream_tool: string;
      definition_sha256: string;
      pinned_sha256: string;
      state: string;
    }[])
      .find((t) => t.upstream_tool === tool);
    if (!entry) {
      console.error(`warden: upstream ${server} has no tool ${tool}`);
      return 1;
    }
    console.error(
      `upstream ${server} tool ${tool}: state ${entry.state}\npinned:  ${entry.pinned_sha256}\ncurrent: ${entry.definition_sha256}`,
    );
    const operator = config.operatorName ?? key.name;
    const signature = await signToolApproval(key, server, tool, entry.definition_sha256);
    const body = await opened.post(
      ["api", "servers", server, "tools", tool, "approve"],
      { sha256: entry.definition_sha256, operator, signature },
      "approve-tool",
    );
    if (body === undefined) return 1;
    console.log(`approved ${server} tool ${tool} as ${operator}: pinned ${body.pinned}`);
    return 0;
  } catch (e) {
    console.error(`warden: cannot reach ${base}: ${(e as Error).message}`);
    return 1;
  }
}

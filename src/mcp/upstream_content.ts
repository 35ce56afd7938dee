/**
 * Upstream resources and prompts, passed through beside Warden's own:
 * `resources/list` and `prompts/list` add every upstream's (fetched on
 * demand, in parallel, each within the upstream's timeout; an upstream that
 * fails is left out of that answer and logged, never failing the list), with
 * resource URIs namespaced as `upstream://<server>/<original URI>` and
 * prompts named `<prefix><name>` like the upstream's tools.
 * `resources/read` and `prompts/get` route back by that name (the gateway's
 * catalogue owns every exposed prompt name, empty prefixes included).
 * `resources/templates/list` adds the upstreams' templates namespaced the
 * same way, so a URI expanded from one reads back from its upstream. On 2025
 * sessions `resources/subscribe` passes through: one upstream subscription
 * per URI whatever the number of sessions, `notifications/resources/updated`
 * relayed only to the sessions subscribed to it, at most
 * `MAX_SUBSCRIPTIONS_PER_SESSION` per session. On 2026-07-28 a
 * `subscriptions/listen` stream's `resourceSubscriptions` open the same
 * upstream subscriptions (see {@link createListenSubscriptions}), held while
 * the stream is open.
 *
 * Access follows the policy's role grants: a principal sees and reads an
 * upstream's resources when it may call `<prefix>resources/read`, and its
 * prompts when it may call `<prefix>prompts/get` (so a grant of `ev__*`
 * covers both, and a principal without grants sees none). Every read and get
 * is sealed (`upstream_resource_read`, `upstream_prompt_get`: server, URI or
 * name, principal, the SHA-256 of the answer — never its content).
 *
 * @module
 */
import {
  type McpServer,
  ProtocolError,
  ProtocolErrorCode,
  type ServerContext,
} from "@modelcontextprotocol/server";
import {
  parseUpstreamUri,
  UPSTREAM_URI_SCHEME,
  type UpstreamContent,
  upstreamUri,
} from "../gateway/mod.ts";
import { type Logger, sha256HexOfText } from "../lib/mod.ts";
import type { CallerOf, ServerExtension, SessionBinding } from "./server.ts";

// The namespaced form is the gateway's (tool results carry it too); re-exported for src/mcp/'s users.
export { parseUpstreamUri, UPSTREAM_URI_SCHEME, upstreamUri };

/** An upstream answer larger than this (as JSON) is refused rather than relayed. */
export const MAX_UPSTREAM_CONTENT_BYTES = 4 * 1024 * 1024;
const MAX_ITEMS_PER_UPSTREAM = 1000;
const MAX_URI_CHARS = 4096;
/** Upstream resources one session may be subscribed to at once. */
export const MAX_SUBSCRIPTIONS_PER_SESSION = 64;
/** Distinct upstream resources subscribed to across all sessions of this process. */
export const MAX_SUBSCRIPTIONS = 10_000;

/** What the extension needs: the gateway's sources, role checks, the vault. */
export interface UpstreamContentDeps {
  readonly content: () => readonly UpstreamContent[];
  /** The upstream owning an exposed prompt name (the gateway's catalogue), if any. */
  readonly prompt: (name: string) => { source: UpstreamContent; prompt: string } | undefined;
  /** Tells the catalogue what an upstream just listed, so a new prompt becomes routable. */
  readonly notePrompts: (server: string, names: readonly string[]) => void;
  /** Upstream resource subscriptions, shared by every session of this process. */
  readonly subscriptions?: SubscriptionHub;
  readonly permits: (principal: string, name: string) => boolean;
  readonly record: (fields: Record<string, unknown>) => Promise<unknown>;
  readonly logger: Logger;
}

type RawHandler = (request: unknown, ctx: ServerContext) => Promise<Record<string, unknown>>;

/** Refuses an upstream answer larger (as JSON) than is relayed. */
function checkSize(answer: Record<string, unknown>, server: string): void {
  const text = JSON.stringify(answer);
  if (text.length > MAX_UPSTREAM_CONTENT_BYTES) {
    throw new ProtocolError(
      ProtocolErrorCode.InternalError,
      `upstream ${server} answered ${text.length} bytes, over the ${MAX_UPSTREAM_CONTENT_BYTES} relayed`,
    );
  }
}

/** Rewrites the `uri` of every resource in a list, read result or prompt message. */
function rewriteUris(value: unknown, server: string): unknown {
  if (Array.isArray(value)) return value.map((v) => rewriteUris(v, server));
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = (k === "uri" || k === "uriTemplate") && typeof v === "string"
      ? upstreamUri(server, v)
      : rewriteUris(v, server);
  }
  return out;
}

function invalid(message: string): never {
  throw new ProtocolError(ProtocolErrorCode.InvalidParams, message);
}

/** A session (or a 2026-07-28 listen stream) that can be told a resource it subscribed to changed. */
export interface Subscriber {
  alive(): boolean;
  notify(uri: string): Promise<void>;
  /**
   * Subscribers sharing a channel are told once per update: 2026-07-28 listen streams all
   * publish through the one listen router, which itself delivers to every stream naming the URI.
   */
  readonly channel?: object;
}

/**
 * Upstream resource subscriptions: one upstream `resources/subscribe` per
 * URI however many sessions want it (unsubscribed when the last leaves or
 * ends), and each `notifications/resources/updated` relayed only to the
 * sessions subscribed to that URI. Access is checked when a session
 * subscribes (its request carries the principal's roles); a session's token
 * is re-checked by its transport as for every request.
 */
export interface SubscriptionHub {
  subscribe(session: Subscriber, uri: string, source: UpstreamContent, own: string): Promise<void>;
  unsubscribe(session: Subscriber, uri: string): Promise<void>;
  /** The session ended: all its subscriptions go. */
  drop(session: Subscriber): void;
  /** An upstream said one of its resources (its own URI) changed. */
  updated(server: string, uri: string): void;
  /** Distinct URIs subscribed upstream right now. */
  readonly size: number;
}

/**
 * Creates the hub.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createSubscriptionHub, type Subscriber } from "./upstream_content.ts";
 * import type { UpstreamContent } from "../gateway/mod.ts";
 * import { silentLogger } from "../lib/mod.ts";
 * // Upstream "ev" as the gateway presents it (`gateway.content()`): it accepts subscriptions.
 * const sent: string[] = [];
 * const ev: UpstreamContent = {
 *   server: "ev",
 *   prefix: "ev__",
 *   request: (method, params) => {
 *     sent.push(`${method} ${params?.uri}`);
 *     return Promise.resolve({});
 *   },
 * };
 * const told: string[] = [];
 * const session = (name: string): Subscriber => ({
 *   alive: () => true,
 *   notify: (uri) => Promise.resolve(void told.push(`${name}: ${uri}`)),
 * });
 * const [a, b] = [session("a"), session("b")];
 * const hub = createSubscriptionHub({ logger: silentLogger });
 * await hub.subscribe(a, "upstream://ev/demo://doc", ev, "demo://doc");
 * await hub.subscribe(b, "upstream://ev/demo://doc", ev, "demo://doc");
 * assert.deepEqual(sent, ["resources/subscribe demo://doc"]); // one upstream subscription
 * // The gateway relays ev's notifications/resources/updated (ev's own URI) here:
 * // `gateway.onResourceUpdated = (server, uri) => hub.updated(server, uri)`.
 * hub.updated("ev", "demo://doc");
 * assert.deepEqual(told, ["a: upstream://ev/demo://doc", "b: upstream://ev/demo://doc"]);
 * hub.drop(a);
 * hub.drop(b); // the last one gone: unsubscribed upstream
 * assert.equal(sent.at(-1), "resources/unsubscribe demo://doc");
 * assert.equal(hub.size, 0);
 * ```
 */
export function createSubscriptionHub(deps: { readonly logger: Logger }): SubscriptionHub {
  interface Entry {
    source: UpstreamContent;
    own: string;
    sessions: Set<Subscriber>;
    ready: Promise<void>;
  }
  const byUri = new Map<string, Entry>();
  const bySession = new Map<Subscriber, Set<string>>();

  function leave(session: Subscriber, uri: string): void {
    const mine = bySession.get(session);
    mine?.delete(uri);
    if (mine && mine.size === 0) bySession.delete(session);
    const entry = byUri.get(uri);
    if (!entry || !entry.sessions.delete(session) || entry.sessions.size > 0) return;
    byUri.delete(uri);
    entry.source.request("resources/unsubscribe", { uri: entry.own }).catch((e) =>
      deps.logger.debug("cannot unsubscribe upstream resource", {
        upstream: entry.source.server,
        error: e,
      })
    );
  }

  return {
    async subscribe(session, uri, source, own) {
      const mine = bySession.get(session);
      if (mine?.has(uri)) return;
      if ((mine?.size ?? 0) >= MAX_SUBSCRIPTIONS_PER_SESSION) {
        invalid(
          `this session is subscribed to ${MAX_SUBSCRIPTIONS_PER_SESSION} upstream resources, ` +
            `the most one session may hold; unsubscribe from one first`,
        );
      }
      let entry = byUri.get(uri);
      if (!entry) {
        if (byUri.size >= MAX_SUBSCRIPTIONS) {
          throw new ProtocolError(
            ProtocolErrorCode.InternalError,
            `Warden holds ${MAX_SUBSCRIPTIONS} upstream resource subscriptions, its limit`,
          );
        }
        const created: Entry = {
          source,
          own,
          sessions: new Set(),
          ready: source.request("resources/subscribe", { uri: own }).then((answer) => {
            if (answer === null) {
              invalid(`upstream ${source.server} does not support resource subscriptions`);
            }
          }),
        };
        entry = created;
        byUri.set(uri, created);
        created.ready.catch(() => {
          if (byUri.get(uri) === created) byUri.delete(uri);
        });
      }
      await entry.ready;
      entry.sessions.add(session);
      const set = bySession.get(session) ?? new Set<string>();
      set.add(uri);
      bySession.set(session, set);
    },
    unsubscribe(session, uri) {
      leave(session, uri);
      return Promise.resolve();
    },
    drop(session) {
      for (const uri of [...bySession.get(session) ?? []]) leave(session, uri);
    },
    updated(server, own) {
      const uri = upstreamUri(server, own);
      const entry = byUri.get(uri);
      if (!entry) return;
      const told = new Set<object>();
      for (const session of [...entry.sessions]) {
        if (!session.alive()) {
          leave(session, uri);
          continue;
        }
        const channel = session.channel ?? session;
        if (told.has(channel)) continue;
        told.add(channel);
        session.notify(uri).catch((e) =>
          deps.logger.debug("cannot relay resources/updated", { error: e })
        );
      }
    },
    get size() {
      return byUri.size;
    },
  };
}

/** What a 2026-07-28 `subscriptions/listen` stream holds upstream, released when it ends. */
export interface ListenSubscription {
  /** The requested URIs the stream will be told about (the acknowledgement names only these). */
  readonly honored: readonly string[];
  release(): void;
}

/** Opens the upstream subscriptions a listen stream asks for, for one principal. */
export type ListenSubscriptions = (
  uris: readonly string[],
  principal: string,
) => Promise<ListenSubscription>;

/**
 * Upstream subscriptions for 2026-07-28 `subscriptions/listen` streams: of the
 * `resourceSubscriptions` a stream names, the `upstream://` URIs its principal
 * may read (at most {@link MAX_SUBSCRIPTIONS_PER_SESSION}) are subscribed
 * through the hub — one upstream subscription per URI whichever era asks — and
 * the rest are left out of what the stream is acknowledged (Warden's own
 * resources do not change under a listener; an upstream that refuses
 * subscriptions, or one the principal may not read, is not honored, exactly as
 * if it did not exist). An update is published once through `publish` (the
 * listen router delivers it to every stream naming that URI), however many
 * streams hold it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createListenSubscriptions, createSubscriptionHub } from "./upstream_content.ts";
 * import type { UpstreamContent } from "../gateway/mod.ts";
 * import { silentLogger } from "../lib/mod.ts";
 * // Upstream "ev" as the gateway presents it (`gateway.content()`): it accepts subscriptions.
 * const ev: UpstreamContent = { server: "ev", prefix: "ev__", request: () => Promise.resolve({}) };
 * const published: string[] = [];
 * const subscriptions = createSubscriptionHub({ logger: silentLogger });
 * const listen = createListenSubscriptions({
 *   content: () => [ev],
 *   permits: (principal, name) => principal === "alice" && name === "ev__resources/read",
 *   subscriptions,
 *   publish: (uri) => published.push(uri), // the app: `modern.resourceUpdated(uri)`
 *   logger: silentLogger,
 * });
 * const doc = "upstream://ev/demo://resource/static/document/architecture.md";
 * const held = await listen([doc, "warden://vault/head"], "alice");
 * assert.deepEqual(held.honored, [doc]); // Warden's own resources do not change under a listener
 * assert.deepEqual((await listen([doc], "bob")).honored, []); // bob may not read ev's resources
 * subscriptions.updated("ev", "demo://resource/static/document/architecture.md");
 * assert.deepEqual(published, [doc]);
 * // … serve the stream naming held.honored; when it ends:
 * held.release();
 * assert.equal(subscriptions.size, 0);
 * ```
 */
export function createListenSubscriptions(deps: {
  readonly content: () => readonly UpstreamContent[];
  readonly permits: (principal: string, name: string) => boolean;
  readonly subscriptions: SubscriptionHub;
  readonly publish: (uri: string) => void;
  readonly logger: Logger;
}): ListenSubscriptions {
  const channel = {};
  return async (uris, principal) => {
    const wanted: { uri: string; source: UpstreamContent; own: string }[] = [];
    const seen = new Set<string>();
    for (const uri of uris) {
      if (wanted.length >= MAX_SUBSCRIPTIONS_PER_SESSION) break;
      if (typeof uri !== "string" || uri.length > MAX_URI_CHARS || seen.has(uri)) continue;
      seen.add(uri);
      const target = parseUpstreamUri(uri);
      if (target === undefined) continue;
      const source = deps.content().find((s) =>
        s.server === target.server && deps.permits(principal, `${s.prefix}resources/read`)
      );
      if (source) wanted.push({ uri, source, own: target.uri });
    }
    let released = false;
    const self: Subscriber = {
      alive: () => !released,
      notify: (uri) => {
        deps.publish(uri);
        return Promise.resolve();
      },
      channel,
    };
    const outcomes = await Promise.allSettled(
      wanted.map((w) => deps.subscriptions.subscribe(self, w.uri, w.source, w.own)),
    );
    const honored: string[] = [];
    outcomes.forEach((o, i) => {
      if (o.status === "fulfilled") honored.push(wanted[i].uri);
      else {
        deps.logger.debug("listen subscription not honored", {
          upstream: wanted[i].source.server,
          error: o.reason,
        });
      }
    });
    return {
      honored,
      release() {
        if (released) return;
        released = true;
        deps.subscriptions.drop(self);
      },
    };
  };
}

/**
 * The extension: wraps the resources and prompts handlers Warden's own
 * extension installed, so it must be applied after it.
 */
// Kept whole: returns the extension below, which is one closure per session.
export function upstreamContentExtension(deps: UpstreamContentDeps): ServerExtension {
  // Kept whole: one session's upstream content — its handlers share the session's subscriptions and
  // listeners.
  return (server: McpServer, caller: CallerOf, binding: SessionBinding) => {
    const low = server.server as unknown as {
      _getRequestHandler(method: string): RawHandler | undefined;
    };
    // Upstream lists change while a session lives. Resource subscriptions: on a 2025 session by
    // resources/subscribe (below); on 2026-07-28 by subscriptions/listen's resourceSubscriptions,
    // which the modern handler opens through createListenSubscriptions over the same hub.
    const subscribable = !binding.modern && deps.subscriptions !== undefined;
    server.server.registerCapabilities({
      resources: {
        listChanged: true,
        ...(deps.subscriptions !== undefined ? { subscribe: true } : {}),
      },
      prompts: { listChanged: true },
    });
    const own = {
      listResources: low._getRequestHandler("resources/list"),
      listTemplates: low._getRequestHandler("resources/templates/list"),
      subscribe: low._getRequestHandler("resources/subscribe"),
      unsubscribe: low._getRequestHandler("resources/unsubscribe"),
      readResource: low._getRequestHandler("resources/read"),
      listPrompts: low._getRequestHandler("prompts/list"),
      getPrompt: low._getRequestHandler("prompts/get"),
    };
    const raw = (ctx: ServerContext, method: string, params: unknown) => ({
      jsonrpc: "2.0",
      id: ctx.mcpReq.id,
      method,
      ...(params !== undefined ? { params } : {}),
    });
    const visible = (principal: string, what: "resources/read" | "prompts/get") =>
      deps.content().filter((s) => deps.permits(principal, `${s.prefix}${what}`));

    /**
     * One read or get's answer, size-checked, with its URIs namespaced, sealed by the digest
     * of what the caller receives.
     */
    async function relay(
      source: UpstreamContent,
      answer: Record<string, unknown>,
      fields: Record<string, unknown>,
    ): Promise<Record<string, unknown>> {
      checkSize(answer, source.server);
      const result = rewriteUris(answer, source.server) as Record<string, unknown>;
      await deps.record({
        ...fields,
        upstream: source.server,
        result_sha256: sha256HexOfText(JSON.stringify(result)),
      });
      return result;
    }

    async function gather(
      sources: readonly UpstreamContent[],
      method: "resources/list" | "resources/templates/list" | "prompts/list",
      pick: (answer: Record<string, unknown>, s: UpstreamContent) => unknown[],
    ): Promise<unknown[]> {
      const lists = await Promise.all(sources.map(async (s) => {
        try {
          const answer = await s.request(method, undefined);
          if (answer === null) return [];
          checkSize(answer, s.server);
          return pick(answer, s).slice(0, MAX_ITEMS_PER_UPSTREAM);
        } catch (e) {
          deps.logger.warn("upstream list left out", {
            upstream: s.server,
            method,
            error: e,
          });
          return [];
        }
      }));
      return lists.flat();
    }

    server.server.setRequestHandler("resources/list", async (request, ctx) => {
      const mine = own.listResources
        ? await own.listResources(raw(ctx, "resources/list", request.params), ctx)
        : { resources: [] };
      const theirs = await gather(
        visible(caller(ctx), "resources/read"),
        "resources/list",
        (a, s) => rewriteUris(a.resources ?? [], s.server) as unknown[],
      );
      return {
        ...mine,
        resources: [...(mine.resources as unknown[] ?? []), ...theirs],
      } as never;
    });

    // Templates are namespaced like URIs (`upstream://ev/demo://x/{id}`), so a URI expanded from
    // one is an `upstream://ev/…` URI that resources/read routes back to ev.
    server.server.setRequestHandler("resources/templates/list", async (request, ctx) => {
      const mine = own.listTemplates
        ? await own.listTemplates(raw(ctx, "resources/templates/list", request.params), ctx)
        : { resourceTemplates: [] };
      const theirs = await gather(
        visible(caller(ctx), "resources/read"),
        "resources/templates/list",
        (a, s) => rewriteUris(a.resourceTemplates ?? [], s.server) as unknown[],
      );
      return {
        ...mine,
        resourceTemplates: [...(mine.resourceTemplates as unknown[] ?? []), ...theirs],
      } as never;
    });

    /** The upstream an `upstream://` URI names, if the caller may read its resources. */
    function readable(uri: string, principal: string) {
      const target = parseUpstreamUri(uri);
      if (target === undefined) return undefined;
      if (uri.length > MAX_URI_CHARS) invalid(`resource URI over ${MAX_URI_CHARS} characters`);
      const source = visible(principal, "resources/read").find((s) => s.server === target.server);
      // An upstream the caller may not read is reported exactly like one that does not exist.
      if (!source) invalid(`Resource ${uri.slice(0, 200)} not found`);
      return { source, own: target.uri };
    }

    if (subscribable) {
      const hub = deps.subscriptions!;
      const self: Subscriber = {
        alive: () => server.isConnected(),
        notify: (uri) => server.server.sendResourceUpdated({ uri }),
      };
      const previous = server.server.onclose;
      server.server.onclose = () => {
        hub.drop(self);
        previous?.();
      };
      server.server.setRequestHandler("resources/subscribe", async (request, ctx) => {
        const uri = String(request.params.uri ?? "");
        const target = readable(uri, caller(ctx));
        if (!target) {
          // Warden's own resources do not change under a session unless an extension says so.
          if (!own.subscribe) invalid(`Resource ${uri.slice(0, 200)} cannot be subscribed to`);
          return await own.subscribe(raw(ctx, "resources/subscribe", request.params), ctx) as never;
        }
        await hub.subscribe(self, uri, target.source, target.own);
        return {} as never;
      });
      server.server.setRequestHandler("resources/unsubscribe", async (request, ctx) => {
        const uri = String(request.params.uri ?? "");
        if (parseUpstreamUri(uri) === undefined && own.unsubscribe) {
          return await own.unsubscribe(
            raw(ctx, "resources/unsubscribe", request.params),
            ctx,
          ) as never;
        }
        await hub.unsubscribe(self, uri);
        return {} as never;
      });
    }

    server.server.setRequestHandler("resources/read", async (request, ctx) => {
      const uri = String(request.params.uri ?? "");
      const principal = caller(ctx);
      const target = readable(uri, principal);
      if (target === undefined) {
        if (!own.readResource) invalid(`Resource ${uri.slice(0, 200)} not found`);
        return await own.readResource(raw(ctx, "resources/read", request.params), ctx) as never;
      }
      const source = target.source;
      const answer = await source.request("resources/read", { uri: target.own });
      if (answer === null) invalid(`upstream ${source.server} serves no resources`);
      return await relay(source, answer, {
        type: "upstream_resource_read",
        uri: uri.slice(0, 500),
        principal,
      }) as never;
    });

    server.server.setRequestHandler("prompts/list", async (request, ctx) => {
      const mine = own.listPrompts
        ? await own.listPrompts(raw(ctx, "prompts/list", request.params), ctx)
        : { prompts: [] };
      const ownNames = new Set(
        ((mine.prompts ?? []) as { name?: unknown }[]).map((p) => String(p?.name)),
      );
      const theirs = await gather(
        visible(caller(ctx), "prompts/get"),
        "prompts/list",
        (a, s) => {
          const listed = Array.isArray(a.prompts) ? a.prompts as Record<string, unknown>[] : [];
          deps.notePrompts(s.server, listed.map((p) => p?.name as string));
          // Only the names the catalogue gives this upstream: a name Warden or an upstream
          // ranked before it holds is not listed twice (and would not route here).
          return listed
            .map((p) => ({ ...p, name: `${s.prefix}${p.name}` }))
            .filter((p) =>
              !ownNames.has(p.name) && deps.prompt(p.name)?.source.server === s.server
            );
        },
      );
      return { ...mine, prompts: [...(mine.prompts as unknown[] ?? []), ...theirs] } as never;
    });

    server.server.setRequestHandler("prompts/get", async (request, ctx) => {
      const name = String(request.params.name ?? "");
      const principal = caller(ctx);
      // The catalogue routes every exposed name, empty prefixes included; it never hands out
      // Warden's own prompt names.
      const route = deps.prompt(name);
      if (!route) {
        if (!own.getPrompt) invalid(`Prompt ${name.slice(0, 200)} not found`);
        return await own.getPrompt(raw(ctx, "prompts/get", request.params), ctx) as never;
      }
      const source = route.source;
      if (!deps.permits(principal, `${source.prefix}prompts/get`)) {
        invalid(`Prompt ${name.slice(0, 200)} not found`);
      }
      const answer = await source.request("prompts/get", {
        name: route.prompt,
        ...(request.params.arguments ? { arguments: request.params.arguments } : {}),
      });
      if (answer === null) invalid(`upstream ${source.server} serves no prompts`);
      return await relay(source, answer, {
        type: "upstream_prompt_get",
        prompt: name.slice(0, 200),
        principal,
      }) as never;
    });
  };
}

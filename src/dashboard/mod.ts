/**
 * The audit dashboard (`/dashboard`): live calls and verdicts, holds decided
 * with a signature made in the browser, vault integrity, usage and upstream
 * health. Server-rendered, readable without JavaScript, every asset embedded
 * (assets.ts). People sign in at `/login` with a `warden user add` user's
 * password (the same check as the OAuth login); users whose roles include
 * `operator` or `admin` may decide, `auditor` may only read; everyone else is
 * refused. Sessions are HttpOnly SameSite=Strict cookies; every form carries
 * a CSRF token derived from the session; a POST without it is refused.
 *
 * @module
 */
import { type Context, Hono } from "hono";
import { decideHold, type Governance, HoldError } from "../governance/mod.ts";
import { type Gateway, RegistrationError } from "../gateway/mod.ts";
import { type Principal, userRoles } from "../identity/mod.ts";
import { fromHex, type Logger, toBase64 } from "../lib/mod.ts";
import { DEFAULT_BODY_TIMEOUT_MS, readWithin } from "../net/mod.ts";
import type { PasswordVerifier } from "../oauth/mod.ts";
import type { Accounting } from "../usage/mod.ts";
import { buildRoot, parseCheckpoint, splitNote, verifyInclusion } from "../merkle/mod.ts";
import { describeResult, exportBundle, type Ledger, verifyBundleStream } from "../vault/mod.ts";
import { asset } from "./assets.ts";
import { callStream, parseFilter, perMinute, recentCalls } from "./feed.ts";
import { Html, html } from "./html.ts";
import {
  entryPage,
  feedPage,
  holdsPage,
  layout,
  loginPage,
  messagePage,
  upstreamsPage,
  usagePage,
  vaultPage,
  type Viewer,
} from "./pages.ts";
import {
  cookieHeader,
  cookieOf,
  createSessionStore,
  csrfMatches,
  csrfOf,
  LOGIN_COOKIE,
  randomSecret,
  SESSION_COOKIE,
  SESSION_TTL_MS,
} from "./session.ts";

export { asset, assetNames } from "./assets.ts";

/** Roles that may approve and deny; `auditor` reads only. */
export const OPERATOR_ROLES: readonly string[] = ["operator", "admin"];
export const AUDITOR_ROLE = "auditor";

/** The Content-Security-Policy of every dashboard page: nothing but this origin, no inline code. */
export const DASHBOARD_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; " +
  "img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; " +
  "base-uri 'none'";

const MAX_FORM_BYTES = 16 * 1024;
const MAX_STREAMS = 32;
const MAX_LOGINS_IN_FLIGHT = 4;
const USAGE_RANGES: Readonly<Record<string, number>> = {
  "1h": 3_600_000,
  "24h": 86_400_000,
  "7d": 7 * 86_400_000,
  "30d": 30 * 86_400_000,
};

export interface DashboardDeps {
  readonly kv: Deno.Kv;
  readonly ledger: Ledger;
  readonly governance: Governance;
  readonly vkey: string;
  readonly logger: Logger;
  /** The password check of `/login` (the OAuth login's, when that is on). */
  readonly verifyPassword: PasswordVerifier;
  readonly gateway?: Gateway;
  readonly accounting?: Accounting;
  /** Milliseconds since this process last signed a checkpoint, when it has. */
  readonly checkpointAgeMs?: () => number | undefined;
  /** Signs a checkpoint over the vault's head (before a full verification of the live log). */
  readonly signCheckpoint?: () => Promise<void>;
  /** Whether the OAuth server answers `/login` without `return_to` (its own login). */
  readonly oauthLogin: boolean;
  /** Whether cookies get `Secure` (the public URL is https). */
  readonly secureCookies?: () => boolean;
  /** Feed poll period (tests make it short). */
  readonly pollMs?: number;
  /** How long a form may take to arrive (--request-timeout); default 30 s. */
  readonly bodyTimeoutMs?: number;
  /** The HTTP status a refused hold decision or upstream approval answers with (src/http/ owns the mapping). */
  readonly statusOf: (e: HoldError | RegistrationError) => number;
}

export interface Dashboard {
  readonly routes: Hono;
  /** Whether the dashboard authenticates this request itself (session, not bearer token). */
  owns(req: Request, path: string): boolean;
  /** The principal of a dashboard session cookie (operators and auditors only), if any. */
  principalOf(req: Request): Promise<Principal | undefined>;
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  return {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    "content-security-policy": DASHBOARD_CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    // Not no-referrer: under it a browser sends `Origin: null` with the page's own form POSTs,
    // which the Origin check refuses (no one could sign in). same-origin keeps the Origin and
    // sends no Referer to any other site.
    "referrer-policy": "same-origin",
    ...extra,
  };
}

function respond(body: Html, status = 200, extra: Record<string, string> = {}): Response {
  return new Response(`${body}`, { status, headers: headers(extra) });
}

function redirect(location: string, status = 303, extra: Record<string, string> = {}): Response {
  return new Response(null, {
    status,
    headers: { location, "cache-control": "no-store", ...extra },
  });
}

/** Where a login may send the browser back to: only a dashboard path on this origin. */
export function safeReturn(v: string | undefined): string {
  if (v === undefined || v.length > 512) return "/dashboard";
  if (!/^\/dashboard(?:[/?]|$)/.test(v) || v.includes("//") || v.includes("\\")) {
    return "/dashboard";
  }
  return v;
}

class FormError extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
  }
}

async function readForm(req: Request, timeoutMs: number): Promise<URLSearchParams> {
  const type = (req.headers.get("content-type") ?? "").toLowerCase();
  if (!type.startsWith("application/x-www-form-urlencoded")) {
    throw new FormError("expected a form (application/x-www-form-urlencoded)", 415);
  }
  if (Number(req.headers.get("content-length") ?? "0") > MAX_FORM_BYTES || !req.body) {
    if (!req.body) return new URLSearchParams();
    throw new FormError("form too large", 413);
  }
  // A form that stalls is cancelled at the deadline (408), not waited for.
  const bytes = await readWithin(req.body, MAX_FORM_BYTES, timeoutMs);
  if (bytes === "timeout") throw new FormError("the form was not received in time", 408);
  if (bytes === "unreadable") throw new FormError("the form could not be read", 400);
  if (bytes === "too_large") throw new FormError("form too large", 413);
  return new URLSearchParams(new TextDecoder().decode(bytes));
}

function field(form: URLSearchParams, name: string, max = 256): string {
  const v = form.get(name) ?? "";
  return v.length > max ? "" : v;
}

function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

// Kept whole: a factory of 27 route closures sharing the live-feed streams, the logins in flight
// and the verification guard.
export function createDashboard(deps: DashboardDeps): Dashboard {
  const { kv, ledger, governance, logger: log } = deps;
  const sessions = createSessionStore(kv);
  const secure = () => deps.secureCookies?.() ?? false;
  const bodyTimeoutMs = deps.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS;
  let streams = 0;
  let loginsInFlight = 0;
  let verifying = false;

  /** The user's roles (record plus policy entry), or undefined when the user no longer exists. */
  async function rolesOfUser(name: string): Promise<string[] | undefined> {
    const own = await userRoles(kv, name);
    if (own === undefined) return undefined;
    const policy = governance.policy;
    const entry = Object.hasOwn(policy.principals, name) ? policy.principals[name].roles : [];
    return [...new Set([...own, ...entry])];
  }
  const mayDecide = (roles: readonly string[]) => roles.some((r) => OPERATOR_ROLES.includes(r));
  const mayRead = (roles: readonly string[]) => mayDecide(roles) || roles.includes(AUDITOR_ROLE);

  /** The viewer of a request, or why not. */
  async function viewerOf(req: Request): Promise<Viewer | "none" | "forbidden"> {
    const secret = cookieOf(req, SESSION_COOKIE);
    const user = await sessions.user(secret);
    if (user === undefined || secret === undefined) return "none";
    const roles = await rolesOfUser(user);
    if (roles === undefined) {
      // `warden user remove` ends the user's sessions too, whatever the policy still grants the name.
      await sessions.destroy(secret);
      return "none";
    }
    if (!mayRead(roles)) return "forbidden";
    return { user, roles, canDecide: mayDecide(roles), csrf: csrfOf(secret, "session") };
  }

  const app = new Hono<{ Variables: { viewer: Viewer } }>();
  app.onError((err, c) => {
    if (err instanceof FormError) {
      // A form refused as too large or too slow: the rest of it is not worth reading.
      const close: Record<string, string> = err.status === 408 || err.status === 413
        ? { connection: "close" }
        : {};
      return respond(messagePage("Refused", err.message, c.get("viewer")), err.status, close);
    }
    log.error("dashboard route failed", { path: c.req.path, error: err });
    return respond(messagePage("Error", "The dashboard could not answer this request."), 500);
  });

  app.get("/", () => redirect("/dashboard", 302));

  const ownsLogin = (c: Context) => !deps.oauthLogin || c.req.query("return_to") !== undefined;

  app.get("/login", async (c, next) => {
    if (!ownsLogin(c)) return await next();
    const returnTo = safeReturn(c.req.query("return_to"));
    const viewer = await viewerOf(c.req.raw);
    if (typeof viewer !== "string") return redirect(returnTo, 303);
    const existing = cookieOf(c.req.raw, LOGIN_COOKIE);
    const secret = existing ?? randomSecret();
    return respond(
      loginPage({ returnTo, csrf: csrfOf(secret, "login") }),
      200,
      existing ? {} : {
        "set-cookie": cookieHeader(LOGIN_COOKIE, secret, {
          maxAgeS: 1800,
          path: "/login",
          secure: secure(),
        }),
      },
    );
  });

  app.post("/login", async (c, next) => {
    if (!ownsLogin(c)) return await next();
    const returnTo = safeReturn(c.req.query("return_to"));
    const form = await readForm(c.req.raw, bodyTimeoutMs);
    const loginSecret = cookieOf(c.req.raw, LOGIN_COOKIE);
    if (!csrfMatches(loginSecret, form.get("csrf"), "login")) {
      return respond(
        messagePage("Refused", "The sign-in form has expired or is forged; load it again."),
        403,
      );
    }
    const again = (error: string, status: number) =>
      respond(loginPage({ returnTo, csrf: csrfOf(loginSecret!, "login"), error }), status);
    const user = field(form, "username", 64);
    const password = field(form, "password", 1024);
    if (loginsInFlight >= MAX_LOGINS_IN_FLIGHT) {
      return again("Too many sign-ins at once; try again in a moment.", 429);
    }
    loginsInFlight++;
    let ok = false;
    try {
      ok = user !== "" && await deps.verifyPassword(user, password);
    } finally {
      loginsInFlight--;
    }
    if (!ok) {
      log.warn("dashboard login refused", { user: user.slice(0, 64) });
      return again("Wrong user name or password.", 401);
    }
    if (!mayRead((await rolesOfUser(user)) ?? [])) {
      return again(
        `User ${user} has neither the operator, admin nor auditor role; the dashboard is for them.`,
        403,
      );
    }
    const secret = await sessions.create(user);
    log.info("dashboard login", { user });
    const res = redirect(returnTo, 303);
    res.headers.append(
      "set-cookie",
      cookieHeader(SESSION_COOKIE, secret, {
        maxAgeS: SESSION_TTL_MS / 1000,
        secure: secure(),
      }),
    );
    res.headers.append(
      "set-cookie",
      cookieHeader(LOGIN_COOKIE, "", { maxAgeS: 0, path: "/login", secure: secure() }),
    );
    return res;
  });

  app.get("/dashboard/assets/:name", (c) => {
    const a = asset(c.req.param("name"));
    if (!a) return respond(messagePage("Not found", "No such asset."), 404);
    return new Response(a.body, {
      headers: {
        "content-type": a.type,
        "cache-control": "no-cache",
        "x-content-type-options": "nosniff",
      },
    });
  });

  // Everything else under /dashboard needs a session of an operator or auditor.
  app.use("/dashboard/*", async (c, next) => {
    const viewer = await viewerOf(c.req.raw);
    if (viewer === "none") {
      if (c.req.method === "GET" && !c.req.path.startsWith("/dashboard/feed/")) {
        const u = new URL(c.req.url);
        return redirect(`/login?return_to=${encodeURIComponent(u.pathname + u.search)}`, 302);
      }
      return respond(messagePage("Sign in first", "This needs a dashboard session."), 401);
    }
    if (viewer === "forbidden") {
      return respond(
        messagePage("Forbidden", "The dashboard is for operators and auditors."),
        403,
      );
    }
    c.set("viewer", viewer);
    if (c.req.method !== "GET" && c.req.method !== "HEAD") {
      const form = await readForm(c.req.raw, bodyTimeoutMs);
      const secret = cookieOf(c.req.raw, SESSION_COOKIE);
      if (!csrfMatches(secret, form.get("csrf"), "session")) {
        log.warn("dashboard POST without a valid CSRF token", { path: c.req.path });
        return respond(
          messagePage("Refused", "This form has no valid CSRF token; reload the page.", viewer),
          403,
        );
      }
      formOf.set(c.req.raw, form);
    }
    await next();
  });
  const formOf = new WeakMap<Request, URLSearchParams>();
  const operatorOnly = (viewer: Viewer) =>
    viewer.canDecide ? undefined : respond(
      messagePage(
        "Forbidden",
        "Auditors have read-only access; deciding needs an operator.",
        viewer,
      ),
      403,
    );

  app.get("/dashboard", async (c) => {
    const viewer = c.get("viewer");
    const filter = parseFilter(c.req.query());
    if (typeof filter === "string") {
      return respond(messagePage("Bad filter", filter, viewer), 400);
    }
    try {
      const { rows, size } = await recentCalls(ledger, filter);
      return respond(feedPage(viewer, { rows, size, filter }));
    } catch (e) {
      log.error("dashboard cannot read the vault", { error: e });
      const { size } = await ledger.head();
      return respond(
        feedPage(viewer, { rows: [], size, filter, error: "The vault could not be read." }),
      );
    }
  });

  app.post("/dashboard/logout", async (c) => {
    await sessions.destroy(cookieOf(c.req.raw, SESSION_COOKIE));
    return redirect("/login?return_to=%2Fdashboard", 303, {
      "set-cookie": cookieHeader(SESSION_COOKIE, "", { maxAgeS: 0, secure: secure() }),
    });
  });

  app.get("/dashboard/feed/events", (c) => {
    const filter = parseFilter(c.req.query());
    if (typeof filter === "string") return c.text(filter, 400);
    const last = c.req.header("last-event-id") ?? c.req.query("after") ?? "-1";
    if (!/^-?\d{1,15}$/.test(last)) return c.text("bad after / Last-Event-ID", 400);
    if (streams >= MAX_STREAMS) {
      return c.text("too many live feeds open; try again later", 503, { "retry-after": "5" });
    }
    streams++;
    const body = callStream(ledger, filter, {
      after: Math.max(-1, Number(last)),
      ...(deps.pollMs !== undefined ? { pollMs: deps.pollMs } : {}),
      onClose: () => streams--,
    });
    return new Response(body, {
      headers: {
        "content-type": "text/event-stream",
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
      },
    });
  });

  async function renderHolds(viewer: Viewer, extra: { flash?: string; error?: string } = {}) {
    const holds = await governance.holds.listOpen();
    return holdsPage(viewer, {
      holds,
      operators: governance.policy.operators.map((o) => o.name),
      ...extra,
    });
  }

  // After a decision the page names the hold and shows its state read from the store, never text
  // from the URL: a crafted link cannot make the page say a hold was approved.
  app.get("/dashboard/holds", async (c) => {
    const decided = c.req.query("decided");
    const hold = decided !== undefined && decided.length <= 64
      ? await governance.holds.get(decided)
      : null;
    const flash = hold
      ? `Hold ${hold.id} (${hold.tool}): ${hold.status}; signed by ${
        hold.approvals.map((a) => a.operator).join(", ") || "nobody"
      }${hold.deniedBy ? `; denied by ${hold.deniedBy}` : ""}.`
      : undefined;
    return respond(await renderHolds(c.get("viewer"), flash ? { flash } : {}));
  });

  app.post("/dashboard/holds/:id/decide", async (c) => {
    const viewer = c.get("viewer");
    const refused = operatorOnly(viewer);
    if (refused) return refused;
    const form = formOf.get(c.req.raw)!;
    const decision = form.get("decision");
    if (decision !== "approve" && decision !== "deny") {
      return respond(await renderHolds(viewer, { error: "decision must be approve or deny" }), 400);
    }
    const operator = field(form, "operator", 64);
    const signature = field(form, "signature", 200);
    if (operator === "" || signature === "") {
      return respond(
        await renderHolds(viewer, {
          error: "Load your operator.key (or paste a signature) first.",
        }),
        400,
      );
    }
    const id = c.req.param("id");
    try {
      const hold = await decideHold(governance, id, { decision, operator, signature });
      log.info("hold decided in the dashboard", {
        hold_id: id,
        decision,
        operator,
        by: viewer.user,
      });
      return redirect(`/dashboard/holds?decided=${encodeURIComponent(hold.id)}`);
    } catch (e) {
      if (e instanceof HoldError) {
        return respond(await renderHolds(viewer, { error: e.message }), deps.statusOf(e));
      }
      throw e;
    }
  });

  app.get("/dashboard/vault", async (c) => {
    const head = await ledger.head();
    const note = await ledger.latestCheckpoint();
    let checkpoint: { size: number; root: string; age: string } | undefined;
    if (note) {
      const cp = parseCheckpoint(splitNote(note).text);
      const age = deps.checkpointAgeMs?.();
      checkpoint = {
        size: cp.size,
        root: toBase64(cp.root),
        age: age !== undefined
          ? `signed ${ago(age)} by this instance`
          : `${head.size - cp.size} entries behind the head`,
      };
    }
    const { times } = await recentCalls(ledger, {}, { scan: 2000, limit: 0 }).catch(() => ({
      times: [] as string[],
    }));
    return respond(vaultPage(c.get("viewer"), {
      origin: ledger.origin,
      size: head.size,
      root: head.root,
      ...(checkpoint ? { checkpoint } : {}),
      vkey: deps.vkey,
      perMinute: perMinute(times, 30),
    }));
  });

  // Kept whole: the vault verification route streams one verification and its progress events; its
  // small inner closures share the stream's state (stopped, items, beat).
  app.post("/dashboard/vault/verify", (c) => {
    const viewer = c.get("viewer");
    if (verifying) {
      return respond(
        messagePage("Busy", "A verification is already running; try again when it ends.", viewer),
        429,
      );
    }
    verifying = true;
    const [before, after] = `${
      layout(
        "Verification",
        viewer,
        "vault",
        html`
          <h1>Full verification</h1>
          <ol id="progress">${new Html("<!--progress-->")}</ol>
        `,
      )
    }`.split("<!--progress--></ol>");
    const enc = new TextEncoder();
    // The export is piped into the verifier with backpressure; when the verifier stops early
    // (a failure), the exporter's next write throws and the export ends.
    let stopped = false;
    let wake: (() => void) | null = null;
    const release = () => {
      const w = wake;
      wake = null;
      w?.();
    };
    let ctrl!: ReadableStreamDefaultController<Uint8Array>;
    const readable = new ReadableStream<Uint8Array>({
      start(c) {
        ctrl = c;
      },
      pull: release,
      cancel() {
        stopped = true;
        release();
      },
    }, { highWaterMark: 8 });
    let items = 0;
    const started = performance.now();
    // The live log's newest entries are covered by no checkpoint until the next signing; sign one
    // over the head first, so the verification authenticates every entry it reads. A refusal to
    // sign (a rolled-back KV, say) is logged, and the verification then reports what is uncovered.
    const signed = deps.signCheckpoint
      ? deps.signCheckpoint().catch((e) =>
        deps.logger.warn("cannot sign a checkpoint before verification", { error: e })
      )
      : Promise.resolve();
    const exporting = signed.then(() =>
      exportBundle(ledger, {
        vkey: deps.vkey,
        write: async (chunk) => {
          if (stopped) throw new Error("verification finished");
          items++;
          ctrl.enqueue(enc.encode(chunk));
          while (!stopped && (ctrl.desiredSize ?? 0) <= 0) {
            await new Promise<void>((resolve) => wake = resolve);
          }
        },
      })
    ).then(() => {
      if (!stopped) ctrl.close();
    }, (e) => {
      if (!stopped) ctrl.error(e);
      throw e;
    });
    // When the verifier ends first (a failure, or the browser left), the export's error is expected.
    exporting.catch(() => {});
    const verdict = verifyBundleStream(readable, { key: deps.vkey, allowUnsignedTail: true })
      .then(async (result) => {
        stopped = true;
        release();
        await exporting.catch((e) => {
          if (result.ok) throw e;
        });
        return result;
      })
      .catch((e) => ({
        ok: false as const,
        reason: `the log could not be read: ${(e as Error)?.message ?? String(e)}`,
      }));
    // The browser may leave mid-way (a closed tab): then nothing more is written, the export and
    // the verifier are stopped, and the slot is freed when they have ended.
    let gone = false;
    let beat: ReturnType<typeof setInterval> | undefined;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        const send = (text: string) => {
          if (gone) return;
          try {
            controller.enqueue(enc.encode(text));
          } catch {
            gone = true;
          }
        };
        send(before);
        let reported = -1;
        beat = setInterval(() => {
          if (items !== reported) {
            reported = items;
            send(`<li>read ${items} bundle records…</li>`);
          }
        }, 250);
        verdict.then((result) => {
          clearInterval(beat);
          verifying = false;
          if (gone) {
            log.info("dashboard vault verification abandoned: the browser left", {
              by: viewer.user,
            });
            return;
          }
          const line = describeResult(result as Parameters<typeof describeResult>[0]);
          const index = !result.ok && "index" in result && result.index !== undefined
            ? result.index
            : undefined;
          const warnings = result.ok && "warnings" in result ? result.warnings ?? [] : [];
          log.info("dashboard vault verification", { ok: result.ok, by: viewer.user, index });
          send(
            `${html`
              <li>read ${items} bundle records in ${Math.round(
                performance.now() - started,
              )} ms</li></ol><p id="verify-result"
                class="${result.ok ? "ok" : "bad"}" data-ok="${String(result.ok)}"
                ${index !== undefined
                  ? html`
                    data-index="${index}"
                  `
                  : ""}>${result.ok ? "PASS — " : "FAILED — "}${line}</p>${warnings.map((w) =>
                    html`<p class="muted">Warning: ${w}</p>`
                  )}<p><a href="/dashboard/vault">back to the vault</a></p>
            `}${after}`,
          );
          if (!gone) controller.close();
        });
      },
      cancel() {
        gone = true;
        clearInterval(beat);
        if (!stopped) {
          stopped = true;
          try {
            ctrl.error(new Error("the browser left"));
          } catch {
            // the export had already ended
          }
          release();
        }
      },
    });
    return new Response(body, { headers: headers() });
  });

  app.get("/dashboard/entries/:index", async (c) => {
    const viewer = c.get("viewer");
    const raw = c.req.param("index");
    if (!/^\d{1,15}$/.test(raw)) return respond(messagePage("Bad index", raw, viewer), 400);
    const index = Number(raw);
    const entry = await ledger.entry(index);
    if (!entry) return respond(messagePage("Not found", `No entry ${index}.`, viewer), 404);
    const head = await ledger.head();
    const proof = await ledger.inclusionProof(index, head.size);
    const root = await buildRoot(head.size, { getNodes: (ids) => ledger.nodes(ids) });
    let verified = true;
    try {
      verifyInclusion({ index, size: head.size, leafHash: fromHex(entry.leafHash), proof, root });
    } catch {
      verified = false;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder().decode(entry.bytes));
    } catch {
      parsed = "(not JSON)";
    }
    return respond(entryPage(viewer, {
      index,
      entry: parsed,
      leafHash: entry.leafHash,
      size: head.size,
      root: toBase64(root),
      proof: proof.map(toBase64),
      verified,
    }));
  });

  app.get("/dashboard/usage", async (c) => {
    const viewer = c.get("viewer");
    const range = c.req.query("range") ?? "24h";
    const span = Object.hasOwn(USAGE_RANGES, range) ? USAGE_RANGES[range] : undefined;
    if (span === undefined) return respond(messagePage("Bad range", range, viewer), 400);
    const accounting = deps.accounting;
    const toMs = Date.now();
    const fromMs = toMs - span;
    const q = async (groupBy: "tool" | "principal" | "upstream") =>
      accounting ? await accounting.query({ fromMs, toMs, groupBy }) : [];
    await accounting?.flush();
    return respond(usagePage(viewer, {
      range,
      ranges: Object.keys(USAGE_RANGES),
      byPrincipal: await q("principal"),
      byTool: await q("tool"),
      byUpstream: await q("upstream"),
      // Sessions have no time range: their rows live as long as they do.
      bySession: accounting ? await accounting.querySessions({ limit: 20 }) : [],
    }));
  });

  app.get("/dashboard/upstreams", (c) => {
    // As for holds: the flash is the tool's state now, not text from the URL.
    const servers = deps.gateway?.servers();
    const server = c.req.query("server"), tool = c.req.query("tool");
    const pinned = servers?.find((s) => s.name === server)?.tools.find((t) =>
      t.upstream_tool === tool
    );
    return respond(upstreamsPage(c.get("viewer"), {
      servers,
      ...(pinned
        ? { flash: `${server}/${tool}: ${pinned.state}, pinned at ${pinned.pinned_sha256}` }
        : {}),
    }));
  });

  app.post("/dashboard/upstreams/:name/tools/:tool/approve", async (c) => {
    const viewer = c.get("viewer");
    const refused = operatorOnly(viewer);
    if (refused) return refused;
    const gateway = deps.gateway;
    if (!gateway) return respond(messagePage("Not found", "No gateway.", viewer), 404);
    const form = formOf.get(c.req.raw)!;
    const server = c.req.param("name"), tool = c.req.param("tool");
    try {
      const result = await gateway.approveTool({
        server,
        tool,
        sha256: field(form, "sha256", 64),
        operator: field(form, "operator", 64),
        signature: field(form, "signature", 200),
      });
      log.info("upstream tool approved in the dashboard", {
        server,
        tool,
        pinned: result.pinned,
        by: viewer.user,
      });
      return redirect(
        `/dashboard/upstreams?${new URLSearchParams({ server, tool })}`,
      );
    } catch (e) {
      if (e instanceof RegistrationError) {
        return respond(
          upstreamsPage(viewer, { servers: gateway.servers(), error: e.message }),
          deps.statusOf(e),
        );
      }
      throw e;
    }
  });

  return {
    routes: app as unknown as Hono,
    owns(req, path) {
      if (path === "/" && req.method === "GET") return true;
      if (path === "/dashboard" || path.startsWith("/dashboard/")) return true;
      if (path === "/login") {
        return !deps.oauthLogin || new URL(req.url).searchParams.has("return_to");
      }
      return false;
    },
    async principalOf(req) {
      const viewer = await viewerOf(req);
      if (typeof viewer === "string") return undefined;
      return { id: viewer.user, kind: "user", roles: viewer.roles, scopes: [] };
    },
  };
}

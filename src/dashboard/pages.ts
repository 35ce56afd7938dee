/**
 * The dashboard's server-rendered pages. Plain HTML that reads fully without
 * JavaScript; the embedded script (assets.ts) adds the live feed and
 * in-browser signing. Every value is escaped by `html`.
 *
 * @module
 */
import type { HoldRecord } from "../governance/mod.ts";
import type { UpstreamStatus } from "../gateway/mod.ts";
import type { UsageRow } from "../usage/mod.ts";
import { barChart, columnChart } from "./charts.ts";
import type { CallRow, FeedFilter } from "./feed.ts";
import { type Html, html } from "./html.ts";

/** Who is looking, and what they may do. */
export interface Viewer {
  readonly user: string;
  readonly roles: readonly string[];
  /** Operators (roles operator or admin) may decide; auditors only read. */
  readonly canDecide: boolean;
  readonly csrf: string;
}

const NAV = [
  ["feed", "/dashboard", "Live feed"],
  ["holds", "/dashboard/holds", "Holds"],
  ["vault", "/dashboard/vault", "Vault"],
  ["usage", "/dashboard/usage", "Usage"],
  ["upstreams", "/dashboard/upstreams", "Upstreams"],
] as const;

/** The document head and header; `body` goes in <main>. */
export function layout(
  title: string,
  viewer: Viewer | undefined,
  active: string,
  body: Html,
): Html {
  return html`
    <!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>${title} · Warden</title>
        <link rel="icon" href="/dashboard/assets/favicon.svg" type="image/svg+xml">
        <link rel="stylesheet" href="/dashboard/assets/dashboard.css">
        <script src="/dashboard/assets/dashboard.js" defer></script>
      </head>
      <body>
        <header><span class="brand">Warden</span>${viewer
          ? html`
            <nav>${NAV.map(([id, href, label]) =>
              html`
                <a href="${href}" ${id === active
                  ? html`
                    aria-current="page"
                  `
                  : ""}>${label}</a>
              `
            )}</nav><span class="who">${viewer.user} (${viewer.canDecide
              ? "operator"
              : "auditor, read-only"})</span><form method="post"
              action="/dashboard/logout"><input type="hidden" name="csrf" value="${viewer
                .csrf}"><button type="submit">Log out</button></form>
          `
          : ""}</header>
        <main>${body}</main>
      </body>
    </html>
  `;
}

export function loginPage(o: { returnTo: string; csrf: string; error?: string }): Html {
  return layout(
    "Sign in",
    undefined,
    "",
    html`
      <div
        class="login"><h1>Sign in to the Warden dashboard</h1><p class="muted">Operators and auditors: the users <code>warden user add</code> made.</p>${o
            .error
          ? html`<p class="flash error" role="alert">${o.error}</p>`
          : ""}<form method="post" action="/login?return_to=${encodeURIComponent(
            o.returnTo,
          )}"><input type="hidden" name="csrf" value="${o
          .csrf}"><label>User name <input type="text" name="username" autocomplete="username" required></label><label>Password <input name="password" type="password" autocomplete="current-password" required></label><button type="submit" class="primary">Sign in</button></form></div>
    `,
  );
}

export function messagePage(title: string, message: string, viewer?: Viewer): Html {
  return layout(
    title,
    viewer,
    "",
    html`
      <h1>${title}</h1>
      <p>${message}</p>
    `,
  );
}

function verdictBadge(v: string): Html {
  return html`<span class="verdict v-${v.replace(/[^A-Z0-9_]/g, "")}">${v}</span>`;
}

/** One feed row; the script builds the same cells for rows that arrive over SSE. */
export function callRow(r: CallRow): Html {
  return html`
    <tr data-index="${r.index}" data-verdict="${r.verdict}">
      <td class="time">${r.time}</td>
      <td class="principal">${r.principal}</td>
      <td class="tool">${r.tool}</td>
      <td class="verdict">${verdictBadge(r.verdict)}</td>
      <td class="failed">${r.failed.length === 0
        ? "—"
        : html`<strong>${r.failed.join(" ")}</strong><ul>${
          r.reasons.map((x) => html`<li>${x}</li>`)
        }</ul>`}</td>
      <td class="latency">${r.latency}</td>
      <td
        class="index"><a href="/dashboard/entries/${r.index}">#${r
          .index}</a> <a href="/vault/proof/inclusion?index=${r.index}">proof</a></td>
    </tr>
  `;
}

function query(f: FeedFilter): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v !== undefined) p.set(k, v);
  return p.toString();
}

export function feedPage(
  viewer: Viewer,
  o: { rows: readonly CallRow[]; size: number; filter: FeedFilter; error?: string },
): Html {
  const f = o.filter;
  const qs = query(f);
  const stream = `/dashboard/feed/events?${qs ? qs + "&" : ""}after=${o.size - 1}`;
  const verdicts = ["", "SEAL", "PARTIAL", "SABAR", "VOID", "888_HOLD"];
  return layout(
    "Live feed",
    viewer,
    "feed",
    html`
      <h1>Live feed <small id="live" class="muted">(reload for new calls; live with JavaScript)</small></h1>${o
          .error
        ? html`<p class="flash error">${o.error}</p>`
        : ""}<form
        class="filters" method="get"
        action="/dashboard"><label>Verdict <select name="verdict">${verdicts.map((v) =>
          html`
            <option value="${v}" ${v === (f.verdict ?? "")
              ? html`
                selected
              `
              : ""}>${v || "any"}</option>
          `
        )}</select></label><label>Principal <input type="text" name="principal" value="${f
          .principal ?? ""}"></label><label>Tool <input type="text" name="tool" value="${f.tool ??
          ""}"></label><button type="submit">Filter</button> <a href="/dashboard">clear</a></form><table
        id="feed" data-stream="${stream}">
        <thead>
          <tr>
            <th>Time</th>
            <th>Principal</th>
            <th>Tool</th>
            <th>Verdict</th>
            <th>Failed floors and reasons</th>
            <th>Latency</th>
            <th>Vault</th>
          </tr>
        </thead>
        <tbody>${o.rows.map(callRow)}</tbody>
      </table>${o.rows.length === 0
        ? html`<p id="feed-empty" class="muted">No calls yet.</p>`
        : ""}<p
        class="muted">From the last 500 vault entries (size ${o
          .size}). Every instance that shares this KV seals into the same vault, so every instance's calls show.</p>
    `,
  );
}

/** The sign-and-send form of a decision (hold or upstream tool). */
function signForm(
  viewer: Viewer,
  id: string,
  action: string,
  data: Html,
  buttons: Html,
): Html {
  return html`
    <form class="sign" method="post" action="${action}"
      ${data}><input type="hidden" name="csrf" value="${viewer
        .csrf}"><label for="key-${id}">Operator key</label><span><input id="key-${id}" class="keyfile" type="file" accept=".key,application/json" hidden> <span class="muted">operator.key is read and used in this browser only; just the signature is sent.</span></span><label>Operator</label><input type="text" name="operator" autocomplete="off"><label>Signature (base64)</label><input type="text" name="signature" autocomplete="off" placeholder="filled in by the key file, or paste one"><div class="actions">${buttons} <span class="sign-status muted" role="status"></span></div></form>
  `;
}

export function holdsPage(
  viewer: Viewer,
  o: {
    holds: readonly HoldRecord[];
    operators: readonly string[];
    flash?: string;
    error?: string;
  },
): Html {
  return layout(
    "Holds",
    viewer,
    "holds",
    html`<h1>Holds waiting for operators</h1>${
      o.flash ? html`<p class="flash" role="status">${o.flash}</p>` : ""
    }${o.error ? html`<p class="flash error" role="alert">${o.error}</p>` : ""}${
      o.holds.length === 0 ? html`<p class="muted" id="no-holds">No open holds.</p>` : ""
    }${
      o.holds.map((h) =>
        html`
          <section class="card hold" id="hold-${h.id}"
            data-hold="${h.id}"><h2>${h.tool} <span class="muted">by ${h
              .principal}</span> ${verdictBadge("888_HOLD")} <span class="muted">${h
              .status}</span></h2><dl class="kv"><dt>Hold</dt><dd class="mono">${h
              .id}</dd><dt>Why</dt><dd>${h.reasons.join(
                "; ",
              )}</dd><dt>Arguments</dt><dd>${h.arguments !== undefined
              ? html`<pre>${JSON.stringify(h.arguments, null, 2)}</pre>${
                (h.argumentsRedacted ?? 0) > 0
                  ? html`<span class="muted">${h.argumentsRedacted} value(s) redacted.</span>`
                  : ""
              }`
              : html`<span class="muted">not kept: ${
                h.argumentsOmitted ?? "unknown"
              }</span>`}</dd><dt>Digest</dt><dd class="mono digest">${h
              .digest}</dd><dt>Recompute</dt><dd>SHA-256 (hex) of the RFC 8785 canonical JSON of <code>{"tool", "arguments", "principal"}</code>${(h
                  .argumentsRedacted ?? 0) > 0
              ? " with the real, unredacted arguments"
              : " with the arguments shown"}.</dd><dt>Signed message</dt><dd class="mono">warden-hold/v1 \\n approve|deny \\n ${h
              .id} \\n ${h.digest} \\n</dd><dt>Expires</dt><dd>${new Date(h.expiresAtMs)
              .toISOString()}</dd><dt>Signers</dt><dd>${h.approvals.length} of ${h
              .requiredSigners} (${h.approvals.map((a) => a.operator).join(", ") ||
              "none yet"}); may sign: ${o.operators.join(", ") ||
              "no operators configured"}</dd></dl>${viewer.canDecide
              ? signForm(
                viewer,
                h.id,
                `/dashboard/holds/${h.id}/decide`,
                html`data-kind="hold" data-id="${h.id}" data-digest="${h.digest}"`,
                html`
                  <button type="submit" name="decision" value="approve" class="primary">Approve</button> <button
                    type="submit" name="decision" value="deny" class="danger">Deny</button>
                `,
              )
              : ""}</section>
        `
      )
    }`,
  );
}

export function vaultPage(
  viewer: Viewer,
  o: {
    origin: string;
    size: number;
    root: string;
    checkpoint?: { size: number; root: string; age: string };
    vkey: string;
    perMinute: readonly number[];
  },
): Html {
  return layout(
    "Vault",
    viewer,
    "vault",
    html`
      <h1>Vault</h1><div class="card">
        <dl class="kv">
          <dt>Origin</dt>
          <dd>${o.origin}</dd>
          <dt>Size</dt>
          <dd id="vault-size">${o.size}</dd>
          <dt>Head root</dt>
          <dd class="mono">${o.root}</dd>
          <dt>Latest checkpoint</dt>
          <dd>${o.checkpoint
            ? html`
              size ${o.checkpoint.size}, root <span class="mono">${o.checkpoint.root}</span>, ${o
                .checkpoint.age} <a
                href="/vault/checkpoint">note</a>
            `
            : "none signed yet"}</dd>
          <dt>Verifier key</dt>
          <dd class="mono" id="vkey">${o.vkey}</dd>
        </dl>
      </div><h2>Entries per minute (last 30 minutes)</h2>${columnChart(
        "Vault entries per minute",
        o.perMinute,
        "30 min ago → now",
      )}<h2>Full verification</h2><p>Reads every entry, checkpoint and body and checks them as <code>warden verify</code> checks an export bundle, against the verifier key above: leaf hashes, the hash chain, checkpoint signatures, roots and consistency proofs.</p><form
        method="post"
        action="/dashboard/vault/verify"><input type="hidden" name="csrf" value="${viewer
          .csrf}"><button type="submit" class="primary" id="verify">Verify the whole log</button></form>
    `,
  );
}

export function entryPage(
  viewer: Viewer,
  o: {
    index: number;
    entry: unknown;
    leafHash: string;
    size: number;
    root: string;
    proof: readonly string[];
    verified: boolean;
  },
): Html {
  return layout(
    `Entry ${o.index}`,
    viewer,
    "vault",
    html`
      <h1>Vault entry #${o.index}</h1>
      <pre>${JSON.stringify(o.entry, null, 2)}</pre>
      <h2>Inclusion proof</h2>
      <dl class="kv">
        <dt>Leaf hash</dt>
        <dd class="mono">${o.leafHash}</dd>
        <dt>Tree size</dt>
        <dd>${o.size}</dd>
        <dt>Root</dt>
        <dd class="mono">${o.root}</dd>
        <dt>Proof</dt>
        <dd class="mono">${o.proof.length === 0
          ? "(empty)"
          : o.proof.map((p) => html`${p}<br>`)}</dd>
        <dt>Checked here</dt>
        <dd class="${o.verified ? "ok" : "bad"}">${o.verified
          ? "the proof leads to the root"
          : "the proof does NOT lead to the root"}</dd>
      </dl>
      <p><a href="/vault/entries/${o
        .index}">raw entry</a> · <a href="/vault/proof/inclusion?index=${o
        .index}">raw proof</a> · <a href="/dashboard">back to the feed</a></p>
    `,
  );
}

export function usagePage(
  viewer: Viewer,
  o: {
    range: string;
    ranges: readonly string[];
    byPrincipal: readonly UsageRow[];
    byTool: readonly UsageRow[];
    byUpstream: readonly UsageRow[];
    /** Sessions still alive (their rows expire with them), most calls first. */
    bySession: readonly UsageRow[];
  },
): Html {
  const section = (title: string, rows: readonly UsageRow[], key: keyof UsageRow) =>
    html`
      <h2>${title}</h2>${barChart(
        `Calls per ${title.toLowerCase()}`,
        rows.map((r) => ({ label: String(r[key] ?? "(none)"), value: r.calls })),
      )}${rows.some((r) => r.cost > 0)
        ? barChart(
          `Cost per ${title.toLowerCase()}`,
          rows.map((r) => ({ label: String(r[key] ?? "(none)"), value: r.cost })),
          " u",
        )
        : ""}<table>
        <thead>
          <tr>
            <th>${title}</th>
            <th>Calls</th>
            <th>By verdict</th>
            <th>p50 latency</th>
            <th>Cost</th>
          </tr>
        </thead>
        <tbody>${rows.map((r) =>
          html`
            <tr>
              <td>${String(r[key] ?? "(none)")}</td>
              <td>${r.calls}</td>
              <td>${Object.entries(r.by_verdict).map(([v, n]) =>
                html`
                  ${verdictBadge(v)} ${n}
                `
              )}</td>
              <td>${r.latency_ms_p50} ms</td>
              <td>${r.cost}</td>
            </tr>
          `
        )}</tbody>
      </table>
    `;
  return layout(
    "Usage",
    viewer,
    "usage",
    html`
      <h1>Usage</h1><form class="filters" method="get"
        action="/dashboard/usage"><label>Range <select name="range">${o.ranges.map((r) =>
          html`<option${
            r === o.range
              ? html`
                selected
              `
              : ""
          }>${r}</option>`
        )}</select></label><button type="submit">Show</button></form>${section(
          "Principal",
          o.byPrincipal,
          "principal",
        )}${section("Tool", o.byTool, "tool")}${section(
          "Upstream",
          o.byUpstream.filter((r) => r.upstream !== null),
          "upstream",
        )}${section("Session", o.bySession, "session")}
    `,
  );
}

export function upstreamsPage(
  viewer: Viewer,
  o: { servers: readonly UpstreamStatus[] | undefined; flash?: string; error?: string },
): Html {
  return layout(
    "Upstreams",
    viewer,
    "upstreams",
    html`<h1>Upstreams</h1>${o.flash ? html`<p class="flash" role="status">${o.flash}</p>` : ""}${
      o.error ? html`<p class="flash error" role="alert">${o.error}</p>` : ""
    }${
      o.servers === undefined || o.servers.length === 0
        ? html`
          <p
            class="muted">No upstream MCP servers are configured (<code>--upstreams</code> or runtime registration).</p>
        `
        : html`
          <table>
            <thead>
              <tr>
                <th>Name</th>
                <th>Transport</th>
                <th>Source</th>
                <th>Health</th>
                <th>Breaker</th>
                <th>Tools</th>
              </tr>
            </thead>
            <tbody>${o.servers.map((s) =>
              html`
                <tr>
                  <td>${s.name}${s.version
                    ? html`
                      <span class="muted">${s.version}</span>
                    `
                    : ""}</td>
                  <td>${s.transport}${s.url
                    ? html`<br><span class="muted mono">${s.url}</span>`
                    : ""}</td>
                  <td>${s.source}</td>
                  <td class="mono">${JSON.stringify(s.connection)}</td>
                  <td class="mono">${JSON.stringify(s.circuit)}</td>
                  <td>${s.tools.length} (${s.tools.filter((t) => t.state !== "ok")
                    .length} awaiting approval)</td>
                </tr>
              `
            )}</tbody>
          </table>${o.servers.flatMap((s) =>
            s.tools.filter((t) => t.state !== "ok").map((t) =>
              html`
                <section
                  class="card"><h2>${s.name} / ${t.upstream_tool} <span class="muted">${t
                    .state}</span></h2><dl class="kv"><dt>Pinned</dt><dd class="mono">${t
                    .pinned_sha256}</dd><dt>Now</dt><dd class="mono">${t
                    .definition_sha256}</dd></dl>${viewer.canDecide
                    ? signForm(
                      viewer,
                      `${s.name}-${t.upstream_tool}`.replace(/[^A-Za-z0-9_-]/g, "_"),
                      `/dashboard/upstreams/${encodeURIComponent(s.name)}/tools/${
                        encodeURIComponent(t.upstream_tool)
                      }/approve`,
                      html`data-kind="tool" data-server="${s.name}" data-tool="${t.upstream_tool}" data-sha256="${t.definition_sha256}"`,
                      html`
                        <input type="hidden" name="sha256" value="${t
                          .definition_sha256}"><button type="submit" name="decision"
                          value="approve" class="primary">Approve the new definition</button>
                      `,
                    )
                    : ""}</section>
              `
            )
          )}
        `
    }`,
  );
}

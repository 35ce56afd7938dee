/**
 * The dashboard's stylesheet and script, embedded in the source so the
 * compiled binary serves them with no file, CDN or font to fetch. The script
 * is progressive: every page works without it (forms post, tables render);
 * with it the feed goes live over SSE and approvals are signed in the
 * browser with WebCrypto Ed25519 — the operator key file is read locally and
 * never sent.
 *
 * @module
 */

const CSS = `
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#fff;--panel:#f6f8fa;--accent:#0969da}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;gap:1.5rem;align-items:center;padding:.6rem 1.2rem;border-bottom:1px solid var(--line);background:var(--panel)}
header .brand{font-weight:700}
header nav a{margin-right:1rem;color:var(--accent);text-decoration:none}
header nav a[aria-current=page]{font-weight:700;text-decoration:underline}
header .who{margin-left:auto;color:var(--muted)}
header form{display:inline}
main{padding:1rem 1.2rem;max-width:84rem}
h1{font-size:1.3rem;margin:.2rem 0 .8rem}
h2{font-size:1.05rem;margin:1.4rem 0 .5rem}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid var(--line);padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:var(--panel);font-weight:600}
td.latency,td.index{white-space:nowrap}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
pre{background:var(--panel);padding:.6rem;overflow:auto;max-height:24rem;border:1px solid var(--line)}
.verdict{display:inline-block;padding:0 .45rem;border-radius:.7rem;font-weight:700;font-size:12px;color:#fff}
.v-SEAL{background:#1a7f37}.v-PARTIAL{background:#9a6700}.v-SABAR{background:#bc4c00}
.v-VOID{background:#cf222e}.v-888_HOLD{background:#8250df}
.muted{color:var(--muted)}
.ok{color:#1a7f37;font-weight:700}.bad{color:#cf222e;font-weight:700}
.flash{padding:.5rem .8rem;border:1px solid var(--line);background:var(--panel);margin:.5rem 0}
.flash.error{border-color:#cf222e}
.filters{display:flex;gap:.8rem;align-items:end;flex-wrap:wrap;margin-bottom:.8rem}
.filters label{display:flex;flex-direction:column;font-size:12px;color:var(--muted)}
.card{border:1px solid var(--line);border-radius:6px;padding:.8rem 1rem;margin:.8rem 0}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:0}
dl.kv dt{color:var(--muted)}dl.kv dd{margin:0;word-break:break-all}
form.sign{display:grid;grid-template-columns:max-content 1fr;gap:.4rem .8rem;align-items:center;margin-top:.6rem}
form.sign .actions{grid-column:1/3}
input[type=text],select{padding:.25rem .4rem;border:1px solid var(--line);border-radius:4px}
button{padding:.3rem .8rem;border:1px solid var(--line);border-radius:4px;background:var(--panel);cursor:pointer}
button.primary{background:#1a7f37;color:#fff;border-color:#1a7f37}
button.danger{background:#cf222e;color:#fff;border-color:#cf222e}
svg.chart{max-width:100%;height:auto}
svg .bar{fill:#0969da}svg .label{fill:#59636e;font-size:12px}svg .value{fill:#1f2328;font-size:12px}
.login{max-width:24rem;margin:4rem auto}
.login label{display:block;margin:.6rem 0}.login input{width:100%}
`;

const JS = `"use strict";
(() => {
  const PKCS8_PREFIX = "302e020100300506032b657004220420";
  const hexBytes = (h) => Uint8Array.from(h.match(/../g).map((x) => parseInt(x, 16)));
  const b64 = (bytes) => btoa(String.fromCharCode(...bytes));
  const unb64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

  // The operator.key file warden keygen wrote: {name, seed, public_key}. Read here, used here.
  async function loadKey(file) {
    if (file.size > 4096) throw new Error("that file is too large to be an operator.key");
    let doc;
    try { doc = JSON.parse(await file.text()); } catch { throw new Error("not an operator.key file (not JSON)"); }
    if (typeof doc.name !== "string" || typeof doc.seed !== "string") {
      throw new Error("not an operator.key file (needs name and seed)");
    }
    const seed = unb64(doc.seed);
    if (seed.length !== 32) throw new Error("operator key seed must be 32 bytes");
    const pkcs8 = new Uint8Array(16 + 32);
    pkcs8.set(hexBytes(PKCS8_PREFIX));
    pkcs8.set(seed, 16);
    const key = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, false, ["sign"]);
    pkcs8.fill(0);
    seed.fill(0);
    return { name: doc.name, key };
  }

  // The exact bytes warden approve signs (src/governance/holds.ts decisionMessage,
  // src/gateway/gateway.ts toolApprovalMessage).
  function messageOf(form, decision) {
    const d = form.dataset;
    if (d.kind === "hold") return "warden-hold/v1\\n" + decision + "\\n" + d.id + "\\n" + d.digest + "\\n";
    return "warden-tool/v1\\napprove\\n" + d.server + "\\n" + d.tool + "\\n" + d.sha256 + "\\n";
  }

  for (const form of document.querySelectorAll("form.sign")) {
    const fileInput = form.querySelector("input.keyfile");
    if (fileInput) fileInput.hidden = false;
    form.addEventListener("submit", async (ev) => {
      const file = fileInput && fileInput.files && fileInput.files[0];
      if (!file) return; // a pasted signature is posted as it is
      ev.preventDefault();
      const submitter = ev.submitter;
      const decision = (submitter && submitter.value) || "approve";
      const status = form.querySelector(".sign-status");
      try {
        const { name, key } = await loadKey(file);
        const message = new TextEncoder().encode(messageOf(form, decision));
        const sig = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, key, message));
        form.elements.namedItem("operator").value = name;
        form.elements.namedItem("signature").value = b64(sig);
        fileInput.value = "";
        if (status) status.textContent = "signed in this browser as " + name + "; sending the signature";
        if (submitter) form.requestSubmit(submitter); else form.requestSubmit();
      } catch (e) {
        if (status) status.textContent = "cannot sign: " + (e && e.message ? e.message : String(e));
      }
    });
  }

  // The live feed: rows arrive over SSE (the vault, read from KV: every instance's calls).
  const feed = document.getElementById("feed");
  if (feed && feed.dataset.stream && window.EventSource) {
    const body = feed.tBodies[0];
    const live = document.getElementById("live");
    const cell = (tr, cls, build) => {
      const td = document.createElement("td");
      td.className = cls;
      build(td);
      tr.appendChild(td);
    };
    const link = (href, text) => {
      const a = document.createElement("a");
      a.href = href;
      a.textContent = text;
      return a;
    };
    const rowOf = (r) => {
      const tr = document.createElement("tr");
      tr.dataset.index = String(r.index);
      tr.dataset.verdict = r.verdict;
      cell(tr, "time", (td) => { td.textContent = r.time; });
      cell(tr, "principal", (td) => { td.textContent = r.principal; });
      cell(tr, "tool", (td) => { td.textContent = r.tool; });
      cell(tr, "verdict", (td) => {
        const s = document.createElement("span");
        s.className = "verdict v-" + r.verdict;
        s.textContent = r.verdict;
        td.appendChild(s);
      });
      cell(tr, "failed", (td) => {
        if (r.failed.length === 0) { td.textContent = "—"; return; }
        const b = document.createElement("strong");
        b.textContent = r.failed.join(" ");
        td.appendChild(b);
        const ul = document.createElement("ul");
        for (const reason of r.reasons) {
          const li = document.createElement("li");
          li.textContent = reason;
          ul.appendChild(li);
        }
        td.appendChild(ul);
      });
      cell(tr, "latency", (td) => { td.textContent = r.latency; });
      cell(tr, "index", (td) => {
        td.appendChild(link("/dashboard/entries/" + r.index, "#" + r.index));
        td.appendChild(document.createTextNode(" "));
        td.appendChild(link("/vault/proof/inclusion?index=" + r.index, "proof"));
      });
      return tr;
    };
    const es = new EventSource(feed.dataset.stream);
    es.addEventListener("call", (ev) => {
      const r = JSON.parse(ev.data);
      if (body.querySelector('tr[data-index="' + r.index + '"]')) return;
      const empty = document.getElementById("feed-empty");
      if (empty) empty.remove();
      body.prepend(rowOf(r));
      while (body.rows.length > 200) body.deleteRow(-1);
    });
    es.onopen = () => { if (live) live.textContent = "live"; };
    es.onerror = () => { if (live) live.textContent = "reconnecting…"; };
  }
})();
`;

// A shield, so the browser's own /favicon.ico request (a 404) is never made.
const FAVICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">` +
  `<path d="M8 1 2 3.5V8c0 3.3 2.6 6.1 6 7 3.4-.9 6-3.7 6-7V3.5z" fill="#1a7f37"/></svg>`;

/** An embedded asset: its bytes and content type. */
export interface Asset {
  readonly body: string;
  readonly type: string;
}

const ASSETS: Readonly<Record<string, Asset>> = {
  "dashboard.css": { body: CSS, type: "text/css; charset=utf-8" },
  "dashboard.js": { body: JS, type: "text/javascript; charset=utf-8" },
  "favicon.svg": { body: FAVICON, type: "image/svg+xml" },
};

/** The asset called `name`, or undefined. The only way the routes read assets. */
export function asset(name: string): Asset | undefined {
  return Object.hasOwn(ASSETS, name) ? ASSETS[name] : undefined;
}

/** Names of every embedded asset. */
export function assetNames(): string[] {
  return Object.keys(ASSETS);
}

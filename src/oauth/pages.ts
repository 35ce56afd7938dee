/**
 * Server-rendered login, consent and error pages: plain HTML forms that work
 * without JavaScript; every value is escaped.
 *
 * @module
 */

function esc(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;").replaceAll("'", "&#39;");
}

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">` +
    `<meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<title>${esc(title)}</title><style>body{font-family:system-ui,sans-serif;max-width:28rem;` +
    `margin:3rem auto;padding:0 1rem}label{display:block;margin:.6rem 0}input{width:100%}` +
    `.err{color:#a00}</style></head><body>${body}</body></html>`;
}

export function loginPage(o: {
  request: string;
  csrf: string;
  client: string;
  error?: string;
  /** The external provider's label: adds a "Sign in with …" button. */
  federated?: string;
}) {
  return page(
    "Sign in to Warden",
    `<h1>Sign in to Warden</h1><p><strong>${
      esc(o.client)
    }</strong> asks to use Warden as you.</p>` +
      (o.error ? `<p class="err" role="alert">${esc(o.error)}</p>` : "") +
      `<form method="post" action="/login">` +
      `<input type="hidden" name="request" value="${esc(o.request)}">` +
      `<input type="hidden" name="csrf" value="${esc(o.csrf)}">` +
      `<label>User name <input name="username" autocomplete="username" required></label>` +
      `<label>Password <input name="password" type="password" autocomplete="current-password" required></label>` +
      `<button type="submit">Sign in</button></form>` +
      (o.federated === undefined ? "" : `<p>or</p><form method="post" action="/login/oidc">` +
        `<input type="hidden" name="request" value="${esc(o.request)}">` +
        `<input type="hidden" name="csrf" value="${esc(o.csrf)}">` +
        `<button type="submit">Sign in with ${esc(o.federated)}</button></form>`),
  );
}

export function consentPage(o: {
  request: string;
  csrf: string;
  client: string;
  clientId: string;
  redirectHost: string;
  scopes: readonly string[];
  user: string;
}) {
  return page(
    "Allow access?",
    `<h1>Allow access?</h1><p>Signed in as <strong>${esc(o.user)}</strong>.</p>` +
      `<p><strong>${esc(o.client)}</strong> (<code>${esc(o.clientId)}</code>) wants:</p><ul>` +
      o.scopes.map((s) => `<li>${esc(s)}</li>`).join("") +
      `</ul><p>You will be sent back to <strong>${esc(o.redirectHost)}</strong>.</p>` +
      `<form method="post" action="/consent">` +
      `<input type="hidden" name="request" value="${esc(o.request)}">` +
      `<input type="hidden" name="csrf" value="${esc(o.csrf)}">` +
      `<button type="submit" name="decision" value="allow">Allow</button> ` +
      `<button type="submit" name="decision" value="deny">Deny</button></form>`,
  );
}

/** An error; `back` (a same-origin path) links to where the person may try again. */
export function errorPage(error: string, description: string, back?: string) {
  return page(
    "Authorization error",
    `<h1>Authorization error</h1><p role="alert"><code>${esc(error)}</code>: ${
      esc(description)
    }</p>` + (back !== undefined ? `<p><a href="${esc(back)}">Try again</a></p>` : ""),
  );
}

/**
 * A browser, as far as OAuth needs one: follows /authorize to /login, fills in
 * the login form, then allows (or denies) on the consent page, carrying the
 * cookie and the forms' CSRF fields, all over real HTTP.
 */

function field(html: string, name: string): string {
  const m = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  if (!m) throw new Error(`no ${name} field in page: ${html.slice(0, 300)}`);
  return m[1].replaceAll("&amp;", "&").replaceAll("&quot;", '"');
}

export interface BrowserResult {
  /** Where the server finally redirected (the client's redirect URI with code or error). */
  readonly location: URL;
  readonly consentHtml: string;
}

/** Drives the login and consent pages for `authorizeUrl`, returning the final redirect. */
export async function browse(
  authorizeUrl: string,
  user: { username: string; password: string },
  decision: "allow" | "deny" = "allow",
): Promise<BrowserResult> {
  const a = await fetch(authorizeUrl, { redirect: "manual" });
  const loc = a.headers.get("location");
  if (a.status !== 302 || !loc) {
    throw new Error(
      `authorize answered ${a.status}: ${(await a.text().catch(() => "")).slice(0, 1500)}`,
    );
  }
  await a.body?.cancel();
  const loginUrl = new URL(loc, authorizeUrl);
  if (loginUrl.pathname !== "/login") return { location: loginUrl, consentHtml: "" };
  const cookie = (a.headers.get("set-cookie") ?? "").split(";")[0];
  const login = await fetch(loginUrl, { headers: { cookie } });
  const loginHtml = await login.text();
  const post = (path: string, form: Record<string, string>) =>
    fetch(new URL(path, loginUrl), {
      method: "POST",
      redirect: "manual",
      headers: {
        cookie,
        "content-type": "application/x-www-form-urlencoded",
        origin: loginUrl.origin,
      },
      body: new URLSearchParams(form),
    });
  const consent = await post("/login", {
    request: field(loginHtml, "request"),
    csrf: field(loginHtml, "csrf"),
    username: user.username,
    password: user.password,
  });
  const consentHtml = await consent.text();
  if (consent.status !== 200) throw new Error(`login answered ${consent.status}`);
  const done = await post("/consent", {
    request: field(consentHtml, "request"),
    csrf: field(consentHtml, "csrf"),
    decision,
  });
  await done.body?.cancel();
  const back = done.headers.get("location");
  if (done.status !== 302 || !back) throw new Error(`consent answered ${done.status}`);
  return { location: new URL(back), consentHtml };
}

/** A PKCE verifier and its S256 challenge. */
export async function pkce(): Promise<{ verifier: string; challenge: string }> {
  const b64 = (b: Uint8Array) =>
    btoa(String.fromCharCode(...b)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
  const verifier = b64(crypto.getRandomValues(new Uint8Array(32)));
  const challenge = b64(
    new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier))),
  );
  return { verifier, challenge };
}

/**
 * A browser for login federation, as far as the tests need one: a cookie jar
 * per host, redirects followed by hand, forms filled in from the pages. It goes
 * from Warden's /authorize to /login, presses "Sign in with …", signs in at the
 * external provider's own form, comes back to Warden's callback, and allows
 * on Warden's consent page — each step separately, so a test can stop, replay
 * or tamper in between.
 */

function field(html: string, name: string): string {
  const m = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  if (!m) throw new Error(`no ${name} field in page: ${html.slice(0, 300)}`);
  return m[1].replaceAll("&amp;", "&").replaceAll("&quot;", '"');
}

/** Cookies by host; every cookie of a host is sent to it (the tests' hosts are separate ports). */
export class CookieJar {
  readonly #jar = new Map<string, Map<string, string>>();

  store(url: URL, res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(";");
      const i = pair.indexOf("=");
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      const jar = this.#jar.get(url.host) ?? new Map<string, string>();
      this.#jar.set(url.host, jar);
      const gone = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a)) ||
        attrs.some((a) => /^\s*expires=/i.test(a) && Date.parse(a.split("=")[1]) < Date.now());
      if (gone) jar.delete(name);
      else jar.set(name, value);
    }
  }

  header(url: URL): string {
    return [...(this.#jar.get(url.host) ?? new Map()).entries()].map(([k, v]) => `${k}=${v}`)
      .join("; ");
  }

  set(url: URL, name: string, value: string): void {
    const jar = this.#jar.get(url.host) ?? new Map<string, string>();
    this.#jar.set(url.host, jar);
    jar.set(name, value);
  }

  get(url: URL, name: string): string | undefined {
    return this.#jar.get(url.host)?.get(name);
  }
}

export class FederatedBrowser {
  readonly jar = new CookieJar();
  /** The pending request id Warden's /login page names. */
  request = "";
  lastHtml = "";

  async get(url: string | URL): Promise<Response> {
    const u = new URL(url);
    const res = await fetch(u, { redirect: "manual", headers: { cookie: this.jar.header(u) } });
    this.jar.store(u, res);
    return res;
  }

  async post(url: string | URL, form: Record<string, string>): Promise<Response> {
    const u = new URL(url);
    const res = await fetch(u, {
      method: "POST",
      redirect: "manual",
      headers: {
        cookie: this.jar.header(u),
        "content-type": "application/x-www-form-urlencoded",
        origin: u.origin,
      },
      body: new URLSearchParams(form),
    });
    this.jar.store(u, res);
    return res;
  }

  /** Follows redirects from `res` until one leaves for `stopAt`'s origin+path, or a page. */
  async follow(res: Response, from: URL, stopAt?: (u: URL) => boolean): Promise<Response | URL> {
    let current = from;
    while (res.status >= 300 && res.status < 400) {
      await res.body?.cancel();
      const next = new URL(res.headers.get("location")!, current);
      if (stopAt?.(next)) return next;
      current = next;
      res = await this.get(next);
    }
    return res;
  }

  /**
   * Warden's /authorize, its login page, and the "Sign in with …" button:
   * answers the provider's authorization URL Warden redirected to.
   */
  async startAtWarden(authorizeUrl: string): Promise<URL> {
    const a = await this.get(authorizeUrl);
    if (a.status !== 302) throw new Error(`authorize answered ${a.status}: ${await a.text()}`);
    await a.body?.cancel();
    const loginUrl = new URL(a.headers.get("location")!, authorizeUrl);
    const login = await this.get(loginUrl);
    const html = await login.text();
    this.lastHtml = html;
    if (!html.includes(`action="/login/oidc"`)) throw new Error(`no sign-in button: ${html}`);
    this.request = field(html, "request");
    const go = await this.post(new URL("/login/oidc", loginUrl), {
      request: this.request,
      csrf: field(html, "csrf"),
    });
    if (go.status !== 303) throw new Error(`/login/oidc answered ${go.status}: ${await go.text()}`);
    return new URL(go.headers.get("location")!);
  }

  /**
   * The provider's side: its authorization endpoint, its own password form,
   * and back: answers the callback URL it redirects to (not yet visited).
   */
  async signInAtProvider(
    providerUrl: URL,
    person: { login: string; password: string },
    decision: "allow" | "deny" = "allow",
    callbackPrefix = "",
  ): Promise<URL> {
    const isCallback = (u: URL) => callbackPrefix !== "" && u.href.startsWith(callbackPrefix);
    const page = await this.follow(await this.get(providerUrl), providerUrl, isCallback);
    if (page instanceof URL) return page;
    const html = await page.text();
    const action = /action="([^"]+)"/.exec(html)?.[1];
    if (!action) throw new Error(`no login form at the provider: ${html.slice(0, 500)}`);
    const formUrl = new URL(action, providerUrl);
    const back = await this.follow(
      await this.post(formUrl, { ...person, decision }),
      formUrl,
      isCallback,
    );
    if (!(back instanceof URL)) {
      throw new Error(`the provider did not send us back: ${back.status} ${await back.text()}`);
    }
    return back;
  }

  /** Warden's callback and, when it succeeds, its consent page: answers the last response. */
  async callback(url: URL): Promise<Response> {
    return await this.get(url);
  }

  /** From the callback's redirect: Warden's consent page, allowed. Answers the client's redirect. */
  async consent(callbackAnswer: Response, base: string): Promise<{ location: URL; html: string }> {
    if (callbackAnswer.status !== 303) {
      throw new Error(`callback answered ${callbackAnswer.status}: ${await callbackAnswer.text()}`);
    }
    await callbackAnswer.body?.cancel();
    const consentUrl = new URL(callbackAnswer.headers.get("location")!, base);
    const page = await this.get(consentUrl);
    const html = await page.text();
    if (page.status !== 200) throw new Error(`consent page ${page.status}: ${html}`);
    const done = await this.post(new URL("/consent", base), {
      request: field(html, "request"),
      csrf: field(html, "csrf"),
      decision: "allow",
    });
    await done.body?.cancel();
    if (done.status !== 302) throw new Error(`consent answered ${done.status}`);
    return { location: new URL(done.headers.get("location")!), html };
  }
}

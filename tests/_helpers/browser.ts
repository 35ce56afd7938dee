/**
 * Debian's Chromium driven by playwright-core, for the dashboard's
 * end-to-end tests. Headless, with a fresh profile in a temp dir and no
 * background traffic of its own (no component updates, sync or field
 * trials), so every request it makes is one the page made.
 */
import { type BrowserContext, chromium } from "playwright-core";

/** The browser the tests drive: Debian's package (`.ci/run` installs it). */
export const CHROMIUM = Deno.env.get("WARDEN_CHROMIUM") ?? "/usr/bin/chromium";

/** Why the browser tests cannot run here, or undefined when they can. */
export function chromiumMissing(): string | undefined {
  try {
    Deno.statSync(CHROMIUM);
    return undefined;
  } catch {
    return `${CHROMIUM} is absent (Debian package chromium; .ci/run installs it)`;
  }
}

export interface Browser {
  readonly context: BrowserContext;
  close(): Promise<void>;
}

/**
 * Launches headless Chromium with a fresh `--user-data-dir` and a 1280x800
 * viewport; `javaScriptEnabled: false` shows a page works without scripts.
 */
export async function launchChromium(
  options: { javaScriptEnabled?: boolean } = {},
): Promise<Browser> {
  const profile = await Deno.makeTempDir({ prefix: "warden-chromium-" });
  // launchPersistentContext is how playwright passes --user-data-dir: a new, empty profile.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 800 },
    javaScriptEnabled: options.javaScriptEnabled ?? true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    timeout: 20_000,
  });
  return {
    context,
    async close() {
      await context.close();
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    },
  };
}

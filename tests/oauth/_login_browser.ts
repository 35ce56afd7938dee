/**
 * A headless "browser" for clients that open one (mcp-remote): invoked with
 * the authorization URL, it logs in and consents over HTTP, then delivers the
 * redirect to the client's loopback callback. Credentials come from the
 * environment the test set.
 */
import { browse } from "./_browser.ts";

const url = Deno.args[0];
const { location } = await browse(url, {
  username: Deno.env.get("WARDEN_TEST_USER") ?? "",
  password: Deno.env.get("WARDEN_TEST_PASSWORD") ?? "",
});
const res = await fetch(location);
await res.body?.cancel();
await Deno.writeTextFile(Deno.env.get("WARDEN_TEST_BROWSER_LOG") ?? "/dev/null", `${url}\n`, {
  append: true,
});

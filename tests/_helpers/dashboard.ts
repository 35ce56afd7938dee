/**
 * Dashboard fixtures: a Warden with a held tool, one operator key, and three
 * users (an operator, an auditor and one with neither role), plus a cookie
 * login over plain HTTP for the tests that do not drive a browser.
 */
import { addUser } from "../../src/identity/mod.ts";
import { generateOperatorKey } from "../../src/governance/mod.ts";
import { startServer, type TestServer, UNTHROTTLED_POLICY } from "./server.ts";
import { createCounterTool } from "./tools.ts";

export const PASSWORD = "correct horse battery";

export interface DashboardFixture {
  readonly server: TestServer;
  readonly dir: string;
  readonly kvPath: string;
  /** operator.key written by generateOperatorKey, as `warden keygen` writes it. */
  readonly keyPath: string;
  readonly keyFile: string;
  readonly held: ReturnType<typeof createCounterTool>;
  /** A second Warden on the same KV (another instance of the same deployment). */
  startPeer(): Promise<TestServer>;
  close(): Promise<void>;
}

/** Starts the fixture server on a KV file in a fresh temp dir. */
export async function startDashboardServer(
  options: { args?: string[]; env?: Record<string, string> } = {},
): Promise<DashboardFixture> {
  const dir = await Deno.makeTempDir({ prefix: "warden-dashboard-" });
  const kvPath = `${dir}/warden.db`;
  const kv = await Deno.openKv(kvPath);
  const { keyFile, publicKey } = await generateOperatorKey("alice");
  const keyPath = `${dir}/operator.key`;
  await Deno.writeTextFile(keyPath, keyFile, { mode: 0o600 });
  await addUser(kv, { name: "olive", password: PASSWORD, roles: ["operator"] });
  await addUser(kv, { name: "audrey", password: PASSWORD, roles: ["auditor"] });
  await addUser(kv, { name: "nemo", password: PASSWORD, roles: ["user"] });
  const held = createCounterTool("test_held");
  const policy = {
    ...UNTHROTTLED_POLICY,
    tools: { test_held: { hold: true } },
    operators: [{ name: "alice", public_key: publicKey }],
  };
  const server = await startServer({
    kv,
    args: options.args,
    env: options.env,
    extraTools: [held.tool],
    policy,
  });
  const peers: TestServer[] = [];
  return {
    server,
    dir,
    kvPath,
    keyPath,
    keyFile,
    held,
    async startPeer() {
      const peer = await startServer({ kv, args: options.args, env: options.env, policy });
      peers.push(peer);
      return peer;
    },
    async close() {
      for (const peer of peers) await peer.close();
      await server.close();
      kv.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** The `name=value` pairs of a response's Set-Cookie headers. */
export function setCookies(res: Response): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of res.headers.getSetCookie()) {
    const [pair] = line.split(";");
    const eq = pair.indexOf("=");
    out.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
  }
  return out;
}

/** The value of hidden input `csrf` in a page. */
export function csrfIn(page: string): string {
  const m = /name="csrf" value="([^"]+)"/.exec(page);
  if (!m) throw new Error("no CSRF token in the page");
  return m[1];
}

/** Logs in over HTTP as the login form would; returns the Cookie header of the session. */
export async function loginCookie(
  base: string,
  user: string,
  password = PASSWORD,
): Promise<string> {
  const form = await fetch(`${base}/login?return_to=%2Fdashboard`);
  const loginSecret = setCookies(form).get("warden_login")!;
  const csrf = csrfIn(await form.text());
  const res = await fetch(`${base}/login?return_to=%2Fdashboard`, {
    method: "POST",
    redirect: "manual",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      cookie: `warden_login=${loginSecret}`,
    },
    body: new URLSearchParams({ csrf, username: user, password }),
  });
  await res.body?.cancel();
  if (res.status !== 303) throw new Error(`login as ${user} answered ${res.status}`);
  return `warden_dashboard=${setCookies(res).get("warden_dashboard")}`;
}

/** Copies every KV record of `src` into a new KV file (a logical copy of a live store). */
export async function copyKv(src: Deno.Kv, destPath: string): Promise<Deno.Kv> {
  const dest = await Deno.openKv(destPath);
  let op = dest.atomic();
  let n = 0;
  for await (const e of src.list({ prefix: [] })) {
    op.set(e.key, e.value);
    if (++n % 500 === 0) {
      await op.commit();
      op = dest.atomic();
    }
  }
  await op.commit();
  return dest;
}

/**
 * Changes one character of a stored vault entry's JSON in place (the entry
 * record is leaf hash ‖ node count ‖ nodes ‖ canonical JSON), as someone with
 * write access to the KV file could; `find` must occur in the JSON.
 */
export async function tamperEntry(kv: Deno.Kv, index: number, find: string, replace: string) {
  if (find.length !== replace.length) throw new Error("keep the length");
  const record = (await kv.get<Uint8Array>(["vault", "e", index])).value!.slice();
  const json = 33 + record[32] * 32;
  const text = new TextDecoder().decode(record.subarray(json));
  const at = text.indexOf(find);
  if (at < 0) throw new Error(`${find} is not in entry ${index}`);
  record.set(new TextEncoder().encode(replace), json + at);
  await kv.set(["vault", "e", index], record);
}

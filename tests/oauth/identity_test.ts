// deno-lint-ignore-file no-explicit-any -- vault entries are probed field by field
/**
 * OAuth on the identity store: people log in with the users `warden user add`
 * created (no stand-in password check), the access token resolves to that
 * user with the roles of their record, F11 applies them, and the vault names
 * the user and the OAuth client.
 */
import assert from "node:assert/strict";
import { addUser } from "../../src/identity/mod.ts";
import { startServer } from "../_helpers/server.ts";
import { authorizeUrl, redeemCode, registerPublicClient } from "../_helpers/oauth_flow.ts";
import { browse } from "./_browser.ts";

Deno.test("oauth: a user from the identity store logs in; the token carries their roles to F11 and the vault", async () => {
  const kv = await Deno.openKv(":memory:");
  await addUser(kv, { name: "carol", password: "carol's long password", roles: ["ops"] });
  await addUser(kv, { name: "dan", password: "dan's long password", roles: ["dev"] });
  const s = await startServer({
    kv,
    args: ["--auth", "oauth"],
    policy: { tools: { calculate: { roles: ["ops"] } } },
  });
  try {
    const reg = await registerPublicClient(s, { name: "Identity Test" });
    const tokenFor = async (username: string, password: string) => {
      const { url: u, verifier } = await authorizeUrl(s, reg.client_id, { state: "x" });
      const { location } = await browse(u.toString(), { username, password });
      const res = await redeemCode(s, {
        code: location.searchParams.get("code")!,
        verifier,
        clientId: reg.client_id,
        resource: `${s.url}/mcp`,
      });
      assert.equal(res.status, 200);
      return (await res.json()).access_token as string;
    };
    // A wrong password does not get past the login page.
    await assert.rejects(() => tokenFor("carol", "not carol's password"), /login answered/);

    const invoke = async (token: string) => {
      const res = await fetch(`${s.url}/invoke`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({ tool: "calculate", arguments: { expression: "6*7" } }),
      });
      return { status: res.status, body: await res.json() as any };
    };
    const carol = await invoke(await tokenFor("carol", "carol's long password"));
    assert.equal(carol.status, 200, JSON.stringify(carol.body));
    const entry = JSON.parse(
      new TextDecoder().decode(
        (await s.app.ledger.entry(carol.body._constitutional.vault.index))!
          .bytes,
      ),
    );
    assert.deepEqual(
      [entry.principal, entry.principal_kind, entry.client_id],
      ["carol", "oauth", reg.client_id],
    );
    const dan = await invoke(await tokenFor("dan", "dan's long password"));
    assert.equal(dan.status, 403, "dan's dev role does not grant calculate");
    assert.equal(dan.body.policy_verdict, "VOID");
  } finally {
    await s.close();
    kv.close();
  }
});

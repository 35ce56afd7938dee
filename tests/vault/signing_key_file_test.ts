// The checkpoint signing key lives in its own file (mode 0600) beside the KV,
// never in the KV it signs; a key an older Warden kept in KV is moved out.
import assert from "node:assert/strict";
import { spawnServer } from "../_helpers/server.ts";
import { loadVaultIdentity } from "../../src/vault/mod.ts";

Deno.test("serve: the default signing key is generated into <kv>.signing-key (0600), not the KV", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const kvPath = `${dir}/w.db`;
    let server = await spawnServer(["--kv", kvPath]);
    const vkey = (await (await fetch(`${server.url}/vault/key`)).text()).trim();
    await server.stop();
    assert.ok(
      server.logs.some((l) => l.includes("signing key generated") && l.includes(".signing-key")),
    );
    const info = await Deno.stat(`${kvPath}.signing-key`);
    assert.equal(info.mode! & 0o777, 0o600);
    const kv = await Deno.openKv(kvPath);
    const inKv = await kv.get(["vault", "signing_key"]);
    let anyKey = false;
    for await (const e of kv.list({ prefix: [] })) {
      if (typeof e.value === "string" && e.value.startsWith("PRIVATE+KEY")) anyKey = true;
    }
    kv.close();
    assert.equal(inKv.value, null);
    assert.equal(anyKey, false, "no private key in the KV");
    // A restart signs with the same key.
    server = await spawnServer(["--kv", kvPath]);
    const again = (await (await fetch(`${server.url}/vault/key`)).text()).trim();
    await server.stop();
    assert.equal(again, vkey);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serve: a signing key an older Warden kept in KV is moved into the key file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const kvPath = `${dir}/old.db`;
    const kv = await Deno.openKv(kvPath);
    const identity = await loadVaultIdentity(kv, { defaultOrigin: "warden/old" });
    kv.close();
    const server = await spawnServer(["--kv", kvPath]);
    const vkey = (await (await fetch(`${server.url}/vault/key`)).text()).trim();
    await server.stop();
    assert.equal(vkey, identity.signer.vkey);
    assert.ok(server.logs.some((l) => l.includes("moved from KV")));
    const reopened = await Deno.openKv(kvPath);
    let anyKey = false;
    for await (const e of reopened.list({ prefix: [] })) {
      if (typeof e.value === "string" && e.value.startsWith("PRIVATE+KEY")) anyKey = true;
    }
    reopened.close();
    assert.equal(anyKey, false);
    assert.match(await Deno.readTextFile(`${kvPath}.signing-key`), /^PRIVATE\+KEY/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

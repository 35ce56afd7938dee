import assert from "node:assert/strict";
import {
  canonicalPolicy,
  DEFAULT_POLICY,
  parsePolicy,
  PolicyError,
  policyHash,
  rolesOf,
} from "../../src/governance/mod.ts";
import { sha256, toHex } from "../../src/lib/mod.ts";

const KEY = btoa(String.fromCharCode(...new Uint8Array(32).fill(7)));

function rejects(json: unknown, message: string): void {
  assert.throws(() => parsePolicy(json), (error: unknown) => {
    assert.ok(error instanceof PolicyError);
    assert.equal(error.name, "PolicyError");
    assert.equal(error.message, message);
    return true;
  });
}

Deno.test("parsePolicy() applies every default to an empty document", () => {
  const policy = parsePolicy({});
  assert.equal(policy.version, 1);
  assert.equal(policy.floors.F1.mode, "hard");
  assert.deepEqual(policy.floors.F7, { mode: "soft", threshold: 0.34 });
  assert.deepEqual(policy.floors.F8, { mode: "soft" });
  assert.deepEqual(policy.floors.F2, { mode: "hard", threshold: 1 });
  assert.deepEqual(policy.default_roles, ["user"]);
  assert.deepEqual(policy.approval, {
    expiry_seconds: 900,
    required_signers: 1,
    max_open_per_principal: 20,
  });
  assert.deepEqual(policy.kill_switch, { tools: [], principals: [], upstreams: [] });
  assert.deepEqual(policy.rate_limits, {
    per_principal_per_minute: 600,
    per_tool_per_minute: 0,
    max_concurrent_per_principal: 32,
    per_upstream_per_minute: 0,
    per_ip_per_minute: 120,
    exempt_loopback: true,
    principals: {},
    tools: {},
    upstreams: {},
  });
  assert.deepEqual(policy.budgets, {
    calls_per_day: 0,
    calls_per_month: 0,
    cost_per_day: 0,
    cost_per_month: 0,
    tokens_per_day: 0,
    tokens_per_month: 0,
  });
  assert.deepEqual(policy.prices, {});
  assert.deepEqual(policy.pii.forbid, ["private_key"]);
  assert.equal(policy.limits.max_argument_bytes, 262144);
  assert.equal(policy.tri_witness.required, 2);
  assert.equal(policy.store_bodies, false);
  assert.deepEqual(policy.fetch, { allow_hosts: [], max_bytes: 1048576, timeout_ms: 10000 });
  // Unset roots mean warden-files/ beside the KV file, never the working directory.
  assert.deepEqual(policy.files, {
    allow_hardlinks: false,
    include_hidden: false,
    max_file_bytes: 131072,
    max_versions: 20,
    max_files: 10000,
    lease_seconds: 300,
    max_lease_seconds: 3600,
  });
  assert.deepEqual(policy.memory, {
    max_value_bytes: 32768,
    default_ttl_seconds: 3600,
    max_ttl_seconds: 2592000,
    max_keys_per_principal: 1000,
  });
  assert.deepEqual(policy.shell, {
    enabled: false,
    timeout_ms: 10000,
    max_output_bytes: 65536,
    memory_mb: 512,
    work_dir_mb: 64,
    max_processes: 64,
    mounts: [],
  });
  assert.equal(policy.sampling.prefer, true);
  assert.deepEqual(policy, DEFAULT_POLICY);
});

Deno.test("parsePolicy() keeps given values and fills the rest of a section", () => {
  const policy = parsePolicy({
    floors: { F6: { mode: "soft" }, F7: { threshold: 0.5 } },
    tools: { delete_file: { hold: true, roles: ["admin"], reversible: false } },
    principals: { bob: { roles: ["admin"] } },
    operators: [{ name: "ops@example", public_key: KEY }],
    approval: { required_signers: 1 },
    search: { provider_url: "https://search.example/api" },
  });
  assert.deepEqual(policy.floors.F6, { mode: "soft", threshold: 1 });
  assert.deepEqual(policy.floors.F7, { mode: "soft", threshold: 0.5 });
  assert.deepEqual(policy.tools.delete_file, { hold: true, roles: ["admin"], reversible: false });
  assert.equal(policy.approval.expiry_seconds, 900);
  assert.deepEqual(rolesOf(policy, "bob"), ["admin"]);
  assert.deepEqual(rolesOf(policy, "carol"), ["user"]);
  assert.deepEqual(rolesOf(policy, "constructor"), ["user"]);
});

Deno.test("parsePolicy() names the field of a bad floor mode", () => {
  rejects(
    { floors: { F6: { mode: "strict" } } },
    'Invalid policy: floors.F6.mode: expected "hard" | "soft" | "off"',
  );
});

Deno.test("parsePolicy() refuses unknown keys at any depth", () => {
  rejects({ colour: "red" }, 'Invalid policy: unknown key "colour"');
  rejects({ floors: { F14: { mode: "hard" } } }, 'Invalid policy: floors: unknown key "F14"');
  rejects(
    { tools: { x: { deny: true, allow: true } } },
    'Invalid policy: tools.x: unknown key "allow"',
  );
});

Deno.test("parsePolicy() accepts a threshold only on floors that compare one", () => {
  rejects(
    { floors: { F1: { threshold: 0.5 } } },
    'Invalid policy: floors.F1: unknown key "threshold"',
  );
  rejects(
    { floors: { F7: { threshold: 0.3333 } } },
    "Invalid policy: floors.F7.threshold: expected a number from 0 to 1 with at most 3 decimals",
  );
  rejects(
    { floors: { F2: { threshold: 340 } } },
    "Invalid policy: floors.F2.threshold: expected a number from 0 to 1 with at most 3 decimals",
  );
});

Deno.test("parsePolicy() checks integer ranges", () => {
  rejects(
    { approval: { expiry_seconds: 5 } },
    "Invalid policy: approval.expiry_seconds: expected an integer from 10 to 86400",
  );
  rejects(
    { approval: { required_signers: 0 } },
    "Invalid policy: approval.required_signers: expected an integer ≥ 1",
  );
  rejects(
    { rate_limits: { per_principal_per_minute: 1.5 } },
    "Invalid policy: rate_limits.per_principal_per_minute: expected an integer from 0 to 10000",
  );
  rejects(
    { rate_limits: { principals: { alice: { per_minute: 20_000 } } } },
    "Invalid policy: rate_limits.principals.alice.per_minute: expected an integer from 0 to 10000",
  );
  rejects(
    { budgets: { cost_per_day: 0.5 } },
    "Invalid policy: budgets.cost_per_day: expected an integer ≥ 0",
  );
  rejects(
    { prices: { calculate: { per_cal: 1 } } },
    'Invalid policy: prices.calculate: unknown key "per_cal"',
  );
  rejects(
    { tri_witness: { required: 4 } },
    "Invalid policy: tri_witness.required: expected an integer from 1 to 3",
  );
});

Deno.test("parsePolicy() validates operators: name, key length, duplicates, signer count", () => {
  rejects(
    { operators: [{ name: "ops team", public_key: KEY }] },
    "Invalid policy: operators[0].name: expected 1 to 64 characters from A-Z a-z 0-9 _ . @ -",
  );
  rejects(
    { operators: [{ name: "ops", public_key: btoa("short") }] },
    "Invalid policy: operators[0].public_key: expected a raw 32-byte Ed25519 public key, got 5 bytes",
  );
  rejects(
    { operators: [{ name: "ops", public_key: "not base64!" }] },
    "Invalid policy: operators[0].public_key: expected standard padded base64",
  );
  rejects(
    { operators: [{ name: "ops", public_key: KEY }, { name: "ops", public_key: KEY }] },
    'Invalid policy: operators[1].name: duplicate operator name "ops"',
  );
  rejects(
    { operators: [{ name: "ops", public_key: KEY }], approval: { required_signers: 2 } },
    "Invalid policy: approval.required_signers: 2 signers required but only 1 operators configured",
  );
});

Deno.test("parsePolicy() checks types, enums and URLs", () => {
  rejects("{}", "Invalid policy: expected a JSON object");
  rejects(null, "Invalid policy: expected a JSON object");
  rejects({ version: 2 }, "Invalid policy: version: expected 1");
  rejects(
    { tools: { x: { deny: "yes" } } },
    "Invalid policy: tools.x.deny: expected true or false",
  );
  rejects(
    { tools: { "": {} } },
    'Invalid policy: tools[""]: invalid key: expected a non-empty string',
  );
  rejects(
    { pii: { forbid: ["ssn"] } },
    'Invalid policy: pii.forbid[0]: expected one of "email" | "phone" | "card" | "iban" | "api_key" | "private_key"',
  );
  rejects(
    { search: { provider_url: "ftp://search.example" } },
    "Invalid policy: search.provider_url: expected an http(s) URL",
  );
  rejects(
    { kill_switch: { tools: "x" } },
    "Invalid policy: kill_switch.tools: expected an array of strings",
  );
  rejects({ floors: [] }, "Invalid policy: floors: expected an object");
});

Deno.test("parsePolicy() reports every problem, each with its field", () => {
  assert.throws(
    () => parsePolicy({ floors: { F1: { mode: "x" } }, store_bodies: "no", extra: 1 }),
    (error: unknown) => {
      assert.ok(error instanceof PolicyError);
      assert.deepEqual(error.issues.map((i) => i.path).sort(), [
        "",
        "floors.F1.mode",
        "store_bodies",
      ]);
      return true;
    },
  );
});

Deno.test("DEFAULT_POLICY round-trips through JSON and is frozen", () => {
  const again = parsePolicy(JSON.parse(JSON.stringify(DEFAULT_POLICY)));
  assert.deepEqual(again, DEFAULT_POLICY);
  assert.equal(policyHash(again), policyHash(DEFAULT_POLICY));
  assert.ok(Object.isFrozen(DEFAULT_POLICY.floors.F1));
  assert.throws(() => {
    (DEFAULT_POLICY.floors.F1 as { mode: string }).mode = "off";
  }, TypeError);
});

Deno.test("policyHash() is stable across key order and changes with content", () => {
  const a = parsePolicy({ tools: { a: { deny: true }, b: { hold: true } }, store_bodies: true });
  const b = parsePolicy({ store_bodies: true, tools: { b: { hold: true }, a: { deny: true } } });
  assert.equal(policyHash(a), policyHash(b));
  assert.match(policyHash(a), /^[0-9a-f]{64}$/);
  assert.notEqual(policyHash(a), policyHash(DEFAULT_POLICY));
  const c = parsePolicy({ floors: { F7: { threshold: 0.341 } } });
  assert.notEqual(policyHash(c), policyHash(DEFAULT_POLICY));
});

Deno.test("policyHash() hashes canonical JSON with thresholds in per-mille", () => {
  const text = canonicalPolicy(DEFAULT_POLICY);
  assert.ok(text.includes('"F7":{"mode":"soft","threshold":340}'));
  assert.ok(text.includes('"F2":{"mode":"hard","threshold":1000}'));
  assert.equal(policyHash(DEFAULT_POLICY), toHex(sha256(new TextEncoder().encode(text))));
  // The policy itself keeps fractions.
  assert.equal(DEFAULT_POLICY.floors.F7.threshold, 0.34);
});

import assert from "node:assert/strict";
import {
  empathy,
  evaluatePost,
  evaluatePre,
  findPii,
  ibanValid,
  luhnValid,
  type PiiKind,
  redact,
  redacted,
  redactText,
} from "../../src/governance/mod.ts";
import {
  assertOff,
  floorOf,
  makeCall,
  makeRates,
  makeResult,
  makeTool,
  policyWith,
  withMode,
} from "./_fixtures.ts";

// One sample of each kind. Card and IBAN are the published test values
// (Visa test card; the ISO 13616 example IBAN); keys are made-up strings of
// the right shape.
const SECRETS: Record<PiiKind, string[]> = {
  email: ["bob.smith+tag@example.co.uk"],
  phone: ["+44 20 7946 0958", "+14155552671", "(415) 555-2671", "415.555.2671", "07700 900123"],
  card: ["4111 1111 1111 1111", "4111-1111-1111-1111", "5500005555555559", "378282246310005"],
  iban: ["GB82 WEST 1234 5698 7654 32", "GB82WEST12345698765432", "DE89370400440532013000"],
  api_key: [
    "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t",
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "AKIAIOSFODNN7EXAMPLE",
    "ghp_" + "A1b2C3d4".repeat(5),
    "xoxb-123456789012-abcdefABCDEF",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
  ],
  private_key: [
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq\n-----END RSA PRIVATE KEY-----",
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA", // truncated: still a secret
  ],
};

function f6(args: unknown, json?: unknown) {
  return empathy({ call: makeCall({ arguments: args }), policy: policyWith(json) });
}

Deno.test("F6 empathy flags a Luhn-valid card number", () => {
  const result = f6({ payment: "card 4111 1111 1111 1111 exp 12/29" });
  assert.equal(result.pass, false);
  assert.equal(result.action, "partial");
  assert.equal(result.score, 0.75);
  assert.equal(result.reason, "found card ×1; the vault keeps a redacted record");
  assert.deepEqual(result.details, {
    findings: [{ kind: "card", path: "arguments.payment", count: 1 }],
  });
});

Deno.test("F6 empathy leaves a Luhn-invalid 16-digit number alone", () => {
  assert.equal(luhnValid("4111 1111 1111 1112"), false);
  const result = f6({ order: "4111 1111 1111 1112", ref: "4111111111111112" });
  assert.equal(result.pass, true);
  assert.equal(result.score, 1);
  assert.equal(result.reason, "no PII or secrets found");
});

Deno.test("F6 empathy flags a valid IBAN but not a mutated one", () => {
  assert.equal(ibanValid("GB82 WEST 1234 5698 7654 32"), true);
  assert.equal(ibanValid("GB82 WEST 1234 5698 7654 33"), false);
  assert.deepEqual(f6({ to: "GB82 WEST 1234 5698 7654 32" }).details, {
    findings: [{ kind: "iban", path: "arguments.to", count: 1 }],
  });
  assert.equal(f6({ to: "GB82 WEST 1234 5698 7654 33" }).pass, true);
  assert.equal(f6({ to: "GB28 WEST 1234 5698 7654 32" }).pass, true);
});

Deno.test("F6 empathy does not take dates, versions or plain numbers for phones", () => {
  for (
    const text of [
      "12345",
      "12345678",
      "2024-01-15",
      "2024-01-15T10:30:00Z",
      "01.02.2024 14:00",
      "v10.0.19041.1234",
      "192.168.100.200",
      "+12345",
      "amount 1,234,567.89",
      "uuid 550e8400-e29b-41d4-a716-446655440000",
      "ts 1700000000000",
    ]
  ) {
    assert.equal(f6({ text }).pass, true, text);
  }
});

Deno.test("F6 empathy recognises every kind in several layouts", () => {
  for (const [kind, samples] of Object.entries(SECRETS)) {
    for (const sample of samples) {
      const findings = findPii({ note: `see ${sample} here` }, "arguments");
      assert.deepEqual(findings, [{ kind, path: "arguments.note", count: 1 }], sample);
    }
  }
});

Deno.test("F6 empathy voids a kind the policy forbids", () => {
  const result = f6({ key: SECRETS.private_key[0], mail: "a@example.com" });
  assert.equal(result.action, "void");
  assert.equal(result.reason, "found email ×1, private_key ×1; policy forbids private_key");
  const cards = f6({ c: "4111111111111111" }, { pii: { forbid: ["card"] } });
  assert.equal(cards.action, "void");
  const none = f6({ key: SECRETS.private_key[0] }, { pii: { forbid: [] } });
  assert.equal(none.action, "partial");
});

Deno.test("F6 empathy scores 1 − 0.25 per finding and scans keys, arrays and numbers", () => {
  const result = f6({
    "bob@example.com": ["+14155552671", { deep: "x a@b.io y c@d.io" }],
    n: 4111111111111111,
  });
  assert.equal(result.score, 0);
  assert.deepEqual(result.details?.findings, [
    { kind: "email", path: 'arguments["[REDACTED:email]"]', count: 1 },
    { kind: "phone", path: 'arguments["[REDACTED:email]"][0]', count: 1 },
    { kind: "email", path: 'arguments["[REDACTED:email]"][1].deep', count: 2 },
    { kind: "card", path: "arguments.n", count: 1 },
  ]);
  assert.ok(!JSON.stringify(result).includes("bob@example.com"));
});

Deno.test("F6 empathy threshold lets a few findings pass", () => {
  const result = f6({ mail: "a@example.com" }, { floors: { F6: { threshold: 0.75 } } });
  assert.equal(result.pass, true);
  assert.equal(result.score, 0.75);
  assert.equal(result.reason, "found email ×1, within the threshold");
});

Deno.test("F6 empathy in soft mode turns a forbidden kind into a warning; off skips it", () => {
  const args = { key: SECRETS.private_key[0] };
  const soft = empathy({ call: makeCall({ arguments: args }), policy: withMode("F6", "soft") });
  assert.equal(soft.pass, false);
  assert.equal(soft.action, "partial");
  assertOff(empathy({ call: makeCall({ arguments: args }), policy: withMode("F6", "off") }));
});

Deno.test("F6 empathy combines argument and result findings after execution", () => {
  const input = {
    call: makeCall({ arguments: { to: "a@example.com" } }),
    tool: makeTool(),
    policy: policyWith(),
  };
  const pre = evaluatePre({ ...input, rates: makeRates() });
  const post = evaluatePost(
    { ...input, result: makeResult({ text: "key AKIAIOSFODNN7EXAMPLE", data: undefined }) },
    pre,
  );
  const f6 = floorOf(post, "F6");
  assert.equal(f6.score, 0.5);
  assert.deepEqual(f6.details?.findings, [
    { kind: "email", path: "arguments.to", count: 1 },
    { kind: "api_key", path: "result.text", count: 1 },
  ]);
  assert.equal(f6.action, "partial");
});

Deno.test("redact() never leaves a secret in its output, for every kind", () => {
  for (const [kind, samples] of Object.entries(SECRETS)) {
    for (const sample of samples) {
      const input = { text: `before ${sample} after`, list: [sample], [sample]: sample };
      const { value, findings } = redact(input);
      const json = JSON.stringify(value);
      assert.ok(!json.includes(sample), `${kind} leaked: ${json}`);
      assert.ok(!JSON.stringify(findings).includes(sample), `${kind} leaked into findings`);
      // The distinctive core of the secret (here its digits or body) is gone too.
      assert.ok(json.includes(`[REDACTED:${kind}]`), json);
      assert.equal(findings.reduce((n, f) => n + f.count, 0), 4, `${kind}: ${sample}`);
    }
  }
});

Deno.test("redact() copies deeply without touching its input", () => {
  const input = { a: { b: ["x", "mail a@example.com"] }, n: 7, t: true, z: null };
  const before = structuredClone(input);
  const { value } = redact(input);
  assert.deepEqual(input, before);
  assert.deepEqual(value, { a: { b: ["x", "mail [REDACTED:email]"] }, n: 7, t: true, z: null });
  assert.deepEqual(redact("plain"), { value: "plain", findings: [] });
});

Deno.test("redact() keeps both values when two keys redact alike", () => {
  const { value } = redact({ "a@example.com": 1, "b@example.com": 2 });
  assert.deepEqual(value, { "[REDACTED:email]": 1, "[REDACTED:email] (2)": 2 });
});

Deno.test("redactText() keeps the word Bearer and redacts the token", () => {
  assert.equal(
    redactText("Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345").text,
    "Authorization: Bearer [REDACTED:api_key]",
  );
  assert.equal(redactText('api_key = "Zx9Yw8Vu7Ts6Rq5P"').text, 'api_key = "[REDACTED:api_key]"');
});

Deno.test("F6 empathy does not take a day-month-year date and hour for a phone", () => {
  for (const text of ["01.02.2024 14:00", "01.02.2024 14", "05-06-2023 1200", "31/12/2024 23 59"]) {
    assert.equal(f6({ text }).pass, true, text);
  }
  assert.equal(f6({ text: "01 23 45 67 89" }).pass, false);
});

Deno.test("F6 recognises Warden's own keys, password/secret assignments, AWS secrets, prefixed keys, dotted cards and obfuscated emails", () => {
  const cases: [string, string][] = [
    [
      "private_key",
      "key: PRIVATE+KEY+warden.example/log+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
    ],
    [
      "private_key",
      '{"name":"ops","seed":"q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=","public_key":"x"}',
    ],
    ["api_key", "password=hunter2"],
    ["api_key", "db secret: Tr0ub4dor&3 ok"],
    ["api_key", "DB_PASSWORD='correct-horse'"],
    ["api_key", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"],
    ["api_key", "AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"],
    ["api_key", "token_sk-abcdefghijklmnopqrstuvwxyz012345"],
    ["api_key", "--key=-ghp_abcdefghijklmnopqrstuvwxyz0123456789"],
    ["api_key", "MY_xoxb-1234567890-abcdefghij"],
    ["card", "card 4111.1111.1111.1111 exp"],
    ["email", "write to bob [at] example [dot] com"],
    ["email", "bob(at)example.org"],
    ["email", "alice at example dot co dot uk"],
    ["email", "carol@example[.]net"],
  ];
  for (const [kind, text] of cases) {
    const found = findPii(text, "$");
    assert.ok(found.some((f) => f.kind === kind), `${kind} in ${text}: ${JSON.stringify(found)}`);
    const red = redactText(text).text;
    for (
      const secret of [
        "hunter2",
        "Tr0ub4dor",
        "horse",
        "wJalrXUtn",
        "abcdefghij",
        "4111",
        "bob",
        "alice",
        "carol",
        "AYEKFALV",
        "q83vEjRW",
      ]
    ) {
      assert.ok(!red.includes(secret), `${secret} left in ${red}`);
    }
  }
  // By key name, whatever the value looks like.
  const { value, findings } = redact({
    password: "hunter2",
    nested: { client_secret: "abcd1234" },
  });
  assert.equal(JSON.stringify(value).includes("hunter2"), false);
  assert.equal(JSON.stringify(value).includes("abcd1234"), false);
  assert.equal(findings.length, 2);
  // Ordinary text stays text.
  for (
    const text of [
      "look at example.com",
      "meet at noon",
      "version 1.2.3.4",
      "password reset link sent",
      "the secret is out",
    ]
  ) {
    assert.deepEqual(findPii(text, "$"), [], text);
  }
});

Deno.test("F6 recognises minted wdn_ tokens and key assignments under a prefixed name, but not UUIDs, digests or dates", () => {
  const minted = "wdn_" + crypto.getRandomValues(new Uint8Array(32)).toBase64({
    alphabet: "base64url",
    omitPadding: true,
  });
  for (
    const text of [
      `Authorization token ${minted}`,
      `WARDEN_TOKEN=${minted}`,
      "OPENAI_API_KEY=Ab3dEf6hIj9kLm2nOp5q",
      "x_secret_key: Ab3dEf6hIj9kLm2nOp5q",
      "-x_auth_token=Ab3dEf6hIj9kLm2nOp5q",
    ]
  ) {
    const found = findPii(text, "$");
    assert.ok(found.some((f) => f.kind === "api_key"), `api_key in ${text}`);
    const red = redactText(text).text;
    assert.ok(!red.includes(minted.slice(4, 20)) && !red.includes("Ab3dEf6h"), red);
  }
  // Identifiers a call carries every day are not secrets: a false positive here changes verdicts.
  for (
    const text of [
      "id 123e4567-e89b-12d3-a456-426614174000",
      crypto.randomUUID(),
      "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      "sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709",
      "git 4c804bd3f1e2a9b8c7d6e5f4a3b2c1d0e9f8a7b6",
      "at 2026-12-02T23:12:50.123Z",
      "on 2026-12-02 and 02/12/2026",
      "a wdn_ prefix alone",
    ]
  ) {
    assert.deepEqual(findPii(text, "$"), [], text);
  }
  // Random ones too: the digit groups of a UUID or a digest once passed for a card number.
  for (let i = 0; i < 5000; i++) {
    const uuid = crypto.randomUUID();
    const hex = Array.from(
      crypto.getRandomValues(new Uint8Array(32)),
      (b) => b.toString(16).padStart(2, "0"),
    ).join("");
    assert.deepEqual(findPii(`${uuid} ${hex}`, "$"), [], `${uuid} ${hex}`);
  }
});

Deno.test("F6 finds a bare AWS secret key by its randomness, and leaves identifiers, paths and digests of that length alone", () => {
  const example = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"; // AWS's documented example
  for (
    const text of [
      example,
      `use ${example} for the backup job`,
      JSON.stringify({ k: example }),
      `"${example}"`,
    ]
  ) {
    const red = redactText(text).text;
    assert.ok(!red.includes("wJalrXUtn"), `left in ${red}`);
    assert.deepEqual(findPii(text, "$").map((f) => f.kind), ["api_key"], text);
  }
  // Keys as AWS makes them (30 random bytes in base64), with nothing naming them: nearly all.
  let found = 0;
  for (let i = 0; i < 2000; i++) {
    const key = crypto.getRandomValues(new Uint8Array(30)).toBase64();
    if (findPii(`restore with ${key} now`, "$").length === 1) found++;
  }
  assert.ok(found >= 1980, `${found} of 2000 random keys found`);
  // Near misses: 40 characters of the same alphabet that are not keys.
  const near = [
    "ThisIsAVeryLongJavaClassNameForTesting12",
    "AbstractSingletonProxyFactoryBean2Config",
    "getUserAccountSettingsByIdAndRegion2Fast",
    "usr/local/lib/python3/site/packages/Foo1",
    "Abcdefghijklmnopqrstuvwxyz0123456789ABCD",
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA1",
    "da39a3ee5e6b4b0d3255bfef95601890afd80709", // sha1 of nothing
    "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709",
    "gezdgnbvgy3tqojqgezdgnbvgy3tqojqgezdgnbv", // base32, one case
    example.slice(1), // 39 characters
    `${example}Q`, // 41: part of a longer token
    crypto.getRandomValues(new Uint8Array(45)).toBase64(), // a longer blob
    `x-${example}`, // inside a base64url token
    `${example}_v2`,
  ];
  for (const text of near) assert.deepEqual(findPii(`value ${text} end`, "$"), [], text);
  // Beside a name that says what it is, mixed case and a digit are enough.
  assert.equal(findPii("aws: ThisIsAVeryLongJavaClassNameForTesting12", "$").length, 1);
});

Deno.test("F6 takes the value of any *_TOKEN, *_SECRET or *_PASSWORD name for a secret, without an auth or access prefix", () => {
  const secret = "Zq8vK2mP9xL4wR7t";
  for (
    const text of [
      `GITHUB_TOKEN=${secret}`,
      `export SLACK_BOT_TOKEN="${secret}"`,
      `NPM_TOKEN: ${secret}`,
      `DB_ADMIN_PASSWORD=${secret}`,
      `stripe-webhook-secret=${secret}`,
      `MY_APP_PASS=${secret}`,
      `SERVICE_CREDENTIALS='${secret}'`,
      `{"githubToken": "${secret}"}`,
      `dbPassword='${secret}'`,
      `?x=1&session_token=${secret}&y=2`,
    ]
  ) {
    const found = findPii(text, "$");
    assert.ok(found.some((f) => f.kind === "api_key"), `api_key in ${text}`);
    assert.ok(!redactText(text).text.includes("Zq8vK2"), redactText(text).text);
  }
  // Object keys named so, whatever the value looks like.
  const { value, findings } = redact({
    GITHUB_TOKEN: "plainletters1",
    bot_token: secret,
    slackToken: secret,
    deployCredentials: secret,
  });
  assert.equal(JSON.stringify(value).includes("plainletters1"), false);
  assert.equal(JSON.stringify(value).includes("Zq8vK2"), false);
  assert.equal(findings.length, 4);
  // Named like tokens, but not secrets: cursors, counts, types, references, code.
  for (
    const text of [
      "next_token=CAEQAhoGCgQIARAB",
      'pageToken: "CAEQAhoGCgQIARAB"',
      "max_tokens=4096",
      "GITHUB_TOKEN=$GITHUB_TOKEN",
      "GITHUB_TOKEN=${GITHUB_TOKEN}",
      "API_TOKEN=<your-token>",
      "token_type=Bearer",
      "staticToken: config.token,",
      "verifyPassword: checkPassword,",
      "governance_token: z.string().min(1)",
      "the token was refreshed",
    ]
  ) {
    assert.deepEqual(findPii(text, "$"), [], text);
  }
  assert.deepEqual(
    redact({
      next_token: "CAEQAhoGCgQIARAB",
      pageToken: "CAEQAhoG",
      token_count: "12345678",
      progressToken: "abc-123-def-456",
      governance_token: "eyJzZXNzaW9uIjoi.c2lnbmF0dXJlMTIz",
    }).findings,
    [],
  );
});

// redact() first finds which detectors could fire anywhere in a value (their cheap conditions over
// all its text at once) and then scans each string with those only. That must never miss what a
// scan of each string on its own finds: compare against redacting every string and key alone.
Deno.test("redact() over a whole value finds exactly what redacting each string alone finds", () => {
  const dirty = [
    "AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "mail bob@example.com now",
    "card 4111 1111 1111 1111",
    "call +44 20 7946 0958",
    "password=hunter2",
    "write to bob [at] example [dot] com",
    "DE89 3704 0044 0532 0130 00",
    "Bearer abcdefghijklmnopqrstuvwxyz0123",
    "token_sk-abcdefghijklmnopqrstuvwxyz012345",
    "(415) 555-2671",
    "x+14155552671",
    " +14155552671",
    "020 7946 0958",
    "(030) 1234567",
    "tel:01 23 45 67 89",
    "4111-1111-1111-1111",
    "backup with wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    `wdn_${"A".repeat(256)}wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY`,
  ];
  const clean = [
    "a87e33c2981d7ad26ca23dfd8277c88b39c7573bb3833a459dd728f84f699c77",
    "2026-12-03T00:39:11.123Z",
    "df353fe4-24dd-4fff-acfc-445bf7403df5",
    "2+3*4 = 14",
    "a1+44207946",
    "7a871a99-e7ed-44db-9d06-374ce1c9fd60",
    "v2.07946 0958",
    "12345678901 2345",
    "plain words",
  ];
  const each = (v: unknown): unknown => {
    if (typeof v === "string") return redactText(v).text;
    if (Array.isArray(v)) return v.map(each);
    if (v && typeof v === "object") {
      return Object.fromEntries(
        Object.entries(v).map(([k, c]) => [redactText(k).text, each(c)]),
      );
    }
    return v;
  };
  // A small deterministic generator: nested objects and arrays mixing clean and dirty text,
  // dirty text also as keys, and long integers that are card numbers.
  let seed = 7;
  const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2147483648) % n;
  const gen = (depth: number): unknown => {
    const r = rand(10);
    if (depth > 3 || r < 4) {
      const pool = rand(4) === 0 ? dirty : clean;
      return rand(12) === 0 ? 4111111111111111 : pool[rand(pool.length)];
    }
    if (r < 7) return Array.from({ length: 1 + rand(4) }, () => gen(depth + 1));
    const o: Record<string, unknown> = {};
    for (let i = 0; i < 1 + rand(4); i++) {
      const key = rand(6) === 0 ? `${dirty[rand(dirty.length)]} #${i}` : `k${i}`;
      o[key] = gen(depth + 1);
    }
    return o;
  };
  let sawDirty = 0;
  for (let i = 0; i < 400; i++) {
    const value = { id: i, body: gen(0) };
    const whole = redact(value).value;
    const expected = JSON.parse(
      JSON.stringify(each(value)).replaceAll("4111111111111111", '"[REDACTED:card]"'),
    );
    assert.deepEqual(whole, expected, JSON.stringify(value));
    if (JSON.stringify(whole) !== JSON.stringify(value)) sawDirty++;
    // findPii reports what redact reports.
    assert.deepEqual(findPii(value, "$"), redact(value, "$", new Set()).findings);
  }
  assert.ok(sawDirty > 50, `the generator produced dirty values (${sawDirty})`);
});

Deno.test("redacted() returns a clean value itself and a dirty one's redacted copy", () => {
  const clean = { result: { content: [{ type: "text", text: "2+3*4 = 14" }], n: 12 } };
  assert.equal(redacted(clean), clean);
  const dirty = { result: { content: [{ type: "text", text: "mail bob@example.com" }] } };
  const out = redacted(dirty) as typeof dirty;
  assert.notEqual(out, dirty);
  assert.equal(out.result.content[0].text, "mail [REDACTED:email]");
  assert.equal(dirty.result.content[0].text, "mail bob@example.com", "the input is not changed");
  // A key that names a secret is not clean even when its value looks like nothing.
  assert.deepEqual(redacted({ password: "hunter22" }), { password: "[REDACTED:api_key]" });
  // A bare AWS secret key is found through the placeholder its key id leaves, deep in a value.
  const chained = {
    a: ["x", { b: "AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" }],
  };
  assert.equal(
    JSON.stringify(redacted(chained)),
    '{"a":["x",{"b":"[REDACTED:api_key] [REDACTED:api_key]"}]}',
  );
});

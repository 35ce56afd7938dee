import assert from "node:assert/strict";
import type { ToolContext } from "../../src/calls/mod.ts";
import {
  createUuidV7Generator,
  generateUuids,
  generateUuidTool,
  validateUuid,
  validateUuidTool,
} from "../../src/tools/uuid.ts";

// Pure handlers use no services; the context carries only what they read.
const ctx = { principal: "test", signal: new AbortController().signal } as unknown as ToolContext;

function filled(byte: number): (bytes: Uint8Array) => void {
  return (bytes) => void bytes.fill(byte);
}

function timestampOf(uuid: string): number {
  return parseInt(uuid.replaceAll("-", "").slice(0, 12), 16);
}

Deno.test("createUuidV7Generator() lays out timestamp, version, variant and random bits", () => {
  const now = () => 0x0123456789ab;
  // All-zero randomness leaves only the fixed fields set.
  assert.equal(
    createUuidV7Generator({ now, fillRandom: filled(0x00) })(),
    "01234567-89ab-7000-8000-000000000000",
  );
  // All-one randomness: the top random bit stays clear for headroom (73 of 74 bits set).
  assert.equal(
    createUuidV7Generator({ now, fillRandom: filled(0xff) })(),
    "01234567-89ab-77ff-bfff-ffffffffffff",
  );
});

Deno.test("createUuidV7Generator() steps the random field within one millisecond", () => {
  const next = createUuidV7Generator({ now: () => 1_000, fillRandom: filled(0x00) });
  assert.equal(next(), "00000000-03e8-7000-8000-000000000000");
  assert.equal(next(), "00000000-03e8-7000-8000-000000000001");
  assert.equal(next(), "00000000-03e8-7000-8000-000000000002");
});

Deno.test("createUuidV7Generator() stays ordered when the clock steps back", () => {
  const times = [5_000, 4_000, 6_000];
  const next = createUuidV7Generator({ now: () => times.shift()!, fillRandom: filled(0x42) });
  const ids = [next(), next(), next()];
  assert.deepEqual(ids.map(timestampOf), [5_000, 5_000, 6_000]);
  assert.deepEqual([...ids].sort(), ids);
  assert.equal(new Set(ids).size, 3);
});

Deno.test("createUuidV7Generator() refuses timestamps outside 48 bits", () => {
  assert.throws(() => createUuidV7Generator({ now: () => 2 ** 48 })(), RangeError);
  assert.throws(() => createUuidV7Generator({ now: () => -1 })(), RangeError);
});

Deno.test("generateUuids() v7 ids sort in generation order and carry the current time", () => {
  const before = Date.now();
  const ids = Array.from({ length: 20 }, () => generateUuids("v7", { count: 100 })).flat();
  const after = Date.now();
  assert.equal(ids.length, 2000);
  for (let i = 1; i < ids.length; i++) assert.ok(ids[i - 1] < ids[i], `${ids[i - 1]} < ${ids[i]}`);
  for (const id of ids) {
    const timestamp = timestampOf(id);
    // A burst may borrow a millisecond ahead; it cannot fall behind.
    assert.ok(timestamp >= before && timestamp <= after + 1, id);
    assert.deepEqual(validateUuid(id), {
      valid: true,
      version: 7,
      variant: "rfc9562",
      normalized: id,
    });
  }
});

Deno.test("generateUuids() v4 ids are distinct, version 4, RFC variant", () => {
  const ids = generateUuids("v4", { count: 100 });
  assert.equal(new Set(ids).size, 100);
  for (const id of ids) assert.equal(validateUuid(id).version, 4);
  assert.equal(generateUuids("v4").length, 1);
});

Deno.test("generateUuids() rejects counts outside 1..100", () => {
  for (const count of [0, 101, 1.5]) {
    assert.throws(() => generateUuids("v4", { count }), RangeError, String(count));
  }
});

Deno.test("validateUuid() reads versions 1 to 8", () => {
  // Test vectors from RFC 9562 Appendices A and B; v2 (DCE security) has none
  // there, so that one is built by hand with version nibble 2.
  const samples: [string, number][] = [
    ["C232AB00-9414-11EC-B3C8-9F6BDECED846", 1],
    ["000003e8-6c4b-21ee-8000-325096b39f47", 2],
    ["5df41881-3aed-3515-88a7-2f4a814cf09e", 3],
    ["919108f7-52d1-4320-9bac-f847db4148a8", 4],
    ["2ed6657d-e927-568b-95e1-2665a8aea6a2", 5],
    ["1EC9414C-232A-6B00-B3C8-9F6BDECED846", 6],
    ["017F22E2-79B0-7CC3-98C4-DC0C0C07398F", 7],
    ["2489E9AD-2EE2-8E00-8EC9-32D5F69181C0", 8],
  ];
  for (const [uuid, version] of samples) {
    assert.deepEqual(validateUuid(uuid), {
      valid: true,
      version,
      variant: "rfc9562",
      normalized: uuid.toLowerCase(),
    });
  }
  // The RFC's v7 example encodes 2022-02-22T19:22:22Z.
  assert.equal(
    new Date(timestampOf("017F22E2-79B0-7CC3-98C4-DC0C0C07398F")).toISOString(),
    "2022-02-22T19:22:22.000Z",
  );
});

Deno.test("validateUuid() accepts the nil and max UUIDs", () => {
  assert.deepEqual(validateUuid("00000000-0000-0000-0000-000000000000"), {
    valid: true,
    version: null,
    variant: "nil",
    normalized: "00000000-0000-0000-0000-000000000000",
  });
  assert.deepEqual(validateUuid("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"), {
    valid: true,
    version: null,
    variant: "max",
    normalized: "ffffffff-ffff-ffff-ffff-ffffffffffff",
  });
});

Deno.test("validateUuid() names the non-RFC variants without a version", () => {
  assert.equal(validateUuid("00000000-0000-4000-0000-000000000001").variant, "ncs");
  assert.equal(validateUuid("00000000-0000-4000-c000-000000000001").variant, "microsoft");
  assert.equal(validateUuid("00000000-0000-4000-e000-000000000001").variant, "reserved_future");
  assert.equal(validateUuid("00000000-0000-4000-c000-000000000001").version, null);
});

Deno.test("validateUuid() rejects anything but the canonical 8-4-4-4-12 form", () => {
  const invalid = [
    "",
    "not-a-uuid",
    "919108f752d143209bacf847db4148a8",
    "{919108f7-52d1-4320-9bac-f847db4148a8}",
    "urn:uuid:919108f7-52d1-4320-9bac-f847db4148a8",
    " 919108f7-52d1-4320-9bac-f847db4148a8",
    "919108f7-52d1-4320-9bac-f847db4148a",
    "919108f7-52d1-4320-9bac-f847db4148a8a",
    "919108g7-52d1-4320-9bac-f847db4148a8",
    "919108f7-52d14-320-9bac-f847db4148a8",
  ];
  for (const uuid of invalid) {
    assert.deepEqual(
      validateUuid(uuid),
      { valid: false, version: null, variant: null, normalized: null },
      uuid,
    );
  }
});

Deno.test("generateUuidTool returns data that passes its own outputSchema", async () => {
  const one = await generateUuidTool.handler(generateUuidTool.inputSchema.parse({}), ctx);
  assert.deepEqual(generateUuidTool.outputSchema?.parse(one.data), one.data);
  assert.equal(one.data.version, "v4");
  assert.equal(one.text, one.data.uuids[0]);

  const many = await generateUuidTool.handler(
    generateUuidTool.inputSchema.parse({ version: "v7", count: 3 }),
    ctx,
  );
  assert.deepEqual(generateUuidTool.outputSchema?.parse(many.data), many.data);
  assert.equal(many.data.uuids.length, 3);
  assert.equal(many.text, `3 v7 UUIDs:\n${many.data.uuids.join("\n")}`);
});

Deno.test("generateUuidTool schema rejects counts outside 1..100 and unknown versions", () => {
  const schema = generateUuidTool.inputSchema;
  assert.equal(schema.safeParse({ count: 0 }).success, false);
  assert.equal(schema.safeParse({ count: 101 }).success, false);
  assert.equal(schema.safeParse({ count: 2.5 }).success, false);
  assert.equal(schema.safeParse({ version: "v1" }).success, false);
});

Deno.test("validateUuidTool returns data that passes its own outputSchema", async () => {
  const valid = await validateUuidTool.handler(
    { uuid: "919108F7-52D1-4320-9BAC-F847DB4148A8" },
    ctx,
  );
  assert.deepEqual(validateUuidTool.outputSchema?.parse(valid.data), valid.data);
  assert.equal(
    valid.text,
    "919108f7-52d1-4320-9bac-f847db4148a8 is a valid UUID (version 4, rfc9562 variant)",
  );
  const invalid = await validateUuidTool.handler({ uuid: "nope" }, ctx);
  assert.deepEqual(validateUuidTool.outputSchema?.parse(invalid.data), invalid.data);
  assert.equal(invalid.text, '"nope" is not a valid UUID');
});

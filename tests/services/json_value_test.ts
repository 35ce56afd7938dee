/**
 * encodeJsonValue() of src/services/_json_value.ts (private to src/services/; the bus and the
 * memory store encode what they keep through it).
 */
import assert from "node:assert/strict";
import { encodeJsonValue } from "../../src/services/_json_value.ts";
import { digestJson } from "../../src/lib/mod.ts";

class Refused extends Error {
  constructor(readonly why: string) {
    super(why);
  }
}

const ERRORS = {
  missing: () => new Refused("missing"),
  notJson: () => new Refused("not json"),
  tooLarge: (bytes: number) => new Refused(`too large: ${bytes}`),
};

Deno.test("encodeJsonValue() returns the JSON text, its UTF-8 size and the canonical digest", () => {
  const value = { b: [1, null, "ü"], a: true };
  const encoded = encodeJsonValue(value, 100, ERRORS);
  assert.equal(encoded.json, '{"b":[1,null,"ü"],"a":true}');
  assert.equal(encoded.bytes, new TextEncoder().encode(encoded.json).byteLength);
  assert.equal(encoded.bytes, encoded.json.length + 1, "ü is two bytes");
  assert.equal(
    encoded.sha256,
    digestJson({ a: true, b: [1, null, "ü"] }),
    "key order does not count",
  );
  assert.equal(encodeJsonValue(null, 4, ERRORS).json, "null");
});

Deno.test("encodeJsonValue() refuses nothing, a value JSON cannot hold, and one over the cap", () => {
  assert.throws(() => encodeJsonValue(undefined, 100, ERRORS), { why: "missing" });
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assert.throws(() => encodeJsonValue(cyclic, 100, ERRORS), { why: "not json" });
  assert.throws(() => encodeJsonValue(10n, 100, ERRORS), { why: "not json" });
  assert.equal(encodeJsonValue("é".repeat(3), 8, ERRORS).bytes, 8, "at the cap is kept");
  assert.throws(() => encodeJsonValue("é".repeat(4), 8, ERRORS), { why: "too large: 10" });
});

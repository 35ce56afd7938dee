import assert from "node:assert/strict";
import { boundRedacted } from "../../src/governance/sealable.ts";

const SECRET = "ghp_" + "A1b2C3d4".repeat(5);

Deno.test("boundRedacted: a remembered short text is redacted and bounded the same every time, past the memory's size too", () => {
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 1500; i++) {
      const out = boundRedacted(`tool_${i} ${SECRET}`, 200);
      assert.equal(out, `tool_${i} [REDACTED:api_key]`);
    }
    // The bound depends on max: the same text under another max is cut differently.
    assert.equal(boundRedacted("abcdef", 3), "abc…(6 chars)");
    assert.equal(boundRedacted("abcdef", 10), "abcdef");
  }
  // Long texts are not remembered, and still redacted before the cut.
  const long = `${"x".repeat(300)} ${SECRET}`;
  assert.ok(!boundRedacted(long, 400).includes(SECRET));
});

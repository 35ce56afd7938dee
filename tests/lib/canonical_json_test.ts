import assert from "node:assert/strict";
import { canonicalize, canonicalString } from "../../src/lib/mod.ts";

Deno.test("canonicalString() sorts keys by UTF-16 code units at every depth", () => {
  assert.equal(
    canonicalString({ b: 1, a: { d: [3, { z: 0, y: 1 }], c: null }, A: true }),
    '{"A":true,"a":{"c":null,"d":[3,{"y":1,"z":0}]},"b":1}',
  );
  // RFC 8785 section 3.2.3 orders by UTF-16 code units, not code points:
  // U+1F600 (surrogates D83D DE00) sorts before U+FB33 although its code
  // point is larger; "\r" < "1" < "é" (00E9) < "€" (20AC).
  const value = { "\u20ac": 4, "\ufb33": 6, "\u{1f600}": 5, "\u00e9": 3, "1": 2, "\r": 1 };
  assert.equal(
    canonicalString(value),
    '{"\\r":1,"1":2,"\u00e9":3,"\u20ac":4,"\u{1f600}":5,"\ufb33":6}',
  );
});

Deno.test("canonicalString() escapes strings as JSON.stringify does", () => {
  const text = 'quote " backslash \\ newline \n tab \t nul \u0000 del \u007f é 😀 \u2028';
  assert.equal(canonicalString(text), JSON.stringify(text));
  assert.equal(canonicalString("\u0001\u001f"), '"\\u0001\\u001f"');
});

Deno.test("canonicalString() equals JSON.stringify on random well-formed strings", () => {
  // Code units drawn from the ranges with special escaping rules: C0
  // controls, quote, backslash, ASCII, U+2028, surrogates, BMP.
  const pool = [0x00, 0x08, 0x0a, 0x1f, 0x20, 0x22, 0x2f, 0x5c, 0x41, 0x7f, 0xe9, 0x2028, 0xfffd];
  let seed = 1;
  function next(n: number): number {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  }
  for (let i = 0; i < 2000; i++) {
    let text = "";
    for (let j = next(12); j > 0; j--) {
      text += next(5) === 0 ? "\u{1f600}" : String.fromCharCode(pool[next(pool.length)]);
    }
    assert.equal(canonicalString(text), JSON.stringify(text));
    assert.equal(
      canonicalString({ [text]: text }),
      `{${JSON.stringify(text)}:${JSON.stringify(text)}}`,
    );
    const lone = text + String.fromCharCode(0xd800 + next(0x800));
    assert.throws(() => canonicalString(lone), /lone surrogate/);
  }
});

Deno.test("canonicalize() outputs UTF-8 without whitespace", () => {
  assert.deepEqual(
    canonicalize({ k: ["é", 1] }),
    new TextEncoder().encode('{"k":["é",1]}'),
  );
  assert.deepEqual([...canonicalize("é")], [0x22, 0xc3, 0xa9, 0x22]);
});

Deno.test("canonicalString() writes safe integers in decimal and -0 as 0", () => {
  assert.equal(
    canonicalString([0, -0, 1, -1, 1e3, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER]),
    "[0,0,1,-1,1000,9007199254740991,-9007199254740991]",
  );
  assert.equal(canonicalString(null), "null");
  assert.equal(canonicalString(true), "true");
  assert.equal(canonicalString([]), "[]");
  assert.equal(canonicalString({}), "{}");
  assert.equal(canonicalString(Object.create(null)), "{}");
});

Deno.test("canonicalString() refuses non-integers and unsafe integers, naming the path", () => {
  const cases: [unknown, string][] = [
    [{ latency_ms: 1.5 }, "Cannot encode entry.latency_ms: non-integer number 1.5"],
    [{ a: [0, NaN] }, "Cannot encode entry.a[1]: non-integer number NaN"],
    [{ a: Infinity }, "Cannot encode entry.a: non-integer number Infinity"],
    [{ a: -Infinity }, "Cannot encode entry.a: non-integer number -Infinity"],
    [{ a: 2 ** 53 }, "Cannot encode entry.a: integer 9007199254740992 is outside ±(2^53 − 1)"],
    [{ "odd key": 0.1 }, 'Cannot encode entry["odd key"]: non-integer number 0.1'],
  ];
  for (const [value, message] of cases) {
    assert.throws(() => canonicalString(value, { name: "entry" }), { name: "TypeError", message });
  }
});

Deno.test("canonicalString() refuses values JSON cannot represent exactly", () => {
  class Call {
    tool = "x";
  }
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const cases: [unknown, RegExp][] = [
    [{ a: undefined }, /^Cannot encode value\.a: unsupported undefined$/],
    [[() => 1], /^Cannot encode value\[0\]: unsupported function$/],
    [{ n: 1n }, /^Cannot encode value\.n: unsupported bigint$/],
    [{ s: Symbol("s") }, /unsupported symbol/],
    [{ [Symbol("k")]: 1 }, /symbol key/],
    [{ when: new Date(0) }, /^Cannot encode value\.when: unsupported object Date$/],
    [{ m: new Map() }, /unsupported object Map/],
    [{ b: new Uint8Array(1) }, /unsupported object Uint8Array/],
    [new Call(), /unsupported object Call/],
    [cyclic, /^Cannot encode value\.self: circular reference$/],
    // deno-lint-ignore no-sparse-arrays
    [[1, , 3], /array hole/],
    [{ s: "\ud800" }, /lone surrogate/],
    [{ ["\udc00"]: 1 }, /lone surrogate/],
    [undefined, /^Cannot encode value: unsupported undefined$/],
  ];
  for (const [value, message] of cases) {
    assert.throws(() => canonicalString(value), (e: unknown) => {
      assert.ok(e instanceof TypeError, String(e));
      assert.match(e.message, message);
      return true;
    });
  }
});

Deno.test("canonicalString() allows the same object twice when it is not a cycle", () => {
  const shared = { x: 1 };
  assert.equal(canonicalString({ a: shared, b: [shared] }), '{"a":{"x":1},"b":[{"x":1}]}');
});

Deno.test("canonicalString() is stable under JSON.parse round trips", () => {
  const value = { z: [1, "two", { three: null }], a: "é\n", m: { b: false, a: -5 } };
  const once = canonicalString(value);
  assert.equal(canonicalString(JSON.parse(once)), once);
});

Deno.test("digestJson() accepts floats, ignores key order and refuses non-finite numbers", async () => {
  const { digestJson, canonicalString } = await import("../../src/lib/mod.ts");
  assert.equal(digestJson({ b: 1.5, a: [1e21, 0.1] }), digestJson({ a: [1e21, 0.1], b: 1.5 }));
  assert.notEqual(digestJson({ a: 0.1 }), digestJson({ a: 0.2 }));
  assert.equal(
    canonicalString({ x: 1e21, y: -0, z: 0.000001 }, { numbers: "jcs" }),
    '{"x":1e+21,"y":0,"z":0.000001}',
  );
  assert.throws(() => digestJson({ a: NaN }), /non-integer number NaN|NaN/);
  assert.throws(() => canonicalString({ a: 1.5 }), /non-integer number 1.5/);
});

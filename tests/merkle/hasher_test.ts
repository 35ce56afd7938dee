import assert from "node:assert/strict";
import { EMPTY_ROOT, hashChildren, hashLeaf } from "../../src/merkle/mod.ts";
import {
  equalBytes,
  fromBase64,
  fromHex,
  sha256,
  sha256HexOfText,
  toBase64,
  toHex,
} from "../../src/lib/mod.ts";

function encode(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

Deno.test("sha256() matches the FIPS 180-2 known answers", () => {
  // FIPS 180-2 appendix B.1 ("abc") and the well-known digest of "".
  assert.equal(
    toHex(sha256(encode("abc"))),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  assert.equal(
    toHex(EMPTY_ROOT),
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  );
  assert.equal(Object.getPrototypeOf(sha256(encode("abc"))), Uint8Array.prototype);
});

Deno.test("hashLeaf() and hashChildren() prefix 0x00 and 0x01 as RFC 6962 requires", () => {
  const data = encode("entry");
  assert.deepEqual(hashLeaf(data), sha256(Uint8Array.of(0, ...data)));
  const left = hashLeaf(encode("l"));
  const right = hashLeaf(encode("r"));
  assert.deepEqual(hashChildren(left, right), sha256(Uint8Array.of(1, ...left, ...right)));
  // Known answer from the reference tree (../shared/vectors/rfc6962): leaf "" .
  assert.equal(
    toHex(hashLeaf(new Uint8Array())),
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
  );
});

Deno.test("hashLeaf() results are independent buffers", () => {
  const a = hashLeaf(encode("a"));
  const b = hashLeaf(encode("b"));
  a.fill(0);
  assert.notDeepEqual(b, new Uint8Array(32));
  assert.deepEqual(b, hashLeaf(encode("b")));
});

Deno.test("toHex()/fromHex() round-trip and fromHex() rejects malformed input", () => {
  assert.equal(toHex(Uint8Array.of(0, 1, 0xab, 0xff)), "0001abff");
  assert.deepEqual(fromHex("0001abff"), Uint8Array.of(0, 1, 0xab, 0xff));
  assert.deepEqual(fromHex("ABFF"), Uint8Array.of(0xab, 0xff));
  assert.deepEqual(fromHex(""), new Uint8Array());
  for (const bad of ["0", "0g", "00 ", " 00", "0x00"]) {
    assert.throws(() => fromHex(bad), SyntaxError, JSON.stringify(bad));
  }
});

Deno.test("toBase64()/fromBase64() round-trip and fromBase64() accepts only the canonical form", () => {
  assert.equal(toBase64(encode("ab")), "YWI=");
  assert.deepEqual(fromBase64("YWI="), encode("ab"));
  assert.deepEqual(fromBase64("+/8="), Uint8Array.of(0xfb, 0xff));
  assert.deepEqual(fromBase64(""), new Uint8Array());
  const bad = [
    "YWI", // missing padding
    "YWJ=", // non-zero padding bits
    "YW I=", // space
    "YWI=\n", // trailing newline
    "\tYWI=", // tab
    "-_8=", // URL-safe alphabet
    "YWI==", // extra padding
    "Y===",
    "YWI=YWI=", // padding in the middle
    "é",
  ];
  for (const text of bad) assert.throws(() => fromBase64(text), SyntaxError, JSON.stringify(text));
});

Deno.test("equalBytes() compares length and content", () => {
  assert.ok(equalBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 2)));
  assert.ok(!equalBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 3)));
  assert.ok(!equalBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 2, 0)));
});

Deno.test("sha256HexOfText() equals SHA-256 of the UTF-8 bytes, for ASCII and beyond", () => {
  for (const text of ["", "abc", "é ✓ 𝄞 日本", "x".repeat(5000)]) {
    assert.equal(sha256HexOfText(text), toHex(sha256(new TextEncoder().encode(text))));
  }
});

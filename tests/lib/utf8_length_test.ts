/**
 * utf8ByteLength counts what TextEncoder writes: ASCII, two- and three-byte
 * characters, surrogate pairs, lone and reversed surrogates (U+FFFD, three
 * bytes each), at both ends of a string, and past the length where it hands
 * over to the native encoder.
 */
import assert from "node:assert/strict";
import { utf8ByteLength } from "../../src/lib/mod.ts";

const encoded = (s: string) => new TextEncoder().encode(s).byteLength;

Deno.test("utf8ByteLength: equals TextEncoder's byte count", () => {
  const corpus = [
    "",
    "a",
    '{"message":"hi"}',
    "é",
    "€",
    "😀",
    "\ud800",
    "\udc00",
    "\udc00\ud800",
    "a\ud800",
    "\ud800a",
    "\ud83d\ude00\ud83d",
    "x".repeat(4096),
    "é".repeat(4096),
    "😀".repeat(3000),
  ];
  // Random strings over every kind of UTF-16 unit, surrogates included.
  let seed = 7;
  const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  const pools = [0x7f, 0x7ff, 0xd7ff, 0xdbff, 0xdfff, 0xffff];
  for (let i = 0; i < 500; i++) {
    let s = "";
    const len = rand(40);
    for (let j = 0; j < len; j++) s += String.fromCharCode(rand(pools[rand(pools.length)] + 1));
    corpus.push(s);
  }
  for (const s of corpus) {
    assert.equal(utf8ByteLength(s), encoded(s), JSON.stringify(s.slice(0, 40)));
  }
});

import assert from "node:assert/strict";
import { fromBase64, toBase64 } from "../../src/lib/mod.ts";
import {
  generateSigner,
  InvalidSignatureError,
  isValidKeyName,
  keyIdOf,
  MalformedNoteError,
  NoteError,
  openNote,
  signerFromKeyString,
  signerToKeyString,
  signNote,
  UnverifiedNoteError,
  verifierFromVkey,
} from "../../src/merkle/mod.ts";

// The worked example of the C2SP signed-note specification, section
// "Example" (https://c2sp.org/signed-note, file signed-note.md of
// github.com/C2SP/C2SP), copied byte for byte.
const SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
const SPEC_NOTE = "This is an example message.\n\n" +
  "— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

// The package documentation of golang.org/x/mod/sumdb/note (note.go,
// "Example"): a signer key, its verifier key, the note it signs and a second
// signature added by another key. Ed25519 is deterministic, so signing the
// text with GO_SKEY must reproduce GO_NOTE exactly.
const GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const GO_TEXT = "If you think cryptography is the answer to your problem,\n" +
  "then you don't know what your problem is.\n";
const GO_PETER_SIG =
  "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const GO_ENOCH_SIG =
  "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";
const GO_NOTE = `${GO_TEXT}\n${GO_PETER_SIG}`;

Deno.test("openNote() verifies the C2SP signed-note specification example", async () => {
  const verifier = await verifierFromVkey(SPEC_VKEY);
  assert.equal(verifier.name, "example.com/foo");
  assert.equal(verifier.keyId, 0x530d903a);
  assert.equal(verifier.vkey, SPEC_VKEY);
  const opened = await openNote(SPEC_NOTE, [verifier]);
  assert.equal(opened.text, "This is an example message.\n");
  assert.deepEqual(opened.verifiedBy, [verifier]);
  // Same result from the UTF-8 bytes.
  assert.equal((await openNote(new TextEncoder().encode(SPEC_NOTE), [verifier])).text, opened.text);
});

Deno.test("openNote() rejects a mutated copy of the C2SP example", async () => {
  const verifier = await verifierFromVkey(SPEC_VKEY);
  const changedText = SPEC_NOTE.replace("example message", "example massage");
  await assert.rejects(openNote(changedText, [verifier]), InvalidSignatureError);
  // Flip one bit of the signature itself (after the 4-byte key id).
  const [head, b64] = SPEC_NOTE.trimEnd().split(" example.com/foo ");
  const blob = fromBase64(b64);
  blob[10] ^= 0x01;
  const changedSig = `${head} example.com/foo ${toBase64(blob)}\n`;
  await assert.rejects(openNote(changedSig, [verifier]), (e: unknown) => {
    assert.ok(e instanceof InvalidSignatureError && e instanceof NoteError);
    assert.equal(e.keyName, "example.com/foo");
    assert.equal(e.keyId, 0x530d903a);
    assert.equal(e.message, "Cannot open note: invalid signature by example.com/foo+530d903a");
    return true;
  });
});

Deno.test("signerFromKeyString() reproduces the golang.org/x/mod/sumdb/note example byte for byte", async () => {
  const signer = await signerFromKeyString(GO_SKEY);
  assert.equal(signer.name, "PeterNeumann");
  assert.equal(signer.keyId, 0xc74f20a3);
  assert.equal(signer.vkey, GO_VKEY);
  assert.equal(await signNote(GO_TEXT, signer), GO_NOTE);
  assert.equal(await signerToKeyString(signer), GO_SKEY);
});

Deno.test("openNote() ignores signatures by unknown keys, such as a cosigner's", async () => {
  const peter = await verifierFromVkey(GO_VKEY);
  const doubly = `${GO_TEXT}\n${GO_PETER_SIG}${GO_ENOCH_SIG}`;
  const opened = await openNote(doubly, [peter]);
  assert.equal(opened.text, GO_TEXT);
  assert.deepEqual(opened.verifiedBy.map((v) => v.name), ["PeterNeumann"]);
});

Deno.test("openNote() throws UnverifiedNoteError when no known key signed", async () => {
  const other = await verifierFromVkey(SPEC_VKEY);
  await assert.rejects(openNote(GO_NOTE, [other]), (e: unknown) => {
    assert.ok(e instanceof UnverifiedNoteError);
    assert.deepEqual(e.signedBy, ["PeterNeumann+c74f20a3"]);
    return true;
  });
  await assert.rejects(openNote(GO_NOTE, []), UnverifiedNoteError);
});

Deno.test("openNote() does not accept a key that shares only the name or only the id", async () => {
  // C2SP: a signature matches a key only if both name and id match.
  const peter = await verifierFromVkey(GO_VKEY);
  const renamed = GO_NOTE.replace("— PeterNeumann ", "— PeterNeumann2 ");
  await assert.rejects(openNote(renamed, [peter]), UnverifiedNoteError);
});

Deno.test("openNote() rejects malformed notes with MalformedNoteError", async () => {
  const verifier = await verifierFromVkey(SPEC_VKEY);
  const sigLine = SPEC_NOTE.slice(SPEC_NOTE.indexOf("—"));
  const cases: [string | Uint8Array, RegExp][] = [
    ["This is an example message.\n" + sigLine, /no blank line/],
    [SPEC_NOTE.slice(0, -1), /must end with a newline/],
    [SPEC_NOTE.replace("—", "-"), /does not start with/],
    [SPEC_NOTE.replace("— ", "—"), /does not start with/],
    [SPEC_NOTE.replace("example.com/foo Uw2Q", "example.com/foo  Uw2Q"), /not valid base64/],
    [SPEC_NOTE.replace("example message", "example\tmessage"), /control character/],
    [SPEC_NOTE.replace("example message", "example\rmessage"), /control character/],
    [SPEC_NOTE.replace("Uw2QOkn8", "Uw2QOkn*"), /not valid base64/],
    ["text\n\n— example.com/foo AAAAAA==\n", /too short/],
    ["text\n\n\n", /signature block must end with a newline/],
    ["text\n\n— example.com/foo\n", /has no signature/],
    ["text\n\n— +bad Uw2QOkn8srV1\n", /invalid key name/],
    [Uint8Array.of(0x61, 0xff, 0x0a, 0x0a), /not valid UTF-8/],
    ["a\ud800\n\n" + sigLine, /not valid Unicode/],
  ];
  for (const [note, message] of cases) {
    await assert.rejects(openNote(note, [verifier]), (e: unknown) => {
      assert.ok(e instanceof MalformedNoteError, `${JSON.stringify(note)}: ${e}`);
      assert.match(e.message, message, JSON.stringify(note));
      return true;
    });
  }
  const tooMany = `text\n\n${sigLine.repeat(101)}`;
  await assert.rejects(openNote(tooMany, [verifier]), /more than 100 signatures/);
});

Deno.test("openNote() counts a repeated signature once but checks every copy", async () => {
  const verifier = await verifierFromVkey(SPEC_VKEY);
  const sigLine = SPEC_NOTE.slice(SPEC_NOTE.indexOf("—"));
  const twice = await openNote(SPEC_NOTE + sigLine, [verifier]);
  assert.deepEqual(twice.verifiedBy, [verifier]);
  // A second, broken signature by the same key rejects the note even though
  // the first one verified (Go's note.Open would skip it).
  const broken = sigLine.replace("Uw2QOkn8", "Uw2QOkn9");
  await assert.rejects(openNote(SPEC_NOTE + broken, [verifier]), InvalidSignatureError);
});

Deno.test("openNote() splits at the last blank line, so the text may contain blank lines", async () => {
  const signer = await generateSigner("warden.example/log");
  const verifier = await verifierFromVkey(signer.vkey);
  const text = "first\n\nthird\n\n";
  const note = await signNote(text, signer);
  assert.equal((await openNote(note, [verifier])).text, text);
});

Deno.test("generateSigner() keys round-trip through their key strings and sign verifiably", async () => {
  const signer = await generateSigner("warden.example/vault");
  assert.match(signer.vkey, /^warden\.example\/vault\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}$/);
  assert.equal(signer.keyId, keyIdOf(signer.name, signer.publicKey));
  const secret = await signerToKeyString(signer);
  assert.match(secret, /^PRIVATE\+KEY\+warden\.example\/vault\+[0-9a-f]{8}\+/);
  const again = await signerFromKeyString(secret);
  assert.equal(again.vkey, signer.vkey);
  const note = await signNote("checkpoint\n", again);
  const opened = await openNote(note, [await verifierFromVkey(signer.vkey)]);
  assert.equal(opened.text, "checkpoint\n");
  // Nothing secret shows when a signer is logged or serialised.
  // The key material is everything after the fourth "+" (base64 may itself contain "+").
  const material = secret.split("+").slice(4).join("+");
  assert.equal(material.length, 44);
  assert.ok(!JSON.stringify(signer).includes(material));
});

Deno.test("signNote() with several signers writes one line each, in order", async () => {
  const a = await generateSigner("a.example");
  const b = await generateSigner("b.example");
  const note = await signNote("hi\n", [a, b]);
  const lines = note.split("\n");
  assert.ok(lines[2].startsWith("— a.example ") && lines[3].startsWith("— b.example "));
  const opened = await openNote(note, [
    await verifierFromVkey(b.vkey),
    await verifierFromVkey(a.vkey),
  ]);
  assert.deepEqual(opened.verifiedBy.map((v) => v.name), ["a.example", "b.example"]);
});

Deno.test("signNote() refuses text a verifier could not open", async () => {
  const signer = await generateSigner("warden.example/log");
  await assert.rejects(signNote("no newline", signer), /must end with a newline/);
  await assert.rejects(signNote("tab\there\n", signer), /control character/);
  await assert.rejects(signNote("\ud800\n", signer), /not valid Unicode/);
  await assert.rejects(signNote("x\n", []), /no signer/);
});

Deno.test("verifierFromVkey() and signerFromKeyString() reject malformed keys", async () => {
  const badVkeys = [
    "example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", // wrong id
    "example.com/foo+530d903+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", // short id
    "example.com/foo+530d903a+AkyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", // bad base64
    "example.com/foo+530d903a+AukyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", // wrong key
    "example.com/foo+530d903a+AgkyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", // type 0x02
    "example.com/foo+530d903a",
    "example com+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
    "+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
  ];
  for (const vkey of badVkeys) await assert.rejects(verifierFromVkey(vkey), TypeError, vkey);
  const badSkeys = [
    GO_SKEY.replace("c74f20a3", "c74f20a4"),
    GO_SKEY.replace("PRIVATE+KEY+", ""),
    GO_SKEY.slice(0, -4),
    GO_VKEY,
  ];
  for (const skey of badSkeys) await assert.rejects(signerFromKeyString(skey), TypeError, skey);
  await assert.rejects(generateSigner("has space"), TypeError);
  await assert.rejects(generateSigner(""), TypeError);
});

Deno.test("isValidKeyName() refuses empty names, spaces of any kind and '+'", () => {
  assert.ok(isValidKeyName("example.com/foo"));
  assert.ok(isValidKeyName("é.example"));
  for (const name of ["", "a b", "a\u00a0b", "a\u2003b", "a\u0085b", "a+b", "a\nb", "\ud800"]) {
    assert.ok(!isValidKeyName(name), JSON.stringify(name));
  }
});

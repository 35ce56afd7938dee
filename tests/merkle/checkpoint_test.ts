import assert from "node:assert/strict";
import {
  EMPTY_ROOT,
  formatCheckpoint,
  generateSigner,
  hashLeaf,
  MalformedCheckpointError,
  openCheckpoint,
  parseCheckpoint,
  signCheckpoint,
  splitNote,
  verifierFromVkey,
} from "../../src/merkle/mod.ts";
import { fromBase64 } from "../../src/lib/mod.ts";

// The example at the top of the C2SP tlog-checkpoint specification
// (https://c2sp.org/tlog-checkpoint, file tlog-checkpoint.md of
// github.com/C2SP/C2SP). Its public key is not published, so only the
// format is checked here.
const SPEC_CHECKPOINT = "example.com/behind-the-sofa\n20852163\n" +
  "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n" +
  "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n";

Deno.test("parseCheckpoint() reads the C2SP tlog-checkpoint example and formatCheckpoint() writes it back", () => {
  const { text } = splitNote(SPEC_CHECKPOINT);
  const checkpoint = parseCheckpoint(text);
  assert.equal(checkpoint.origin, "example.com/behind-the-sofa");
  assert.equal(checkpoint.size, 20852163);
  assert.deepEqual(checkpoint.root, fromBase64("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="));
  assert.deepEqual(checkpoint.extensions, []);
  assert.equal(formatCheckpoint(checkpoint), text);
});

Deno.test("formatCheckpoint() writes origin, size, base64 root and extension lines", () => {
  assert.equal(
    formatCheckpoint({ origin: "warden.example/vault", size: 0, root: EMPTY_ROOT }),
    "warden.example/vault\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
  );
  const withExtensions = formatCheckpoint({
    origin: "o",
    size: 2 ** 53 - 1,
    root: EMPTY_ROOT,
    extensions: ["ext one", "ext two"],
  });
  assert.equal(
    withExtensions,
    "o\n9007199254740991\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\next one\next two\n",
  );
  assert.deepEqual(parseCheckpoint(withExtensions).extensions, ["ext one", "ext two"]);
});

Deno.test("formatCheckpoint() refuses values that would not parse back", () => {
  const root = EMPTY_ROOT;
  assert.throws(() => formatCheckpoint({ origin: "", size: 1, root }), TypeError);
  assert.throws(() => formatCheckpoint({ origin: "a\nb", size: 1, root }), TypeError);
  assert.throws(() => formatCheckpoint({ origin: "o", size: -1, root }), RangeError);
  assert.throws(() => formatCheckpoint({ origin: "o", size: 1.5, root }), RangeError);
  assert.throws(
    () => formatCheckpoint({ origin: "o", size: 1, root: root.subarray(1) }),
    TypeError,
  );
  assert.throws(
    () => formatCheckpoint({ origin: "o", size: 1, root, extensions: [""] }),
    TypeError,
  );
  assert.throws(
    () => formatCheckpoint({ origin: "o", size: 1, root, extensions: ["a\nb"] }),
    TypeError,
  );
});

Deno.test("parseCheckpoint() is strict about every line", () => {
  const root = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
  const cases: [string, RegExp][] = [
    [`o\n1\n${root}`, /end with a newline/],
    [`o\n1\n`, /expected origin, size and root/],
    [`\n1\n${root}\n`, /origin/],
    [`o\n01\n${root}\n`, /not a decimal number/],
    [`o\n+1\n${root}\n`, /not a decimal number/],
    [`o\n1 \n${root}\n`, /not a decimal number/],
    [`o\n\n${root}\n`, /not a decimal number/],
    [`o\n0x10\n${root}\n`, /not a decimal number/],
    [`o\n9007199254740992\n${root}\n`, /too large/],
    [`o\n1\n${root.slice(0, -1)}\n`, /not valid base64/],
    [`o\n1\n${root} \n`, /not valid base64/],
    [`o\n1\nAAAA\n`, /3 bytes, want 32/],
    [`o\n1\n${root}\n\n`, /extension line 1/],
    [`o\n1\n${root}\r\n`, /not valid base64/],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => parseCheckpoint(text), (e: unknown) => {
      assert.ok(e instanceof MalformedCheckpointError, `${JSON.stringify(text)}: ${e}`);
      assert.match(e.message, message, JSON.stringify(text));
      return true;
    });
  }
  assert.equal(parseCheckpoint(`o\n0\n${root}\n`).size, 0);
});

Deno.test("openCheckpoint() verifies the signature and the origin", async () => {
  const signer = await generateSigner("warden.example/vault");
  const verifier = await verifierFromVkey(signer.vkey);
  const checkpoint = { origin: "warden.example/vault", size: 1, root: hashLeaf(new Uint8Array()) };
  const note = await signCheckpoint(checkpoint, signer);
  const opened = await openCheckpoint(note, [verifier], { origin: "warden.example/vault" });
  assert.deepEqual(opened.checkpoint, { ...checkpoint, extensions: [] });
  assert.equal(opened.text, formatCheckpoint(checkpoint));
  await assert.rejects(
    openCheckpoint(note, [verifier], { origin: "other.example/vault" }),
    /origin "warden.example\/vault", want "other.example\/vault"/,
  );
});

/** htmlToText(): the HTML reduction fetch_content keeps as evidence text. */
import assert from "node:assert/strict";
import { htmlToText } from "../../src/evidence/mod.ts";

Deno.test("htmlToText() decodes entities once, named and numeric", () => {
  assert.deepEqual(htmlToText("a &amp; b &lt;c&gt; &quot;d&quot; &apos;e&apos;"), {
    text: `a & b <c> "d" 'e'`,
  });
  assert.equal(
    htmlToText("&#65;&#x42;&#X43; &#128512; &#0; &unknown;").text,
    "ABC 😀 \ufffd &unknown;",
  );
  assert.equal(htmlToText("&amp;lt; is not &lt;").text, "&lt; is not <");
  assert.equal(htmlToText("x&nbsp;&nbsp;y").text, "x y");
});

Deno.test("htmlToText() drops scripts, styles and the head but keeps the title", () => {
  const html = `<html><head><title> The
    Title </title><style>p { color: red }</style><meta charset="utf-8">
    <script>document.write("<p>not me</p>")</script></head>
    <body><noscript>enable JS</noscript><template><p>hidden</p></template>
    <svg><title>icon</title><text>svg text</text></svg>
    <!-- a <p>comment</p> --><p>visible</p><SCRIPT type="x">also not me</SCRIPT></body></html>`;
  assert.deepEqual(htmlToText(html), { title: "The Title", text: "visible" });
});

Deno.test("htmlToText() turns block elements into lines and strips inline tags", () => {
  const html = `<div>one</div><p>two <b>bold</b><i>it</i></p>line<br>break<h2>Head</h2>
    <table><tr><td>a</td><td>b</td></tr><tr><th>c</th></tr></table>
    <ul><li>x</li><li>y</li></ul><pre>  pre   text  </pre>`;
  assert.equal(htmlToText(html).text, "one\ntwo boldit\nline\nbreak\nHead\na b\nc\nx\ny\npre text");
});

Deno.test("htmlToText() copes with attributes holding '>' and with broken markup", () => {
  assert.equal(htmlToText(`<a title="a>b" href='x>y'>link</a> after`).text, "link after");
  assert.equal(htmlToText("1 < 2 and 3 > 2").text, "1 < 2 and 3 > 2");
  assert.equal(htmlToText("text <script>never closed").text, "text");
  assert.equal(htmlToText("text <p unterminated").text, "text");
  // Content before any body tag ends the head, as browsers do.
  assert.equal(htmlToText("<head><title>t</title><p>body text</p>").text, "body text");
});

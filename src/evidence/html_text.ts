/**
 * HTML reduced to readable text, for the evidence fetch_content keeps: a
 * single forward scan, no DOM, no dependency.
 *
 * @module
 */

const NAMED_ENTITIES: Readonly<Record<string, string>> = {
  amp: "&",
  lt: "<",
  gt: ">",
  quot: '"',
  apos: "'",
  nbsp: "\u00a0",
  copy: "©",
  reg: "®",
  trade: "™",
  hellip: "…",
  mdash: "—",
  ndash: "–",
  lsquo: "‘",
  rsquo: "’",
  ldquo: "“",
  rdquo: "”",
  laquo: "«",
  raquo: "»",
  bull: "•",
  middot: "·",
  euro: "€",
  pound: "£",
  cent: "¢",
  yen: "¥",
  sect: "§",
  deg: "°",
  times: "×",
  divide: "÷",
};

const ENTITY = /&(?:#([0-9]{1,8})|#[xX]([0-9a-fA-F]{1,8})|([a-zA-Z][a-zA-Z0-9]{1,31}));/g;

function decodeEntities(text: string): string {
  if (!text.includes("&")) return text;
  // One pass, so "&amp;lt;" becomes "&lt;" and not "<".
  return text.replace(ENTITY, (whole, dec?: string, hex?: string, name?: string) => {
    if (name !== undefined) return NAMED_ENTITIES[name] ?? whole;
    const code = dec !== undefined ? parseInt(dec, 10) : parseInt(hex!, 16);
    const valid = code > 0 && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff);
    return valid ? String.fromCodePoint(code) : "\ufffd";
  });
}

/** Elements whose content is never text for a reader. */
const SKIPPED_ELEMENTS = new Set([
  "script",
  "style",
  "noscript",
  "template",
  "svg",
  "math",
  "iframe",
  "object",
]);

/** Elements that may live in <head>; any other start tag implies the body has begun. */
const HEAD_ELEMENTS = new Set([
  "base",
  "link",
  "meta",
  "script",
  "style",
  "noscript",
  "template",
  "title",
]);

const BLOCK_ELEMENTS = new Set([
  "address",
  "article",
  "aside",
  "blockquote",
  "body",
  "br",
  "caption",
  "dd",
  "details",
  "dialog",
  "div",
  "dl",
  "dt",
  "fieldset",
  "figcaption",
  "figure",
  "footer",
  "form",
  "h1",
  "h2",
  "h3",
  "h4",
  "h5",
  "h6",
  "header",
  "hgroup",
  "hr",
  "html",
  "li",
  "main",
  "nav",
  "ol",
  "p",
  "pre",
  "section",
  "summary",
  "table",
  "tbody",
  "tfoot",
  "thead",
  "tr",
  "ul",
]);

/** Cells separate words, not lines. */
const CELL_ELEMENTS = new Set(["td", "th"]);

const TAG_NAME = /<(\/?)([a-zA-Z][a-zA-Z0-9-]*)/y;

/** Index of the `>` closing the tag whose attributes start at `from`, or -1. */
function findTagEnd(html: string, from: number): number {
  let i = from;
  while (i < html.length) {
    const c = html[i];
    if (c === ">") return i;
    if (c === "=") {
      i += 1;
      while (i < html.length && /\s/.test(html[i])) i += 1;
      const quote = html[i];
      if (quote === '"' || quote === "'") {
        const close = html.indexOf(quote, i + 1);
        if (close < 0) return -1;
        i = close + 1;
      }
      continue;
    }
    i += 1;
  }
  return -1;
}

/** Where the raw-text element `name` ends: [content end, index after its end tag]. */
function findEndTag(html: string, name: string, from: number): [number, number] {
  const pattern = new RegExp(`</${name}[\\s/>]`, "gi");
  pattern.lastIndex = from;
  const match = pattern.exec(html);
  if (match === null) return [html.length, html.length];
  const close = html.indexOf(">", match.index);
  return [match.index, close < 0 ? html.length : close + 1];
}

/**
 * Reduces an HTML document to readable text in one linear pass (no regex
 * backtracking over the document): script, style, noscript, template, svg and
 * the rest of `<head>` are dropped except `<title>`, which is returned apart;
 * block elements become line breaks; other tags vanish; entities (the common
 * named ones and all numeric ones) are decoded; whitespace runs collapse to
 * one space, blank lines are removed and lines are trimmed.
 *
 * @example
 * ```ts
 * import { htmlToText } from "./html_text.ts";
 * htmlToText("<title>T</title><p>a &amp; b</p><p>c</p>"); // { title: "T", text: "a & b\nc" }
 * ```
 */
export function htmlToText(html: string): { title?: string; text: string } {
  const out: string[] = [];
  let title: string | undefined;
  let inHead = false;
  let i = 0;
  const emit = (raw: string) => {
    if (!inHead && raw !== "") out.push(decodeEntities(raw).replace(/\s+/g, " "));
  };

  while (i < html.length) {
    const lt = html.indexOf("<", i);
    if (lt < 0) {
      emit(html.slice(i));
      break;
    }
    emit(html.slice(i, lt));
    if (html.startsWith("<!--", lt)) {
      const end = html.indexOf("-->", lt + 4);
      i = end < 0 ? html.length : end + 3;
      continue;
    }
    const next = html[lt + 1];
    if (next === "!" || next === "?") {
      // Doctype, CDATA or a processing instruction: nothing to read.
      const end = html.indexOf(">", lt);
      i = end < 0 ? html.length : end + 1;
      continue;
    }
    TAG_NAME.lastIndex = lt;
    const tag = TAG_NAME.exec(html);
    if (tag === null) {
      emit("<"); // a bare "<" in text, as in "a < b"
      i = lt + 1;
      continue;
    }
    const closing = tag[1] === "/";
    const name = tag[2].toLowerCase();
    const end = findTagEnd(html, TAG_NAME.lastIndex);
    if (end < 0) break; // an unterminated tag at the end is dropped, as browsers do
    i = end + 1;

    if (!closing && (name === "title" || SKIPPED_ELEMENTS.has(name))) {
      const [contentEnd, after] = findEndTag(html, name, i);
      if (name === "title" && title === undefined) {
        title = decodeEntities(html.slice(i, contentEnd)).replace(/\s+/g, " ").trim();
      }
      i = after;
      continue;
    }
    if (name === "head") {
      inHead = !closing;
      continue;
    }
    if (inHead && !closing && !HEAD_ELEMENTS.has(name)) inHead = false;
    if (BLOCK_ELEMENTS.has(name)) out.push("\n");
    else if (CELL_ELEMENTS.has(name)) out.push(" ");
  }

  const text = out.join("").split("\n").map((line) => line.replace(/ {2,}/g, " ").trim())
    .filter((line) => line !== "").join("\n");
  return title === undefined || title === "" ? { text } : { title, text };
}

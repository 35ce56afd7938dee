/**
 * PII and secret detection for F6 Empathy (κr), and the redaction that lets
 * the vault keep a record of a call without keeping its secrets.
 *
 * Detection is pattern based and deliberately conservative where a pattern
 * alone would flag ordinary data: card numbers must pass Luhn and start with
 * an issuer digit 2–6, IBANs must pass ISO 13616 mod-97, phone numbers need a
 * leading `+` (8–15 digits) or a separated national layout (NANP
 * `415-555-2671`, trunk-prefix `020 7946 0958`, at least 10 digits), so ISO
 * dates, timestamps, amounts and plain digit runs are left alone.
 *
 * Every pattern is anchored by a look-behind so a scan costs time linear in
 * the text: arguments are attacker-controlled and up to
 * `limits.max_argument_bytes` long.
 *
 * @module
 */

import { indexPath, keyPath } from "./_walk.ts";

/** The kinds of PII and secrets F6 recognises, in reporting order. */
export const PII_KINDS = ["email", "phone", "card", "iban", "api_key", "private_key"] as const;

/** One kind of PII or secret. */
export type PiiKind = typeof PII_KINDS[number];

/** How many matches of one kind were found at one path. Never the matched text. */
export interface Finding {
  kind: PiiKind;
  path: string;
  count: number;
}

interface Detector {
  kind: PiiKind;
  /** Must carry the `g` flag. */
  regex: RegExp;
  /**
   * A cheap necessary condition (a substring, a digit count): when it is
   * false the regex cannot match, so it is not run. Scanning every argument
   * and result of every call made the full regex pass a hot spot.
   */
  quick: (text: string, digits: number, run: number, b64of40: boolean) => boolean;
  /**
   * Checks a candidate the regex alone cannot (checksums, digit counts); `before` is the
   * 80 characters before the match (with earlier matches already replaced).
   */
  accept?: (match: string, before: string) => boolean;
}

function digitsOf(text: string): string {
  return text.replace(/\D/g, "");
}

/** Luhn (mod 10) check over the digits of `text`. */
export function luhnValid(text: string): boolean {
  const digits = digitsOf(text);
  if (digits.length === 0) return false;
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/** ISO 13616 check: length 15–34 and mod-97 of the rearranged number equals 1. */
export function ibanValid(text: string): boolean {
  const iban = text.replace(/ /g, "").toUpperCase();
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$/.test(iban)) return false;
  const rearranged = iban.slice(4) + iban.slice(0, 4);
  let remainder = 0;
  for (const char of rearranged) {
    const code = char.charCodeAt(0);
    // Letters count as two digits: A = 10 … Z = 35.
    const value = code >= 65 ? code - 55 : code - 48;
    remainder = (remainder * (value >= 10 ? 100 : 10) + value) % 97;
  }
  return remainder === 1;
}

function digitCountWithin(min: number, max: number): (match: string) => boolean {
  return (match) => {
    const n = digitsOf(match).length;
    return n >= min && n <= max;
  };
}

// Necessary conditions of the digit detectors below, each implied by its regex (they run on
// every string of every call, and a hash, a UUID or a timestamp must not wake the regexes):
// - a card is 13 digits with at most one separator between two (the `run` digitCount measures);
// - an international number is `+` and a digit with nothing of `[\w+]` before it (`2+3` is not);
// - a North American number ends in `ddd-dddd`;
// - a trunk-prefix number starts `(0[1-9]` or `0[1-9]`, up to three digits, a separator and two
//   digits, with nothing of `[\w+.-]` before it (a UUID's `…4d06-37…` is not).

/** Whether the character before `i` in `t` is one of `[\w+]`, or also `.` and `-` with `dotDash`. */
function joined(t: string, i: number, dotDash: boolean): boolean {
  if (i === 0) return false;
  const c = t.charCodeAt(i - 1);
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 ||
    c === 43 || (dotDash && (c === 46 || c === 45));
}

function intlHead(t: string): boolean {
  for (let i = t.indexOf("+"); i >= 0; i = t.indexOf("+", i + 1)) {
    const next = t.charCodeAt(i + 1);
    if (next >= 49 && next <= 57 && !joined(t, i, false)) return true;
  }
  return false;
}

const NANP_TAIL = /\d{3}[ .-]\d{4}/;
const TRUNK_START = /\(0[1-9]|0[1-9]\d{0,3}[ .-]\d\d/g;

function trunkHead(t: string): boolean {
  TRUNK_START.lastIndex = 0;
  for (let m = TRUNK_START.exec(t); m !== null; m = TRUNK_START.exec(t)) {
    if (!joined(t, m.index, true)) return true;
    TRUNK_START.lastIndex = m.index + 1;
  }
  return false;
}

const DATE_PREFIX = /^\d{1,2}([./-])\d{1,2}\1\d{2,4}(?!\d)/;

/**
 * Values after a secret's name that are not the secret: placeholders, references, numbers,
 * code (`config.token`, a bare identifier of under 20 letters).
 */
const NOT_A_SECRET_VALUE =
  /^(?:\[REDACTED:.*|\d+|undefined|null|\*+|x+|<[^>]*>?|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+!?|[A-Za-z_]{1,19})$/i;

/** Words before a 40-character token that say it is an AWS secret key. */
const AWS_CONTEXT = /\[REDACTED:api_key\]|aws|secret|credential/i;

/**
 * Whether 40 base64 characters look drawn at random, as an AWS secret key is:
 * at least three upper- and lower-case letters and a digit, Shannon entropy of
 * at least 4.3 bits per character, at least 14 changes of character class
 * between neighbours, and at most four camel-case humps (a capital followed by
 * three lower-case letters). Of 100 000 random 30-byte keys about 0.2% fail;
 * camel-case identifiers, paths, hex digests and repeated letters fail too.
 */
export function looksRandom(s: string): boolean {
  let upper = 0, lower = 0, digit = 0, changes = 0, humps = 0;
  const counts = new Map<number, number>();
  const kind = (c: number) =>
    c >= 97 && c <= 122 ? 0 : c >= 65 && c <= 90 ? 1 : c >= 48 && c <= 57 ? 2 : 3;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const k = kind(c);
    if (k === 0) lower++;
    else if (k === 1) upper++;
    else if (k === 2) digit++;
    counts.set(c, (counts.get(c) ?? 0) + 1);
    if (i > 0 && k !== kind(s.charCodeAt(i - 1))) changes++;
    if (k === 1 && i + 3 < s.length && [1, 2, 3].every((d) => kind(s.charCodeAt(i + d)) === 0)) {
      humps++;
    }
  }
  let entropy = 0;
  for (const n of counts.values()) entropy -= (n / s.length) * Math.log2(n / s.length);
  return upper >= 3 && lower >= 3 && digit >= 1 && entropy >= 4.3 && changes >= 14 && humps <= 4;
}

// Order matters: each detector sees the text with earlier matches already
// replaced by a placeholder, so digits inside a key are not also a phone
// number, and an IBAN's digits are not also a card.
const DETECTORS: readonly Detector[] = [
  {
    kind: "private_key",
    quick: (t) => t.includes("PRIVATE KEY"),
    // Up to the matching END line, or to the end of the text when a key was
    // truncated: a partial key is still a secret.
    regex:
      /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|$)/g,
  },
  // Warden's own signing key string (`PRIVATE+KEY+<name>+<key id>+<base64>`, the note format
  // --signing-key takes): whoever holds it can sign checkpoints.
  {
    kind: "private_key",
    quick: (t) => t.includes("PRIVATE+KEY+"),
    regex: /PRIVATE\+KEY\+[^\s+]{1,128}\+[0-9a-fA-F]{8}\+[A-Za-z0-9+/]{20,}={0,2}/g,
  },
  // Warden's operator key file (`operator.key`, JSON {name, seed, public_key}): the seed is the
  // Ed25519 private key that approves holds.
  {
    kind: "private_key",
    quick: (t) => t.includes("seed"),
    regex: /(?<="seed"\s{0,4}:\s{0,4}")[A-Za-z0-9+/]{42,44}={0,2}(?=")/g,
  },
  // Warden's minted bearer tokens (`warden token mint`): `wdn_` and 43 base64url characters.
  {
    kind: "api_key",
    quick: (t) => t.includes("wdn_"),
    regex: /(?<![A-Za-z0-9])wdn_[A-Za-z0-9_-]{20,256}/g,
  },
  // JSON Web Tokens: base64url header and payload both start with `{"`.
  {
    kind: "api_key",
    quick: (t) => t.includes("eyJ"),
    regex: /(?<![A-Za-z0-9])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g,
  },
  // OpenAI / Anthropic style (`sk-…`, `sk-proj-…`, `sk-ant-…`).
  {
    kind: "api_key",
    quick: (t) => t.includes("sk-"),
    regex: /(?<![A-Za-z0-9])sk-[A-Za-z0-9_-]{20,}/g,
  },
  // Stripe secret and restricted keys.
  {
    kind: "api_key",
    quick: (t) => t.includes("k_live_") || t.includes("k_test_"),
    regex: /(?<![A-Za-z0-9])[sr]k_(?:live|test)_[A-Za-z0-9]{16,}/g,
  },
  // AWS access key ids (long-term and temporary).
  {
    kind: "api_key",
    quick: (t) => t.includes("AKIA") || t.includes("ASIA"),
    regex: /(?<![A-Za-z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Za-z0-9])/g,
  },
  // GitHub tokens, classic and fine-grained.
  {
    kind: "api_key",
    quick: (t) => /gh[pousr]_|github_pat_/.test(t),
    regex: /(?<![A-Za-z0-9])(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})/g,
  },
  // Slack tokens.
  {
    kind: "api_key",
    quick: (t) => t.includes("xox"),
    regex: /(?<![A-Za-z0-9])xox[abprs]-[A-Za-z0-9-]{10,}/g,
  },
  // Google API keys.
  {
    kind: "api_key",
    quick: (t) => t.includes("AIza"),
    regex: /(?<![A-Za-z0-9])AIza[0-9A-Za-z_-]{35}/g,
  },
  // The token after `Bearer` (the word itself is kept).
  {
    kind: "api_key",
    quick: (t) => /bearer/i.test(t),
    regex: /(?<=\bbearer\s{1,8})[A-Za-z0-9._~+/-]{20,}=*/gi,
  },
  // AWS secret access keys: 40 base64 characters after a name that says so
  // (`aws_secret_access_key = …`, `"SecretAccessKey": "…"`).
  {
    kind: "api_key",
    quick: (t) => /secret.?access.?key/i.test(t),
    regex:
      /(?<=secret[_-]?access[_-]?key["']?\s{0,4}[:=]\s{0,4}["']?)[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])/gi,
  },
  // An AWS secret access key: 40 base64 characters, not part of a longer token. With a
  // context that names it (its key id, already replaced above, or "aws", "secret", "credential"
  // in the 80 characters before) mixing cases and digits suffices; bare, it must also look
  // random (see `looksRandom`), so identifiers, paths and digests are left alone.
  {
    kind: "api_key",
    // The match is a whole run of exactly 40 of its characters (`b64of40`, from digitCount).
    quick: (_t, _d, _r, b64of40) => b64of40,
    regex: /(?<![A-Za-z0-9/+_-])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=_-])/g,
    accept: (m, before) =>
      /[a-z]/.test(m) && /[A-Z]/.test(m) && /\d/.test(m) &&
      (AWS_CONTEXT.test(before) || looksRandom(m)),
  },
  // The value of an obvious key assignment: `api_key = "…"`, `"client_secret": "…"`, also
  // under a prefixed name (`OPENAI_API_KEY=…`, `x_secret_key: …`).
  {
    kind: "api_key",
    quick: (t) => /key|token|secret/i.test(t),
    regex:
      /(?<=(?<![A-Za-z0-9])(?:[A-Za-z0-9]{1,32}[_-]){0,3}(?:api[_-]?key|access[_-]?token|auth[_-]?token|secret[_-]?key|client[_-]?secret)["']?\s{0,4}[:=]\s{0,4}["']?)[A-Za-z0-9/+_.~-]{16,}/gi,
  },
  // `password=…`, `secret: …`, `"passwd": "…"`: any value of four or more characters up to a
  // quote, space or separator.
  {
    kind: "api_key",
    quick: (t) => /pass|pwd|secret/i.test(t),
    regex:
      /(?<=(?<![A-Za-z0-9])(?:password|passwd|passphrase|pwd|secret|[A-Za-z0-9]{1,32}[_-](?:password|passwd|secret))["']?\s{0,4}[:=]\s{0,4}["']?)[^\s"'&;,]{4,256}/gi,
    accept: (m) => !m.startsWith("[REDACTED:"),
  },
  // A value assigned to any name that ends in a secret word, whatever comes before it:
  // `GITHUB_TOKEN=…`, `SLACK_BOT_TOKEN: …`, `DB_ADMIN_PASSWORD=…`, `stripe-secret=…`,
  // `githubToken: "…"` (camel case only with a quoted value: `verifyPassword: check` is code).
  // Pagination cursors (`next_token`, `pageToken`), progress and governance tokens, variable references (`$GITHUB_TOKEN`,
  // `<token>`) and dotted code paths (`config.token`) are not secrets.
  {
    kind: "api_key",
    quick: (t) => /token|secret|pass|pwd|credential/i.test(t),
    regex:
      /(?<=(?<![A-Za-z0-9])(?!(?:page|next|prev|continuation|sync|cursor|resume|progress|governance)[_-])(?:[A-Za-z0-9]{1,32}[_-]){1,3}(?:token|secret|password|passwd|pwd|pass|passphrase|credentials?)["']?\s{0,4}[:=]\s{0,4}["']?)[^\s"'&;,()]{8,256}/gi,
    accept: (m) => !NOT_A_SECRET_VALUE.test(m),
  },
  {
    kind: "api_key",
    quick: (t) => /Token|Secret|Pass|Pwd|Credential/.test(t),
    regex:
      /(?<=(?<![A-Za-z0-9])(?!(?:page|next|prev|continuation|sync|cursor|resume|progress|governance)[A-Z])[a-z][a-z0-9]{0,31}(?:[A-Z][a-z0-9]{0,31}){0,3}(?:Token|Secret|Password|Passwd|Pwd|Passphrase|Credentials?)["']?\s{0,4}[:=]\s{0,4}["'])[^\s"'&;,()]{8,256}/g,
    accept: (m) => !NOT_A_SECRET_VALUE.test(m),
  },
  {
    kind: "email",
    quick: (t) => t.includes("@"),
    regex:
      /(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}(?![A-Za-z0-9-])/g,
  },
  // Obfuscated addresses: `bob [at] example [dot] com`, `bob(at)example.com`,
  // `bob at example dot com`, `bob@example[.]com`. A bare " at " needs an
  // obfuscated dot too, so "look at example.com" stays text.
  {
    kind: "email",
    quick: (t) => /[[({<]\s*(?:at|@|dot|\.)\s*[\])}>]|\sat\s|\sdot\s/i.test(t),
    regex:
      /(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}(?:\s{0,3}[[({<]\s{0,3}(?:at|@)\s{0,3}[\])}>]\s{0,3}|\s{1,3}at\s{1,3}|@)[A-Za-z0-9-]{1,63}(?:(?:\s{0,3}[[({<]\s{0,3}(?:dot|\.)\s{0,3}[\])}>]\s{0,3}|\s{1,3}dot\s{1,3}|\.)[A-Za-z0-9-]{1,63}){1,6}(?![A-Za-z0-9-])/gi,
    accept: (m) => {
      const bracketAt = /[[({<]\s*(?:at|@)\s*[\])}>]/i.test(m);
      const oddDot = /[[({<]\s*(?:dot|\.)\s*[\])}>]|\sdot\s/i.test(m);
      return (bracketAt || oddDot) && /[A-Za-z]{2,24}$/.test(m);
    },
  },
  {
    kind: "iban",
    quick: (t, digits) => digits >= 4 && /[A-Z]{2}\d{2}/.test(t),
    regex:
      /(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![A-Za-z0-9])/g,
    accept: ibanValid,
  },
  {
    kind: "card",
    // Thirteen digits in a run with at most one separator between two: hashes and ids with
    // letters between their digits do not wake the regex.
    quick: (_, digits, run) => digits >= 13 && run >= 13,
    // 13–19 digits, optionally grouped by single spaces, dashes or dots, not
    // part of a longer digit run nor of a token with letters beside the digits,
    // directly or across a dash or dot (a UUID's digit groups passed Luhn about
    // one time in ten).
    regex: /(?<!\d[ .-]?|[A-Za-z_][.-]?)[2-6]\d(?:[ .-]?\d){11,17}(?![ .-]?\d|[.-]?[A-Za-z_])/g,
    accept: luhnValid,
  },
  {
    kind: "phone",
    quick: (t, digits) => digits >= 8 && intlHead(t),
    // International: `+`, then contiguous digits, then groups that each
    // start with a separator or a parenthesis (so digits split one way only).
    regex: /(?<![\w+])\+[1-9]\d{0,14}(?:[ .-]?\(\d{1,5}\)|[ .-]\d{1,6}){0,6}(?![\w(]|[.-]?\d)/g,
    accept: digitCountWithin(8, 15),
  },
  {
    kind: "phone",
    quick: (t, digits) => digits >= 8 && NANP_TAIL.test(t),
    // North American: (415) 555-2671, 415-555-2671, 415.555.2671, 1-800-555-0199.
    regex: /(?<![\w+.-])(?:1[ .-])?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}(?![\w]|[.-]\d)/g,
  },
  {
    kind: "phone",
    quick: (t, digits) => digits >= 8 && trunkHead(t),
    // Trunk-prefix national: 020 7946 0958, 07700 900123, (030) 1234567, 01 23 45 67 89.
    regex:
      /(?<![\w+.-])(?:\(0[1-9]\d{0,3}\) ?|0[1-9]\d{0,3}[ .-])\d{2,8}(?:[ .-]\d{2,8}){0,3}(?![\w:]|[.-]?\d)/g,
    // "01.02.2024 14" has ten digits too: a leading date is not a phone.
    accept: (match) => !DATE_PREFIX.test(match) && digitCountWithin(10, 12)(match),
  },
];

/** Object keys whose string value is a secret whatever it looks like (`{"password": "hunter2"}`). */
const SECRET_NAME =
  /^(?:[A-Za-z0-9]{1,32}[_-]){0,3}(?:password|passwd|passphrase|pwd|secret|client[_-]?secret|api[_-]?key|secret[_-]?key|secret[_-]?access[_-]?key|private[_-]?key)$/i;

/** The same in camel case (`dbPassword`, `clientSecret`, `githubToken`). */
const SECRET_NAME_CAMEL =
  /^[a-z][a-z0-9]{0,31}(?:[A-Z][a-z0-9]{0,31}){0,3}(?:Password|Passwd|Passphrase|Pwd|Secret|ApiKey|SecretKey|PrivateKey|Token|Credentials?)$/;

/** Keys named for a token (`token`, `GITHUB_TOKEN`, `bot-token`): a value of 8 or more characters. */
const TOKEN_NAME = /^(?:[A-Za-z0-9]{1,32}[_-]){0,3}(?:token|credentials?)$/i;

/**
 * Pagination cursors, MCP progress tokens and Warden's own governance token (bound to one
 * session and its principal, useless to anyone else): named like tokens but not secret.
 */
const CURSOR_NAME =
  /^(?:page|next|prev|continuation|sync|cursor|resume|progress|governance)(?:[_-]|[A-Z])/i;

/** Keys seen before and whether they name a secret: envelopes repeat the same few keys. */
const NAMED_KEYS = new Map<string, boolean>();

/** Whether a value under `key` may be a secret by its name alone (see `secretByName`). */
function namesSecret(key: string): boolean {
  let named = NAMED_KEYS.get(key);
  if (named === undefined) {
    named = key === "seed" || SECRET_NAME.test(key) || TOKEN_NAME.test(key) ||
      SECRET_NAME_CAMEL.test(key);
    if (key.length <= 64) {
      if (NAMED_KEYS.size >= 4096) NAMED_KEYS.clear();
      NAMED_KEYS.set(key, named);
    }
  }
  return named;
}

/** A string value under `key` that is a secret by its name alone, and its kind. */
function secretByName(key: string, value: string): PiiKind | undefined {
  if (value.length < 4 || value.startsWith("[REDACTED:")) return undefined;
  // The seed in an operator.key file is its Ed25519 private key.
  if (key === "seed" && /^[A-Za-z0-9+/]{42,44}={0,2}$/.test(value)) return "private_key";
  const kind = /private/i.test(key) ? "private_key" : "api_key";
  if (SECRET_NAME.test(key)) return kind;
  if (CURSOR_NAME.test(key)) return undefined;
  const tokenLike = TOKEN_NAME.test(key) || SECRET_NAME_CAMEL.test(key);
  return tokenLike && value.length >= 8 && !NOT_A_SECRET_VALUE.test(value) ? kind : undefined;
}

/** The text that replaces a match of `kind`. */
export function placeholder(kind: PiiKind): string {
  return `[REDACTED:${kind}]`;
}

/**
 * Replaces every PII or secret match in `text` by its placeholder and counts
 * the matches per kind.
 *
 * @example
 * ```ts
 * import { redactText } from "./pii.ts";
 * redactText("mail bob@example.com").text; // "mail [REDACTED:email]"
 * ```
 */
export function redactText(
  text: string,
  seen?: Set<string>,
): { text: string; counts: Partial<Record<PiiKind, number>> } {
  return scanText(text, DETECTORS, seen) ?? { text, counts: {} };
}

/**
 * `redactText` over the detectors in `detectors` only; null when nothing
 * matched (the text is unchanged and there is nothing to count).
 */
function scanText(
  text: string,
  detectors: readonly Detector[],
  seen: Set<string> | undefined,
): { text: string; counts: Partial<Record<PiiKind, number>> } | null {
  if (detectors.length === 0) return null;
  let counts: Partial<Record<PiiKind, number>> | undefined;
  let out = text;
  let digits = digitCount(text);
  let run = lastRun;
  let b64 = lastB64of40;
  let measured = text;
  for (const { kind, regex, accept, quick } of detectors) {
    if (measured !== out) {
      // A replacement can split a longer run: measure the text this detector sees.
      digits = digitCount(out);
      run = lastRun;
      b64 = lastB64of40;
      measured = out;
    }
    if (!quick(out, digits, run, b64)) continue;
    regex.lastIndex = 0;
    out = out.replace(regex, (match: string, ...rest: unknown[]) => {
      // The offset is the argument before the whole string (no detector has named groups).
      const at = rest[rest.length - 2] as number;
      if (accept && !accept(match, out.slice(Math.max(0, at - 80), at))) return match;
      counts ??= {};
      // A repeat is still reported (count 0) so its path is known and redacted everywhere.
      counts[kind] = (counts[kind] ?? 0) + (firstSighting(seen, kind, match) ? 1 : 0);
      return placeholder(kind);
    });
  }
  return counts === undefined ? null : { text: out, counts };
}

/** The longest run of digits `digitCount` last saw, one `[ .-]` allowed between two. */
let lastRun = 0;

/** Whether the text `digitCount` last saw has a whole run of exactly 40 of `[A-Za-z0-9/+]`. */
let lastB64of40 = false;

/**
 * Digits in `text`; also sets `lastRun` and `lastB64of40` (the card and AWS secret detectors'
 * necessary conditions).
 */
function digitCount(text: string): number {
  let digits = 0;
  let run = 0;
  let best = 0;
  // 0: no digit before; 1: a digit just before; 2: a digit and one separator before.
  let state = 0;
  let b64 = 0;
  let of40 = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (
      (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 43 ||
      c === 47
    ) b64++;
    else {
      if (b64 === 40) of40 = true;
      b64 = 0;
    }
    if (c >= 48 && c <= 57) {
      digits++;
      run = state === 0 ? 1 : run + 1;
      if (run > best) best = run;
      state = 1;
    } else if (state === 1 && (c === 32 || c === 46 || c === 45)) state = 2;
    else state = 0;
  }
  lastRun = best;
  lastB64of40 = of40 || b64 === 40;
  return digits;
}

/**
 * Whether this is the first time `value` of `kind` is seen: with a `seen` set a
 * value found again (echoed in a result, repeated in a string) is redacted but
 * not counted again, so a finding is counted once. The set lives only for one
 * scan and never leaves memory.
 */
function firstSighting(seen: Set<string> | undefined, kind: PiiKind, value: string): boolean {
  if (seen === undefined) return true;
  const key = `${kind}\u0000${value}`;
  if (seen.has(key)) return false;
  seen.add(key);
  return true;
}

/** The redacted form of an object key, used for keys and for paths. */
export function redactKey(key: string): string {
  return redactText(key).text;
}

/** A long integer that could carry a card or phone number, as the text the detectors see. */
function numberText(node: number): string | undefined {
  return Number.isSafeInteger(node) && Math.abs(node) >= 1e7 ? String(node) : undefined;
}

/**
 * What one walk over `value` shows could fire anywhere in it: the detectors whose
 * cheap necessary condition holds for the text of all its strings, keys and long
 * integers together (each condition is a substring, a regex without anchors, or a
 * digit count, so it holds for the whole if it holds for any part; digits are the
 * most any one string has), and whether a key names a secret. Null for a cycle.
 * A scan then runs only those detectors, and a value where none can fire is not
 * scanned string by string at all: the per-string scan of every key and value of
 * an envelope made redaction about 0.1 ms a message.
 */
function plan(value: unknown): { detectors: readonly Detector[]; named: boolean } | null {
  const parts: string[] = [];
  const ancestors: object[] = [];
  let maxDigits = 0;
  let maxRun = 0;
  let b64of40 = false;
  let named = false;
  const text = (t: string) => {
    parts.push(t);
    const d = digitCount(t);
    if (d > maxDigits) maxDigits = d;
    if (lastRun > maxRun) maxRun = lastRun;
    if (lastB64of40) b64of40 = true;
  };
  const walk = (node: unknown): boolean => {
    if (typeof node === "string") {
      text(node);
      return true;
    }
    if (typeof node === "number") {
      const t = numberText(node);
      if (t !== undefined) text(t);
      return true;
    }
    if (typeof node !== "object" || node === null) return true;
    if (ancestors.includes(node)) return false;
    ancestors.push(node);
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) if (!walk(node[i])) return false;
    } else {
      for (const key in node) {
        if (!Object.hasOwn(node, key)) continue;
        text(key);
        if (!named && namesSecret(key)) named = true;
        if (!walk((node as Record<string, unknown>)[key])) return false;
      }
    }
    ancestors.pop();
    return true;
  };
  if (!walk(value)) return null;
  let all = parts.join("\u0000");
  const detectors: Detector[] = [];
  for (const d of DETECTORS) {
    // Once a detector may fire, its replacement may leave a 40-character run behind.
    if (!d.quick(all, maxDigits, maxRun, b64of40 || detectors.length > 0)) continue;
    detectors.push(d);
    // A detector that fires leaves its placeholder for the later ones to see.
    all += `\u0000${placeholder(d.kind)}`;
  }
  return { detectors, named };
}

/**
 * Returns a deep copy of `value` with every PII or secret match replaced by
 * `[REDACTED:<kind>]`, in strings, object keys and long integers (a card
 * number sent as a JSON number becomes the placeholder string), plus the
 * findings by path and kind. Findings never contain the matched text, and
 * their paths use redacted keys. Non-JSON values (functions, symbols) are
 * copied as is; a cycle becomes null.
 *
 * @example
 * ```ts
 * import { redact } from "./pii.ts";
 * const { value, findings } = redact({ card: "4111 1111 1111 1111" });
 * // value: { card: "[REDACTED:card]" }
 * // findings: [{ kind: "card", path: "$.card", count: 1 }]
 * ```
 */
export function redact(
  value: unknown,
  root = "$",
  seen?: Set<string>,
): { value: unknown; findings: Finding[] } {
  return walkRedacting(value, root, seen, true);
}

/**
 * `value` itself when `redact` would change nothing in it, else its redacted
 * copy: for callers that only serialise the result (stored stream events), so
 * a clean message is not copied.
 */
export function redacted(value: unknown): unknown {
  const p = plan(value);
  if (p !== null && p.detectors.length === 0 && !p.named) return value;
  return walkRedacting(value, "$", undefined, true, p).value;
}

/** A deep copy of an acyclic JSON-like value ("__proto__" kept as a key). */
function plainCopy(node: unknown): unknown {
  if (typeof node !== "object" || node === null) return node;
  if (Array.isArray(node)) return node.map(plainCopy);
  const object: Record<string, unknown> = {};
  for (const key in node) {
    if (!Object.hasOwn(node, key)) continue;
    const kept = plainCopy((node as Record<string, unknown>)[key]);
    if (key === "__proto__") {
      Object.defineProperty(object, key, {
        value: kept,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    } else object[key] = kept;
  }
  return object;
}

function walkRedacting(
  value: unknown,
  root: string,
  seen: Set<string> | undefined,
  copying: boolean,
  given?: ReturnType<typeof plan>,
): { value: unknown; findings: Finding[] } {
  const p = given === undefined ? plan(value) : given;
  if (p !== null && p.detectors.length === 0 && !p.named) {
    // Nothing can fire anywhere: no findings, and the copy is a plain one.
    return { value: copying ? plainCopy(value) : undefined, findings: [] };
  }
  // A cycle: scan with every detector, as before the plan existed.
  const detectors = p === null ? DETECTORS : p.detectors;
  const named = p === null || p.named;
  const findings = new Map<string, Finding>();
  const ancestors: object[] = [];
  // The path is built only when something is found at it.
  const segments: (string | number)[] = [];
  const pathNow = () => {
    let path = root;
    for (const s of segments) path = typeof s === "number" ? indexPath(path, s) : keyPath(path, s);
    return path;
  };

  function record(counts: Partial<Record<PiiKind, number>>): void {
    const path = pathNow();
    for (const kind of PII_KINDS) {
      const count = counts[kind];
      if (count === undefined) continue;
      const key = `${path}\u0000${kind}`;
      const same = findings.get(key);
      if (same) same.count += count;
      else findings.set(key, { kind, path, count });
    }
  }

  function copy(node: unknown): unknown {
    if (typeof node === "string") {
      const hit = scanText(node, detectors, seen);
      if (hit === null) return node;
      record(hit.counts);
      return hit.text;
    }
    if (typeof node === "number") {
      // Only long integers can carry a card or phone number.
      const t = numberText(node);
      if (t === undefined) return node;
      const hit = scanText(t, detectors, seen);
      if (hit === null || hit.text === t) return node;
      record(hit.counts);
      return hit.text;
    }
    if (typeof node !== "object" || node === null) return node;
    if (ancestors.includes(node)) return null;
    ancestors.push(node);
    let out: unknown;
    if (Array.isArray(node)) {
      const list: unknown[] = copying ? new Array(node.length) : [];
      for (let i = 0; i < node.length; i++) {
        segments.push(i);
        const child = copy(node[i]);
        if (copying) list[i] = child;
        segments.pop();
      }
      out = list;
    } else {
      const object: Record<string, unknown> = {};
      for (const key in node) {
        if (!Object.hasOwn(node, key)) continue;
        const child = (node as Record<string, unknown>)[key];
        const hit = scanText(key, detectors, seen);
        const label = hit === null ? key : hit.text;
        segments.push(label);
        if (hit !== null) record(hit.counts);
        let name = label;
        // Two keys can redact to the same text; keep both values.
        for (let n = 2; Object.hasOwn(object, name); n++) name = `${label} (${n})`;
        const secret = named && typeof child === "string" ? secretByName(key, child) : undefined;
        if (secret) record({ [secret]: firstSighting(seen, secret, child as string) ? 1 : 0 });
        const kept = secret ? placeholder(secret) : copy(child);
        if (copying) {
          if (name === "__proto__") {
            // defineProperty, not assignment: a "__proto__" key stays a key.
            Object.defineProperty(object, name, {
              value: kept,
              enumerable: true,
              writable: true,
              configurable: true,
            });
          } else object[name] = kept;
        }
        segments.pop();
      }
      out = object;
    }
    ancestors.pop();
    return out;
  }

  const out = copy(value);
  return { value: out, findings: [...findings.values()] };
}

/**
 * The findings `redact` would report for `value`, without keeping the copy.
 *
 * @example
 * ```ts
 * import { findPii } from "./pii.ts";
 * findPii(["ok", "bob@example.com"], "arguments"); // [{ kind: "email", path: "arguments[1]", count: 1 }]
 * ```
 */
export function findPii(
  value: unknown,
  root = "$",
  seen: Set<string> = new Set(),
): Finding[] {
  return walkRedacting(value, root, seen, false).findings;
}

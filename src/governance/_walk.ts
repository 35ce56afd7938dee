// Walking JSON-like values for the text scanners (F6, F9, F12) and naming
// where a finding sits. Paths read like `arguments.user["e-mail"][0]`, as in
// canonical_json's error messages.

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** Path of property `label` under `path`. */
export function keyPath(path: string, label: string): string {
  return IDENTIFIER.test(label) ? `${path}.${label}` : `${path}[${JSON.stringify(label)}]`;
}

/** Path of array element `index` under `path`. */
export function indexPath(path: string, index: number): string {
  return `${path}[${index}]`;
}

/**
 * Called for every string found: a value, or an object key (then `isKey`). `path` gives its
 * path; call it only while visiting (most strings match nothing, and their paths, with a
 * redacted label for every key on the way, were most of a scan's cost).
 */
export type Visit = (text: string, path: () => string, isKey: boolean) => void;

/**
 * Calls `visit` for every string in `value`, object keys included. A key is
 * visited with the path of its property. `label` turns a key into its path
 * segment: the scanners pass a redacting label so that a secret used as a
 * key never reaches a path, and so never a floor's details.
 */
export function visitStrings(
  value: unknown,
  root: string,
  options: { visit: Visit; label: (key: string) => string },
): void {
  const { visit, label } = options;
  const ancestors: object[] = [];
  const segments: (string | number)[] = [];
  const pathNow = () => {
    let path = root;
    for (const s of segments) {
      path = typeof s === "number" ? indexPath(path, s) : keyPath(path, label(s));
    }
    return path;
  };
  function walk(node: unknown): void {
    if (typeof node === "string") {
      visit(node, pathNow, false);
      return;
    }
    if (typeof node !== "object" || node === null || ancestors.includes(node)) return;
    ancestors.push(node);
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) {
        segments.push(i);
        walk(node[i]);
        segments.pop();
      }
    } else {
      for (const [key, child] of Object.entries(node)) {
        segments.push(key);
        visit(key, pathNow, true);
        walk(child);
        segments.pop();
      }
    }
    ancestors.pop();
  }
  walk(value);
}

/** A pattern a scanner counts, by name. */
export interface NamedPattern {
  name: string;
  /** Must carry the `g` flag. */
  regex: RegExp;
}

/** Where a named pattern matched, and how often. */
export interface PatternMatch {
  pattern: string;
  path: string;
  count: number;
}

/** Counts every pattern in every string of `value`, grouped by path then pattern. */
export function scanPatterns(
  value: unknown,
  root: string,
  options: {
    patterns: readonly NamedPattern[];
    label: (key: string) => string;
    /** A necessary condition for any pattern to match; texts failing it are skipped. */
    prefilter?: RegExp;
  },
): PatternMatch[] {
  const matches = new Map<string, PatternMatch>();
  visitStrings(value, root, {
    label: options.label,
    visit(text, pathOf) {
      if (options.prefilter && !options.prefilter.test(text)) return;
      let path: string | undefined;
      for (const { name, regex } of options.patterns) {
        const count = countMatches(regex, text);
        if (count === 0) continue;
        path ??= pathOf();
        const key = `${path}\u0000${name}`;
        const same = matches.get(key);
        if (same) same.count += count;
        else matches.set(key, { pattern: name, path, count });
      }
    },
  });
  return [...matches.values()];
}

/** Number of matches of a global `regex` in `text`. */
export function countMatches(regex: RegExp, text: string): number {
  regex.lastIndex = 0;
  let count = 0;
  let match: RegExpExecArray | null;
  while ((match = regex.exec(text)) !== null) {
    count++;
    // A zero-length match would otherwise be found again at the same index.
    if (match[0] === "") regex.lastIndex++;
  }
  return count;
}

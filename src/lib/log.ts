/**
 * Structured logging: one JSON object per line on stderr, so stdout stays free
 * for the stdio transport. Secrets never reach a log line: callers pass
 * fields, any field whose name looks like a credential is masked here, and
 * `withRedaction` runs every line through the vault's secret detectors.
 */
import type { LogLevel } from "../config.ts";

/** A logger bound to a level and optional fixed fields. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  /** Logs at info level regardless of the threshold (start-up facts such as the bound URL). */
  always(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const SECRET_FIELD = /token|secret|password|authorization|cookie|private|signing_key/i;

function mask(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) {
    if (SECRET_FIELD.test(k)) out[k] = "[redacted]";
    else if (v instanceof Error) out[k] = { name: v.name, message: v.message };
    else out[k] = v;
  }
  return out;
}

/**
 * Creates a logger writing JSON lines to `write` (stderr by default).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createLogger } from "./log.ts";
 * const lines: string[] = [];
 * const log = createLogger({ level: "info", write: (line) => lines.push(line) });
 * log.info("listening", { url: "http://127.0.0.1:8000" });
 * log.debug("not written below info");
 * assert.equal(lines.length, 1);
 * assert.equal(JSON.parse(lines[0]).msg, "listening");
 * ```
 */
export function createLogger(
  options: {
    level?: LogLevel;
    fields?: Record<string, unknown>;
    write?: (line: string) => void;
  } = {},
): Logger {
  const threshold = ORDER[options.level ?? "info"];
  const base = options.fields ?? {};
  const encoder = new TextEncoder();
  const write = options.write ??
    ((line: string) => {
      try {
        Deno.stderr.writeSync(encoder.encode(line + "\n"));
      } catch {
        // stderr closed (parent went away): logging must never crash the server.
      }
    });
  function emit(level: LogLevel, msg: string, fields?: Record<string, unknown>, force = false) {
    if (!force && ORDER[level] < threshold) return;
    write(JSON.stringify({
      time: new Date().toISOString(),
      level,
      msg,
      ...mask({ ...base, ...fields }),
    }));
  }
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    always: (m, f) => emit("info", m, f, true),
    child: (fields) =>
      createLogger({ level: options.level, fields: { ...base, ...fields }, write }),
  };
}

const REDACTING = new WeakSet<Logger>();

/**
 * A logger whose lines — message and fields, at any depth — pass through
 * `redact` first (the app passes F6's detectors: an upstream's stderr line, an
 * error a client sent back, may carry a key). Masking by field name still
 * applies after it. Wrapping a logger that already redacts returns it as is.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createLogger, withRedaction } from "./log.ts";
 * const lines: string[] = [];
 * const inner = createLogger({ level: "info", write: (line) => lines.push(line) });
 * const log = withRedaction(
 *   inner,
 *   (v) => JSON.parse(JSON.stringify(v).replaceAll("hunter2", "[redacted]")),
 * );
 * log.warn("upstream stderr", { line: "password hunter2" });
 * assert.equal(JSON.parse(lines[0]).line, "password [redacted]");
 * ```
 */
export function withRedaction(inner: Logger, redact: (value: unknown) => unknown): Logger {
  if (REDACTING.has(inner)) return inner;
  const clean = (msg: string, fields?: Record<string, unknown>) => {
    const errors = fields === undefined ? undefined : Object.fromEntries(
      Object.entries(fields).map((
        [k, v],
      ) => [k, v instanceof Error ? { name: v.name, message: v.message } : v]),
    );
    const out = redact({ msg, fields: errors ?? {} }) as {
      msg: string;
      fields: Record<string, unknown>;
    };
    return [out.msg, out.fields] as const;
  };
  const logger: Logger = {
    debug: (m, f) => inner.debug(...clean(m, f)),
    info: (m, f) => inner.info(...clean(m, f)),
    warn: (m, f) => inner.warn(...clean(m, f)),
    error: (m, f) => inner.error(...clean(m, f)),
    always: (m, f) => inner.always(...clean(m, f)),
    child: (fields) => withRedaction(inner.child(clean("", fields)[1]), redact),
  };
  REDACTING.add(logger);
  return logger;
}

/** A logger that drops everything (tests that do not assert on logs). */
export const silentLogger: Logger = createLogger({ level: "error", write: () => {} });

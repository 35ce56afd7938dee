/**
 * The `get_time` and `convert_time` tools, modelled on the reference MCP
 * `time` server. Zone offsets come from `Intl.DateTimeFormat`, so the IANA
 * data is whatever the runtime's ICU ships; no dependency is needed.
 *
 * @module
 */
import { z } from "zod";
import { defineTool, ToolError } from "../calls/mod.ts";
import { READ_ONLY } from "./_annotations.ts";

/** One instant as seen in one time zone. */
export interface ZonedTime {
  /** The zone name as the caller spelled it (case corrected where known). */
  readonly timezone: string;
  /** ISO 8601 local date-time with offset, to the second: `2026-11-23T10:15:00+01:00`. */
  readonly datetime: string;
  readonly unix_ms: number;
  /** `+01:00`; `+00:00` for UTC. Historic zones may carry seconds: `-00:25:21`. */
  readonly utc_offset: string;
  /** True when the offset is the larger of the zone's January and July offsets. */
  readonly is_dst: boolean;
}

/** Result of {@link convertTime}. */
export interface TimeConversion {
  readonly source: Omit<ZonedTime, "unix_ms">;
  readonly target: Omit<ZonedTime, "unix_ms">;
  /** Target offset minus source offset in hours, formatted like the MCP time server: `+5.5h`. */
  readonly time_difference: string;
}

/** Options shared by the domain functions. */
export interface ClockOptions {
  /** The current instant; defaults to `new Date()`. Tests inject a fixed one. */
  readonly now?: Date;
}

const MS_PER_MINUTE = 60_000;
const MS_PER_HOUR = 3_600_000;
const MS_PER_DAY = 86_400_000;

const formatters = new Map<string, Intl.DateTimeFormat>();
let knownZones: Map<string, string> | undefined;

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (formatter === undefined) {
    formatter = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

/**
 * Check that `name` is a time zone the runtime knows and return the spelling
 * to report. ICU canonicalises to legacy names (`Asia/Kolkata` resolves to
 * `Asia/Calcutta`), so a valid name is echoed as given unless only its case
 * differs from a known one.
 *
 * @throws {RangeError} `Unknown time zone "Mars/Base"`.
 *
 * @example
 * ```ts
 * resolveTimeZone("europe/berlin"); // "Europe/Berlin"
 * ```
 */
export function resolveTimeZone(name: string): string {
  let resolved: string;
  try {
    resolved = formatterFor(name).resolvedOptions().timeZone;
  } catch {
    throw new RangeError(`Unknown time zone "${name}"`);
  }
  if (name === resolved) return name;
  knownZones ??= new Map(
    [...Intl.supportedValuesOf("timeZone"), "UTC"].map((zone) => [zone.toLowerCase(), zone]),
  );
  const lower = name.toLowerCase();
  return knownZones.get(lower) ?? (lower === resolved.toLowerCase() ? resolved : name);
}

// Date.UTC maps years 0..99 to 1900..1999; setUTCFullYear does not.
function utcFromFields(fields: readonly number[]): number {
  const [year, month, day, hour = 0, minute = 0, second = 0, ms = 0] = fields;
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, ms);
  return date.getTime();
}

/**
 * The zone's offset from UTC at `epochMs`, in milliseconds (east positive).
 * Read from the zone's wall clock rather than from a `longOffset` name so
 * second-precision historic offsets come out exact.
 */
export function zoneOffsetMs(timeZone: string, epochMs: number): number {
  const parts = formatterFor(timeZone).formatToParts(epochMs);
  const field = (type: Intl.DateTimeFormatPartTypes) =>
    Number(parts.find((part) => part.type === type)?.value);
  const wallClock = utcFromFields([
    field("year"),
    field("month"),
    field("day"),
    field("hour"),
    field("minute"),
    field("second"),
  ]);
  const wholeSecond = epochMs - (((epochMs % 1000) + 1000) % 1000);
  return wallClock - wholeSecond;
}

function pad(value: number, width = 2): string {
  return String(value).padStart(width, "0");
}

/** `+05:30`, `-03:00`, `+00:00`; seconds only when the offset has them. */
export function formatOffset(offsetMs: number): string {
  const sign = offsetMs < 0 ? "-" : "+";
  const totalSeconds = Math.round(Math.abs(offsetMs) / 1000);
  const hours = Math.floor(totalSeconds / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = totalSeconds % 60;
  return `${sign}${pad(hours)}:${pad(minutes)}${seconds === 0 ? "" : `:${pad(seconds)}`}`;
}

function isoLocal(epochMs: number, offsetMs: number): string {
  const local = new Date(epochMs + offsetMs);
  const date = `${pad(local.getUTCFullYear(), 4)}-${pad(local.getUTCMonth() + 1)}-${
    pad(local.getUTCDate())
  }`;
  const time = `${pad(local.getUTCHours())}:${pad(local.getUTCMinutes())}:${
    pad(local.getUTCSeconds())
  }`;
  return `${date}T${time}${formatOffset(offsetMs)}`;
}

function isDst(timeZone: string, epochMs: number, offsetMs: number): boolean {
  const year = new Date(epochMs).getUTCFullYear();
  const january = zoneOffsetMs(timeZone, utcFromFields([year, 1, 1]));
  const july = zoneOffsetMs(timeZone, utcFromFields([year, 7, 1]));
  // Comparing with both solstice-side months works in either hemisphere: Sydney
  // observes DST in January, Berlin in July.
  return january !== july && offsetMs === Math.max(january, july);
}

// `timezone` must come from resolveTimeZone, whose answers Intl always accepts.
function zonedTime(timezone: string, epochMs: number): ZonedTime {
  const offset = zoneOffsetMs(timezone, epochMs);
  return {
    timezone,
    datetime: isoLocal(epochMs, offset),
    unix_ms: epochMs,
    utc_offset: formatOffset(offset),
    is_dst: isDst(timezone, epochMs, offset),
  };
}

/**
 * The current time in an IANA time zone.
 *
 * @throws {RangeError} for an unknown zone.
 *
 * @example
 * ```ts
 * getTime("Asia/Kolkata", { now: new Date("2026-01-15T12:00:00Z") }).datetime;
 * // "2026-01-15T17:30:00+05:30"
 * ```
 */
export function getTime(timezone = "UTC", options: ClockOptions = {}): ZonedTime {
  return zonedTime(resolveTimeZone(timezone), (options.now ?? new Date()).getTime());
}

/**
 * The instant at which the wall clock in `timeZone` shows `localMs` (a local
 * date-time encoded as if it were UTC). Ambiguous times in a fall-back overlap
 * take the earlier instant; times skipped by a spring-forward gap are read
 * with the offset from before the gap, so 02:30 becomes 03:30 — the
 * "compatible" rule of Temporal and of RFC 5545.
 */
export function wallClockToEpoch(timeZone: string, localMs: number): number {
  const before = zoneOffsetMs(timeZone, localMs - MS_PER_DAY);
  const after = zoneOffsetMs(timeZone, localMs + MS_PER_DAY);
  const candidates = [...new Set([before, after])]
    .map((offset) => localMs - offset)
    .filter((epoch) => localMs - zoneOffsetMs(timeZone, epoch) === epoch)
    .sort((a, b) => a - b);
  return candidates[0] ?? localMs - before;
}

const CLOCK_TIME = /^(\d{1,2}):(\d{2})(?::(\d{2}))?$/;
const ISO_DATETIME =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

function checkClock(text: string, [hour, minute, second]: readonly number[]): void {
  if (hour > 23 || minute > 59 || second > 59) {
    throw new RangeError(`Time "${text}" is out of range: hours run 00-23, minutes 00-59`);
  }
}

/**
 * Read `time` as an instant. `HH:MM` (or `HH:MM:SS`) is today's date in the
 * source zone at that wall-clock time; an ISO date-time without offset is a
 * wall-clock time in the source zone; one with `Z` or an offset is absolute.
 */
function parseSourceTime(time: string, { timeZone, now }: { timeZone: string; now: Date }): number {
  const text = time.trim();
  const clock = CLOCK_TIME.exec(text);
  if (clock) {
    const fields = clock.slice(1).map((part) => Number(part ?? 0));
    checkClock(text, fields);
    const nowMs = now.getTime();
    const today = new Date(nowMs + zoneOffsetMs(timeZone, nowMs));
    const local = utcFromFields([
      today.getUTCFullYear(),
      today.getUTCMonth() + 1,
      today.getUTCDate(),
      ...fields,
    ]);
    return wallClockToEpoch(timeZone, local);
  }
  const iso = ISO_DATETIME.exec(text);
  if (iso === null) {
    throw new RangeError(
      `Cannot read time "${time}": expected HH:MM (24-hour) or an ISO 8601 date-time such as ` +
        `2026-03-29T14:30 or 2026-03-29T14:30:00+02:00`,
    );
  }
  const [year, month, day, hour, minute, second] = iso.slice(1, 7).map((part) => Number(part ?? 0));
  const ms = Number((iso[7] ?? "").padEnd(3, "0").slice(0, 3));
  checkClock(text, [hour, minute, second]);
  const local = utcFromFields([year, month, day, hour, minute, second, ms]);
  const check = new Date(local);
  if (month < 1 || month > 12 || check.getUTCDate() !== day) {
    throw new RangeError(`Date in "${time}" does not exist`);
  }
  const designator = iso[8];
  if (designator === undefined) return wallClockToEpoch(timeZone, local);
  if (designator.toUpperCase() === "Z") return local;
  const digits = designator.replace(":", "");
  const [offsetHours, offsetMins] = [Number(digits.slice(1, 3)), Number(digits.slice(3, 5) || 0)];
  if (offsetHours > 23 || offsetMins > 59) {
    throw new RangeError(`Offset "${designator}" in "${time}" is out of range`);
  }
  const offsetMinutes = offsetHours * 60 + offsetMins;
  return local - (designator[0] === "-" ? -1 : 1) * offsetMinutes * MS_PER_MINUTE;
}

/** Hours as the MCP time server prints them: `+13.0h`, `+5.5h`, `+5.75h`, `-3.5h`. */
export function formatTimeDifference(differenceMs: number): string {
  const hours = differenceMs / MS_PER_HOUR;
  const sign = hours < 0 ? "-" : "+";
  const magnitude = Math.abs(hours);
  const digits = Number.isInteger(magnitude)
    ? magnitude.toFixed(1)
    : magnitude.toFixed(2).replace(/0+$/, "").replace(/\.$/, "");
  return `${sign}${digits}h`;
}

/** What {@link convertTime} converts. */
export interface ConvertTimeRequest {
  readonly sourceTimezone: string;
  /** `HH:MM` 24-hour (today in the source zone) or an ISO 8601 date-time. */
  readonly time: string;
  readonly targetTimezone: string;
}

/**
 * Convert a time from one IANA zone to another.
 *
 * @throws {RangeError} for an unknown zone or an unreadable time.
 *
 * @example
 * ```ts
 * convertTime(
 *   { sourceTimezone: "Europe/London", time: "2026-01-15T09:00", targetTimezone: "Asia/Kolkata" },
 * ).target.datetime; // "2026-01-15T14:30:00+05:30"
 * ```
 */
export function convertTime(
  request: ConvertTimeRequest,
  options: ClockOptions = {},
): TimeConversion {
  const sourceName = resolveTimeZone(request.sourceTimezone);
  const targetName = resolveTimeZone(request.targetTimezone);
  const epochMs = parseSourceTime(request.time, {
    timeZone: sourceName,
    now: options.now ?? new Date(),
  });
  const { unix_ms: _source, ...source } = zonedTime(sourceName, epochMs);
  const { unix_ms: _target, ...target } = zonedTime(targetName, epochMs);
  const difference = zoneOffsetMs(targetName, epochMs) - zoneOffsetMs(sourceName, epochMs);
  return { source, target, time_difference: formatTimeDifference(difference) };
}

function asToolError(error: unknown): never {
  if (error instanceof RangeError) throw new ToolError(error.message);
  throw error;
}

const zoneName = z.string().min(1).max(64);

const zonedTimeSchema = z.object({
  timezone: z.string().describe("The IANA time zone."),
  datetime: z.string().describe("ISO 8601 local date-time with UTC offset, to the second."),
  utc_offset: z.string().describe('Offset from UTC, e.g. "+05:30".'),
  is_dst: z.boolean().describe("Whether daylight saving time is in effect."),
});

/** The `get_time` tool. */
export const getTimeTool = defineTool({
  name: "get_time",
  title: "Current time",
  description: "Get the current date and time in an IANA time zone, with its UTC offset and " +
    "whether daylight saving time is in effect.",
  inputSchema: z.object({
    timezone: zoneName.default("UTC").describe(
      'IANA time zone name such as "Europe/Berlin" or "America/New_York"; defaults to "UTC".',
    ),
  }),
  outputSchema: zonedTimeSchema.extend({
    unix_ms: z.number().int().describe("Milliseconds since the Unix epoch."),
  }),
  annotations: READ_ONLY,
  handler({ timezone }) {
    try {
      const data = getTime(timezone);
      const dst = data.is_dst ? ", daylight saving time" : "";
      return { data, text: `${data.datetime} in ${data.timezone} (UTC${data.utc_offset}${dst})` };
    } catch (error) {
      return asToolError(error);
    }
  },
});

/** The `convert_time` tool. */
export const convertTimeTool = defineTool({
  name: "convert_time",
  title: "Convert time between zones",
  description: "Convert a time from one IANA time zone to another. A bare HH:MM means that " +
    "time today in the source zone; an ISO 8601 date-time names another day.",
  inputSchema: z.object({
    source_timezone: zoneName.describe(
      'IANA time zone the time is given in, e.g. "Europe/London".',
    ),
    time: z.string().min(1).max(64).describe(
      'The time to convert: "HH:MM" in 24-hour form (today in the source zone), or an ISO 8601 ' +
        'date-time such as "2026-03-29T14:30"; with "Z" or an offset it is an exact instant.',
    ),
    target_timezone: zoneName.describe('IANA time zone to convert to, e.g. "Asia/Kolkata".'),
  }),
  outputSchema: z.object({
    source: zonedTimeSchema.describe("The time in the source zone."),
    target: zonedTimeSchema.describe("The same instant in the target zone."),
    time_difference: z.string().describe('Target offset minus source offset, e.g. "+5.5h".'),
  }),
  annotations: READ_ONLY,
  handler({ source_timezone, time, target_timezone }) {
    try {
      const data = convertTime({
        sourceTimezone: source_timezone,
        time,
        targetTimezone: target_timezone,
      });
      return {
        data,
        text: `${data.source.datetime} (${data.source.timezone}) = ${data.target.datetime} ` +
          `(${data.target.timezone}), ${data.time_difference}`,
      };
    } catch (error) {
      return asToolError(error);
    }
  },
});

import assert from "node:assert/strict";
import type { ToolContext } from "../../src/calls/mod.ts";
import {
  convertTime,
  convertTimeTool,
  formatOffset,
  formatTimeDifference,
  getTime,
  getTimeTool,
  resolveTimeZone,
  wallClockToEpoch,
  zoneOffsetMs,
} from "../../src/tools/time.ts";
import { ToolError } from "../../src/calls/tool.ts";

// Pure handlers use no services; the context carries only what they read.
const ctx = { principal: "test", signal: new AbortController().signal } as unknown as ToolContext;
const JANUARY = new Date("2026-01-15T12:00:00Z");
const JULY = new Date("2026-07-15T12:00:00Z");
const HOUR = 3_600_000;

Deno.test("getTime() detects DST in Europe/Berlin by comparing January and July", () => {
  assert.deepEqual(getTime("Europe/Berlin", { now: JANUARY }), {
    timezone: "Europe/Berlin",
    datetime: "2026-01-15T13:00:00+01:00",
    unix_ms: JANUARY.getTime(),
    utc_offset: "+01:00",
    is_dst: false,
  });
  const summer = getTime("Europe/Berlin", { now: JULY });
  assert.equal(summer.datetime, "2026-07-15T14:00:00+02:00");
  assert.equal(summer.is_dst, true);
});

Deno.test("getTime() detects southern-hemisphere DST in Australia/Sydney", () => {
  assert.equal(getTime("Australia/Sydney", { now: JANUARY }).is_dst, true);
  assert.equal(getTime("Australia/Sydney", { now: JULY }).is_dst, false);
});

Deno.test("getTime() handles half- and quarter-hour zones", () => {
  const kolkata = getTime("Asia/Kolkata", { now: JANUARY });
  assert.equal(kolkata.datetime, "2026-01-15T17:30:00+05:30");
  assert.equal(kolkata.utc_offset, "+05:30");
  assert.equal(kolkata.is_dst, false);
  assert.equal(getTime("Asia/Kathmandu", { now: JANUARY }).utc_offset, "+05:45");
  assert.equal(getTime("America/St_Johns", { now: JANUARY }).utc_offset, "-03:30");
});

Deno.test("getTime() defaults to UTC and truncates to the second", () => {
  const now = new Date("2026-11-23T09:15:00.987Z");
  assert.deepEqual(getTime(undefined, { now }), {
    timezone: "UTC",
    datetime: "2026-11-23T09:15:00+00:00",
    unix_ms: now.getTime(),
    utc_offset: "+00:00",
    is_dst: false,
  });
});

Deno.test("resolveTimeZone() fixes case and keeps the caller's modern name", () => {
  assert.equal(resolveTimeZone("europe/berlin"), "Europe/Berlin");
  assert.equal(resolveTimeZone("utc"), "UTC");
  // ICU canonicalises this to the legacy Asia/Calcutta; callers asked for Kolkata.
  assert.equal(resolveTimeZone("Asia/Kolkata"), "Asia/Kolkata");
  assert.throws(
    () => resolveTimeZone("Mars/Base"),
    new RangeError('Unknown time zone "Mars/Base"'),
  );
});

Deno.test("zoneOffsetMs() reads second-precision historic offsets", () => {
  // Dublin Mean Time was UTC-00:25:21 until 1916 (tzdata Europe/Dublin).
  const offset = zoneOffsetMs("Europe/Dublin", Date.UTC(1890, 0, 1, 12));
  assert.equal(offset, -(25 * 60 + 21) * 1000);
  assert.equal(formatOffset(offset), "-00:25:21");
});

Deno.test("formatTimeDifference() prints hours like the MCP time server", () => {
  assert.equal(formatTimeDifference(13 * HOUR), "+13.0h");
  assert.equal(formatTimeDifference(5.5 * HOUR), "+5.5h");
  assert.equal(formatTimeDifference(5.75 * HOUR), "+5.75h");
  assert.equal(formatTimeDifference(-3.5 * HOUR), "-3.5h");
  assert.equal(formatTimeDifference(0), "+0.0h");
});

Deno.test("convertTime() reads HH:MM as today in the source zone", () => {
  const result = convertTime(
    { sourceTimezone: "Europe/London", time: "09:00", targetTimezone: "Asia/Kolkata" },
    { now: JANUARY },
  );
  assert.deepEqual(result, {
    source: {
      timezone: "Europe/London",
      datetime: "2026-01-15T09:00:00+00:00",
      utc_offset: "+00:00",
      is_dst: false,
    },
    target: {
      timezone: "Asia/Kolkata",
      datetime: "2026-01-15T14:30:00+05:30",
      utc_offset: "+05:30",
      is_dst: false,
    },
    time_difference: "+5.5h",
  });
});

Deno.test("convertTime() takes 'today' from the source zone, not from UTC", () => {
  // 23:30 UTC on 15 January is already 16 January in Tokyo.
  const result = convertTime(
    { sourceTimezone: "Asia/Tokyo", time: "08:00", targetTimezone: "UTC" },
    { now: new Date("2026-01-15T23:30:00Z") },
  );
  assert.equal(result.source.datetime, "2026-01-16T08:00:00+09:00");
  assert.equal(result.target.datetime, "2026-01-15T23:00:00+00:00");
  assert.equal(result.time_difference, "-9.0h");
});

Deno.test("convertTime() accepts ISO date-times with and without offset", () => {
  const local = convertTime({
    sourceTimezone: "America/New_York",
    time: "2026-07-04T12:00",
    targetTimezone: "Europe/Berlin",
  });
  assert.equal(local.source.datetime, "2026-07-04T12:00:00-04:00");
  assert.equal(local.source.is_dst, true);
  assert.equal(local.target.datetime, "2026-07-04T18:00:00+02:00");
  assert.equal(local.time_difference, "+6.0h");

  const absolute = convertTime({
    sourceTimezone: "America/New_York",
    time: "2026-07-04T12:00:00Z",
    targetTimezone: "Asia/Kathmandu",
  });
  assert.equal(absolute.source.datetime, "2026-07-04T08:00:00-04:00");
  assert.equal(absolute.target.datetime, "2026-07-04T17:45:00+05:45");
  assert.equal(absolute.time_difference, "+9.75h");
});

Deno.test("wallClockToEpoch() resolves DST gaps forward and overlaps to the earlier instant", () => {
  // Berlin skips 02:00-03:00 on 2026-03-29 and repeats 02:00-03:00 on 2026-10-25.
  const gap = wallClockToEpoch("Europe/Berlin", Date.UTC(2026, 2, 29, 2, 30));
  assert.equal(new Date(gap).toISOString(), "2026-03-29T01:30:00.000Z"); // 03:30 CEST
  const overlap = wallClockToEpoch("Europe/Berlin", Date.UTC(2026, 9, 25, 2, 30));
  assert.equal(new Date(overlap).toISOString(), "2026-10-25T00:30:00.000Z"); // first 02:30, CEST
});

Deno.test("convertTime() rejects unreadable times and impossible dates", () => {
  const convert = (time: string) =>
    convertTime({ sourceTimezone: "UTC", time, targetTimezone: "UTC" }, { now: JANUARY });
  assert.throws(() => convert("24:00"), RangeError);
  assert.throws(() => convert("12:60"), RangeError);
  assert.throws(() => convert("noon"), /Cannot read time "noon"/);
  assert.throws(() => convert("2026-02-30T10:00"), /does not exist/);
  assert.throws(() => convert("2026-01-01T10:00+25:00"), /out of range/);
});

Deno.test("getTimeTool returns data that passes its own outputSchema", async () => {
  const out = await getTimeTool.handler(
    getTimeTool.inputSchema.parse({ timezone: "Asia/Kolkata" }),
    ctx,
  );
  assert.deepEqual(getTimeTool.outputSchema?.parse(out.data), out.data);
  assert.equal(out.data.timezone, "Asia/Kolkata");
  assert.match(out.text, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+05:30 in Asia\/Kolkata/);
  assert.equal(getTimeTool.inputSchema.parse({}).timezone, "UTC");
});

Deno.test("getTimeTool reports an unknown zone as a ToolError", async () => {
  await assert.rejects(
    async () => await getTimeTool.handler({ timezone: "Mars/Base" }, ctx),
    new ToolError('Unknown time zone "Mars/Base"'),
  );
});

Deno.test("convertTimeTool returns data that passes its own outputSchema", async () => {
  const args = convertTimeTool.inputSchema.parse({
    source_timezone: "Europe/London",
    time: "2026-01-15T09:00",
    target_timezone: "Asia/Kolkata",
  });
  const out = await convertTimeTool.handler(args, ctx);
  assert.deepEqual(convertTimeTool.outputSchema?.parse(out.data), out.data);
  assert.equal(
    out.text,
    "2026-01-15T09:00:00+00:00 (Europe/London) = 2026-01-15T14:30:00+05:30 (Asia/Kolkata), +5.5h",
  );
});

Deno.test("convertTimeTool reports bad zones and times as ToolErrors", async () => {
  await assert.rejects(
    async () =>
      await convertTimeTool.handler(
        { source_timezone: "UTC", time: "10:00", target_timezone: "Mars/Base" },
        ctx,
      ),
    new ToolError('Unknown time zone "Mars/Base"'),
  );
  await assert.rejects(
    async () =>
      await convertTimeTool.handler(
        { source_timezone: "UTC", time: "25:00", target_timezone: "UTC" },
        ctx,
      ),
    ToolError,
  );
});

/** ISO instants without the `.000` noise, so tables read like `2026-03-29T01:00:00Z`. */
export function isoSeconds(dates: readonly Date[]): string[] {
  return dates.map((d) => d.toISOString().replace('.000Z', 'Z'));
}

const WALL_CLOCK = {
  hourCycle: 'h23',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
} as const;

/** `MM/DD/YYYY, HH:MM:SS` → `YYYY-MM-DD HH:MM:SS`. */
function reorder(enUs: string): string {
  const m = /(\d+)\/(\d+)\/(\d+), (\d+):(\d+):(\d+)/.exec(enUs);
  if (m === null) throw new Error(`unexpected Intl output ${enUs}`);
  return `${m[3]}-${m[1]}-${m[2]} ${m[4]}:${m[5]}:${m[6]}`;
}

/**
 * The wall clock in a zone as `YYYY-MM-DD HH:MM:SS` from `Date#toLocaleString`: an independent
 * check on the tables, sharing no code with the schedule module.
 */
export function localeWallClock(instant: Date, timeZone: string): string {
  return reorder(instant.toLocaleString('en-US', { timeZone, ...WALL_CLOCK }));
}

const formats = new Map<string, Intl.DateTimeFormat>();

/** The same as {@link localeWallClock} with a cached formatter, for checks over thousands of instants. */
export function intlWallClock(instant: Date, timeZone: string): string {
  let format = formats.get(timeZone);
  if (format === undefined) {
    format = new Intl.DateTimeFormat('en-US', { timeZone, ...WALL_CLOCK });
    formats.set(timeZone, format);
  }
  return reorder(format.format(instant));
}

/**
 * Proleptic Gregorian calendar arithmetic on "wall seconds": a local date-time written as if it were
 * UTC, counted in seconds from 1970-01-01T00:00:00. Pure integer math (no Date objects), because the
 * cron search runs it for every candidate and must stay in the microsecond range.
 */

export const SECONDS_PER_DAY = 86_400;

/** Local calendar fields; `month` is 1-12, `day` 1-31. */
export interface WallTime {
  readonly year: number;
  readonly month: number;
  readonly day: number;
  readonly hour: number;
  readonly minute: number;
  readonly second: number;
}

/** Days since 1970-01-01 of a civil date (H. Hinnant's `days_from_civil`). */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

/** The civil date of a day count; writes into `out` to avoid an allocation per call. */
export function civilFromDays(days: number, out: [number, number, number]): [number, number, number] {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const month = mp < 10 ? mp + 3 : mp - 9;
  out[0] = yoe + era * 400 + (month <= 2 ? 1 : 0);
  out[1] = month;
  out[2] = doy - Math.floor((153 * mp + 2) / 5) + 1;
  return out;
}

export function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

export function daysInMonth(year: number, month: number): number {
  if (month === 2) return isLeapYear(year) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** 0 = Sunday … 6 = Saturday (1970-01-01 was a Thursday). */
export function weekdayOfDays(days: number): number {
  return (((days + 4) % 7) + 7) % 7;
}

export function wallSecondsOf(wall: WallTime): number {
  return (
    daysFromCivil(wall.year, wall.month, wall.day) * SECONDS_PER_DAY +
    wall.hour * 3600 +
    wall.minute * 60 +
    wall.second
  );
}

export function wallTimeOfSeconds(wallSeconds: number): WallTime {
  const days = Math.floor(wallSeconds / SECONDS_PER_DAY);
  const sod = wallSeconds - days * SECONDS_PER_DAY;
  const [year, month, day] = civilFromDays(days, [0, 0, 0]);
  return {
    year,
    month,
    day,
    hour: Math.floor(sod / 3600),
    minute: Math.floor((sod % 3600) / 60),
    second: sod % 60,
  };
}

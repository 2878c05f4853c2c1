import { SECONDS_PER_DAY, civilFromDays, daysFromCivil, daysInMonth, weekdayOfDays } from './civil-time.ts';

/** Oldest and newest year a schedule can fire in (Quartz's year range); searches stop there. */
export const CRON_MIN_YEAR = 1970;
export const CRON_MAX_YEAR = 2199;

/** The k-th given weekday of the month (`2#3` = third Tuesday in standard numbering). */
export interface NthWeekday {
  /** 0 = Sunday … 6 = Saturday, whatever the expression's own numbering. */
  readonly weekday: number;
  /** 1-5. */
  readonly nth: number;
}

/** What a parsed expression matches, normalised: weekdays are always 0 = Sunday … 6 = Saturday. */
export interface CronFields {
  readonly source: string;
  /** `STANDARD`: 5 fields, seconds = 0. `QUARTZ`: 6 or 7 fields starting with seconds. */
  readonly format: 'STANDARD' | 'QUARTZ';
  readonly seconds: readonly number[];
  readonly minutes: readonly number[];
  readonly hours: readonly number[];
  /** Plain day numbers (1-31); a day the month lacks never matches. */
  readonly daysOfMonth: readonly number[];
  /** `L` (0) and `L-n` (n): the day n days before the month's last. */
  readonly lastDayOffsets: readonly number[];
  /** `nW`: the weekday (Mon-Fri) nearest to day n, never leaving the month; none in months without day n. */
  readonly nearestWeekdays: readonly number[];
  /** `LW`: the month's last weekday (Mon-Fri). */
  readonly lastWeekdayOfMonth: boolean;
  readonly months: readonly number[];
  /** Plain weekdays, 0 = Sunday … 6 = Saturday. */
  readonly daysOfWeek: readonly number[];
  /** `nL`: the month's last given weekday. */
  readonly lastWeekdaysOfMonth: readonly number[];
  /** `n#k`. */
  readonly nthWeekdays: readonly NthWeekday[];
  /** `null` = every year up to {@link CRON_MAX_YEAR}. */
  readonly years: readonly number[] | null;
  /** False when day-of-month is `*` or `?`. */
  readonly dayOfMonthRestricted: boolean;
  /** False when day-of-week is `*` or `?`. */
  readonly dayOfWeekRestricted: boolean;
}

/** `table[v]` = smallest allowed value >= v, or -1; one extra slot so `v = max + 1` reads -1. */
function nextTable(values: readonly number[], max: number): Int16Array {
  const table = new Int16Array(max + 2).fill(-1);
  const allowed = new Set(values);
  let next = -1;
  for (let v = max; v >= 0; v--) {
    if (allowed.has(v)) next = v;
    table[v] = next;
  }
  return table;
}

/** Bits 1..n set: the days a month of length n has. */
function monthMask(length: number): number {
  return length >= 31 ? ~1 : ((1 << length) - 1) << 1;
}

const scratch: [number, number, number] = [0, 0, 0];

/**
 * A parsed cron expression. Matching is done on wall time (the clock in the schedule's zone, as
 * "wall seconds", see civil-time.ts); mapping wall time to instants is cron-fire-times.ts's job.
 */
export class CronExpression implements CronFields {
  readonly source!: string;
  readonly format!: 'STANDARD' | 'QUARTZ';
  readonly seconds!: readonly number[];
  readonly minutes!: readonly number[];
  readonly hours!: readonly number[];
  readonly daysOfMonth!: readonly number[];
  readonly lastDayOffsets!: readonly number[];
  readonly nearestWeekdays!: readonly number[];
  readonly lastWeekdayOfMonth!: boolean;
  readonly months!: readonly number[];
  readonly daysOfWeek!: readonly number[];
  readonly lastWeekdaysOfMonth!: readonly number[];
  readonly nthWeekdays!: readonly NthWeekday[];
  readonly years!: readonly number[] | null;
  readonly dayOfMonthRestricted!: boolean;
  readonly dayOfWeekRestricted!: boolean;

  readonly #nextSecond: Int16Array;
  readonly #nextMinute: Int16Array;
  readonly #nextHour: Int16Array;
  readonly #nextMonth: Int16Array;
  readonly #domMask: number;
  /** `[firstWeekday * 4 + (length - 28)]` → days of the month on a plain weekday. */
  readonly #dowMasks: Int32Array;
  readonly #hasDomSpecials: boolean;
  readonly #hasDowSpecials: boolean;
  /** Like the other tables, indexed by `year - CRON_MIN_YEAR`; null when every year matches. */
  readonly #nextYear: Int16Array | null;
  readonly #maxYear: number;
  #neverFires: boolean | undefined;

  constructor(fields: CronFields) {
    Object.assign(this, fields);
    this.#nextSecond = nextTable(fields.seconds, 59);
    this.#nextMinute = nextTable(fields.minutes, 59);
    this.#nextHour = nextTable(fields.hours, 23);
    this.#nextMonth = nextTable(fields.months, 12);
    this.#domMask = fields.daysOfMonth.reduce((mask, d) => mask | (1 << d), 0);
    this.#dowMasks = new Int32Array(28);
    for (let first = 0; first < 7; first++) {
      for (let length = 28; length <= 31; length++) {
        let mask = 0;
        for (const wd of fields.daysOfWeek) {
          for (let d = 1 + ((wd - first + 7) % 7); d <= length; d += 7) mask |= 1 << d;
        }
        this.#dowMasks[first * 4 + length - 28] = mask;
      }
    }
    this.#hasDomSpecials =
      fields.lastDayOffsets.length > 0 || fields.nearestWeekdays.length > 0 || fields.lastWeekdayOfMonth;
    this.#hasDowSpecials = fields.lastWeekdaysOfMonth.length > 0 || fields.nthWeekdays.length > 0;
    this.#nextYear =
      fields.years === null
        ? null
        : nextTable(
            fields.years.map((year) => year - CRON_MIN_YEAR),
            CRON_MAX_YEAR - CRON_MIN_YEAR,
          );
    this.#maxYear = fields.years?.[fields.years.length - 1] ?? CRON_MAX_YEAR;
    Object.freeze(this);
  }

  /** True if no date from {@link CRON_MIN_YEAR} to {@link CRON_MAX_YEAR} matches (e.g. `0 0 30 2 *`). */
  neverFires(): boolean {
    // Memoised outside the frozen shape: the answer is a pure function of the fields.
    this.#neverFires ??= this.nextMatch(daysFromCivil(CRON_MIN_YEAR, 1, 1) * SECONDS_PER_DAY) < 0;
    return this.#neverFires;
  }

  /** Bit d set (1-31) when day d of the month matches day-of-month and day-of-week together. */
  dayMask(year: number, month: number): number {
    const length = daysInMonth(year, month);
    const all = monthMask(length);
    if (!this.dayOfMonthRestricted && !this.dayOfWeekRestricted) return all;
    const firstDays = daysFromCivil(year, month, 1);
    const first = weekdayOfDays(firstDays);
    let dom = 0;
    if (this.dayOfMonthRestricted) {
      dom = this.#domMask & all;
      if (this.#hasDomSpecials) dom |= this.#domSpecials(length, first);
    }
    let dow = 0;
    if (this.dayOfWeekRestricted) {
      dow = this.#dowMasks[first * 4 + length - 28] ?? 0;
      if (this.#hasDowSpecials) dow |= this.#dowSpecials(length, first);
    }
    if (!this.dayOfWeekRestricted) return dom;
    if (!this.dayOfMonthRestricted) return dow;
    return dom | dow; // both restricted: standard cron ORs them (Quartz forbids this at parse time)
  }

  #domSpecials(length: number, first: number): number {
    let mask = 0;
    for (const n of this.lastDayOffsets) if (length - n >= 1) mask |= 1 << (length - n);
    for (const n of this.nearestWeekdays) {
      if (n > length) continue;
      const wd = (first + n - 1) % 7;
      let d = n;
      if (wd === 6) d = n === 1 ? 3 : n - 1;
      else if (wd === 0) d = n === length ? n - 2 : n + 1;
      mask |= 1 << d;
    }
    if (this.lastWeekdayOfMonth) {
      const wd = (first + length - 1) % 7;
      mask |= 1 << (wd === 6 ? length - 1 : wd === 0 ? length - 2 : length);
    }
    return mask;
  }

  #dowSpecials(length: number, first: number): number {
    let mask = 0;
    const last = (first + length - 1) % 7;
    for (const wd of this.lastWeekdaysOfMonth) mask |= 1 << (length - ((last - wd + 7) % 7));
    for (const { weekday, nth } of this.nthWeekdays) {
      const d = 1 + ((weekday - first + 7) % 7) + 7 * (nth - 1);
      if (d <= length) mask |= 1 << d;
    }
    return mask;
  }

  /**
   * The first matching wall second `w` with `from <= w < limit`, or -1. Jumps field by field (year,
   * month, day, hour, minute, second), so a call costs a handful of table lookups, and ends at the
   * last allowed year, which makes impossible expressions terminate.
   */
  nextMatch(from: number, limit = Number.POSITIVE_INFINITY): number {
    if (!(from < limit)) return -1;
    const days = Math.floor(from / SECONDS_PER_DAY);
    const sod = from - days * SECONDS_PER_DAY;
    civilFromDays(days, scratch);
    let [y, mo, d] = scratch;
    let h = Math.floor(sod / 3600);
    let mi = Math.floor((sod % 3600) / 60);
    let s = sod % 60;
    let maskYear = 0;
    let maskMonth = 0;
    let mask = 0;
    for (;;) {
      if (mo > 12) {
        y++;
        mo = 1;
      }
      if (y > this.#maxYear) return -1;
      if (daysFromCivil(y, mo, 1) * SECONDS_PER_DAY >= limit) return -1;
      if (this.#nextYear !== null) {
        const next = this.#nextYear[Math.max(0, y - CRON_MIN_YEAR)] ?? -1;
        if (next < 0) return -1;
        if (next + CRON_MIN_YEAR !== y) {
          y = next + CRON_MIN_YEAR;
          mo = 1;
          d = 1;
          h = mi = s = 0;
          continue;
        }
      }
      const nextMonth = this.#nextMonth[mo] ?? -1;
      if (nextMonth < 0) {
        y++;
        mo = 1;
        d = 1;
        h = mi = s = 0;
        continue;
      }
      if (nextMonth !== mo) {
        mo = nextMonth;
        d = 1;
        h = mi = s = 0;
        continue;
      }
      if (maskYear !== y || maskMonth !== mo) {
        mask = this.dayMask(y, mo);
        maskYear = y;
        maskMonth = mo;
      }
      const rest = d > 31 ? 0 : mask >>> d;
      if (rest === 0) {
        mo++;
        d = 1;
        h = mi = s = 0;
        continue;
      }
      const nextDay = d + 31 - Math.clz32(rest & -rest);
      if (nextDay !== d) {
        d = nextDay;
        h = mi = s = 0;
      }
      const nextHour = this.#nextHour[h] ?? -1;
      if (nextHour < 0) {
        d++;
        h = mi = s = 0;
        continue;
      }
      if (nextHour !== h) {
        h = nextHour;
        mi = s = 0;
      }
      const nextMinute = this.#nextMinute[mi] ?? -1;
      if (nextMinute < 0) {
        h++;
        mi = s = 0;
        continue;
      }
      if (nextMinute !== mi) {
        mi = nextMinute;
        s = 0;
      }
      const nextSecond = this.#nextSecond[s] ?? -1;
      if (nextSecond < 0) {
        mi++;
        s = 0;
        continue;
      }
      const wall = daysFromCivil(y, mo, d) * SECONDS_PER_DAY + h * 3600 + mi * 60 + nextSecond;
      return wall < limit ? wall : -1;
    }
  }
}

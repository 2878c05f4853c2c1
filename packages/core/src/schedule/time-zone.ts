import { ValidationError } from '../errors.ts';
import {
  SECONDS_PER_DAY,
  civilFromDays,
  daysFromCivil,
  wallSecondsOf,
  wallTimeOfSeconds,
  type WallTime,
} from './civil-time.ts';

/**
 * A bound on |UTC offset| (real zones stay within -12h..+14h). Searches use it as slack when they
 * must relate a wall time to instants without knowing the offset yet.
 */
export const MAX_OFFSET_SECONDS = 18 * 3600;

/** An offset change at `at` (epoch seconds); offsets in seconds, wall = instant + offset. */
interface Transition {
  readonly at: number;
  readonly from: number;
  readonly to: number;
}

interface ZoneYear {
  /** Offset just before the UTC year starts. */
  readonly before: number;
  /** Changes in [year start, next year start), in order. */
  readonly transitions: readonly Transition[];
}

/**
 * A stretch of time with one UTC offset. `start`/`end` are epoch seconds, end exclusive; either may
 * be an artificial boundary (±Infinity or a year end) where nothing changes, in which case
 * `offsetBefore`/`offsetAfter` equal `offset`.
 */
export interface OffsetSegment {
  readonly start: number;
  readonly end: number;
  readonly offset: number;
  readonly offsetBefore: number;
  readonly offsetAfter: number;
}

const FIELDS = /(\d+)\D+(\d+)\D+(\d+)\D+(\d+)\D+(\d+)\D+(\d+)/;
const scratch: [number, number, number] = [0, 0, 0];

function yearOf(epochSeconds: number): number {
  return civilFromDays(Math.floor(epochSeconds / SECONDS_PER_DAY), scratch)[0];
}

/**
 * One zone's offsets, learnt from Intl once per UTC year and kept: ICU answers one instant at a time
 * (~1.5 µs each), so each year is sampled daily and each change located to the second by bisection.
 * Offset changes less than a day apart that cancel out would be missed; no zone has had one since 1970.
 */
export class ZoneRules {
  readonly #format: Intl.DateTimeFormat;
  readonly #years = new Map<number, ZoneYear>();
  #lastSegment: OffsetSegment | undefined;

  constructor(readonly timeZone: string) {
    this.#format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
  }

  /** The offset at an instant, asked of Intl. */
  #intlOffset(epochSeconds: number): number {
    const m = FIELDS.exec(this.#format.format(epochSeconds * 1000));
    if (m === null) throw new Error(`unexpected Intl output for ${this.timeZone}`);
    const [, month, day, year, hour, minute, second] = m.map(Number) as number[];
    const wall =
      daysFromCivil(year ?? 0, month ?? 0, day ?? 0) * SECONDS_PER_DAY +
      (hour ?? 0) * 3600 +
      (minute ?? 0) * 60 +
      (second ?? 0);
    return wall - epochSeconds;
  }

  #year(year: number): ZoneYear {
    let data = this.#years.get(year);
    if (data !== undefined) return data;
    const start = daysFromCivil(year, 1, 1) * SECONDS_PER_DAY;
    const last = daysFromCivil(year + 1, 1, 1) * SECONDS_PER_DAY - 1;
    const transitions: Transition[] = [];
    let t = start - 1;
    let offset = this.#intlOffset(t);
    const before = offset;
    while (t < last) {
      const next = Math.min(t + SECONDS_PER_DAY, last);
      const nextOffset = this.#intlOffset(next);
      if (nextOffset !== offset) this.#locate(t, offset, next, nextOffset, transitions);
      t = next;
      offset = nextOffset;
    }
    data = { before, transitions };
    this.#years.set(year, data);
    return data;
  }

  /** Bisects (lo, hi] for the changes between offsetLo at lo and offsetHi at hi. */
  #locate(lo: number, offsetLo: number, hi: number, offsetHi: number, out: Transition[]): void {
    let a = lo;
    let b = hi;
    let offsetB = offsetHi;
    while (b - a > 1) {
      const mid = Math.floor((a + b) / 2);
      const offsetMid = this.#intlOffset(mid);
      if (offsetMid === offsetLo) {
        a = mid;
      } else {
        b = mid;
        offsetB = offsetMid;
      }
    }
    out.push({ at: b, from: offsetLo, to: offsetB });
    if (offsetB !== offsetHi) this.#locate(b, offsetB, hi, offsetHi, out);
  }

  /** UTC offset in seconds at an instant (epoch seconds). */
  offsetAt(epochSeconds: number): number {
    const data = this.#year(yearOf(epochSeconds));
    let offset = data.before;
    for (const tr of data.transitions) {
      if (tr.at > epochSeconds) break;
      offset = tr.to;
    }
    return offset;
  }

  /** The constant-offset stretch that contains an instant. */
  segmentAt(epochSeconds: number): OffsetSegment {
    const cached = this.#lastSegment;
    if (cached !== undefined && cached.start <= epochSeconds && epochSeconds < cached.end) return cached;
    const year = yearOf(epochSeconds);
    const data = this.#year(year);
    let offset = data.before;
    let previous: Transition | undefined;
    let next: Transition | undefined;
    for (const tr of data.transitions) {
      if (tr.at > epochSeconds) {
        next = tr;
        break;
      }
      previous = tr;
      offset = tr.to;
    }
    // an overlap lasts hours, so a change before last year cannot matter to the caller
    previous ??= this.#year(year - 1).transitions.at(-1);
    next ??= this.#year(year + 1).transitions[0];
    const segment: OffsetSegment = {
      start: previous?.at ?? Number.NEGATIVE_INFINITY,
      end: next?.at ?? daysFromCivil(year + 2, 1, 1) * SECONDS_PER_DAY,
      offset,
      offsetBefore: previous?.from ?? offset,
      offsetAfter: next?.to ?? offset,
    };
    this.#lastSegment = segment;
    return segment;
  }

  /** Every instant (epoch seconds, ascending) whose wall clock reads `wall`: 0 in a gap, 2 in an overlap. */
  instantsAt(wall: number): number[] {
    const offsets = new Set<number>([this.offsetAt(wall - MAX_OFFSET_SECONDS)]);
    const lo = wall - MAX_OFFSET_SECONDS;
    const hi = wall + MAX_OFFSET_SECONDS;
    for (let year = yearOf(lo); year <= yearOf(hi); year++) {
      for (const tr of this.#year(year).transitions) if (tr.at >= lo && tr.at <= hi) offsets.add(tr.to);
    }
    const instants = [...offsets].map((o) => wall - o).filter((t) => wall - t === this.offsetAt(t));
    return [...new Set(instants)].sort((a, b) => a - b);
  }
}

const zones = new Map<string, ZoneRules>();

/**
 * The cached rules of a zone (one Intl.DateTimeFormat per zone for the life of the process).
 * @throws ValidationError when Intl does not know the zone.
 */
export function zoneRules(timeZone: string): ZoneRules {
  let zone = zones.get(timeZone);
  if (zone === undefined) {
    try {
      if (timeZone.trim() === '') throw new RangeError('empty time zone');
      zone = new ZoneRules(timeZone);
    } catch {
      const message = `unknown time zone "${timeZone}" (expected an IANA name such as Europe/Berlin)`;
      throw new ValidationError(message, [{ path: 'timezone', message }]);
    }
    zones.set(timeZone, zone);
  }
  return zone;
}

/** True if `timeZone` is an IANA zone name this runtime knows (e.g. `Europe/Berlin`, `UTC`). */
export function isValidTimeZone(timeZone: string): boolean {
  if (typeof timeZone !== 'string') return false;
  try {
    zoneRules(timeZone);
    return true;
  } catch {
    return false;
  }
}

/**
 * The instants at which the clock in `timeZone` reads `wall` (whole seconds): none when the wall time
 * falls in a spring-forward gap, two when it repeats after a fall-back, otherwise one.
 */
export function instantsAtWallTime(timeZone: string, wall: WallTime): Date[] {
  return zoneRules(timeZone)
    .instantsAt(wallSecondsOf(wall))
    .map((t) => new Date(t * 1000));
}

/** The wall clock in `timeZone` at `instant` (sub-second part dropped). */
export function wallTimeAt(timeZone: string, instant: Date): WallTime {
  const t = Math.floor(instant.getTime() / 1000);
  return wallTimeOfSeconds(t + zoneRules(timeZone).offsetAt(t));
}

import { ValidationError, type FieldIssue } from '../errors.ts';
import { nextCronFire, type DstGapPolicy, type DstRepeatPolicy } from './cron-fire-times.ts';
import type { CronExpression } from './cron-expression.ts';
import { compileCron, parseCron } from './cron-parser.ts';
import { CronSyntaxError } from './cron-syntax-error.ts';
import { isValidTimeZone, zoneRules } from './time-zone.ts';

export type { DstGapPolicy, DstRepeatPolicy } from './cron-fire-times.ts';

export const DST_GAP_POLICIES: readonly DstGapPolicy[] = ['SKIP', 'SHIFT'];
export const DST_REPEAT_POLICIES: readonly DstRepeatPolicy[] = ['FIRST', 'LAST', 'BOTH'];
export const INTERVAL_MODES = ['FIXED_RATE', 'FIXED_DELAY'] as const;
export type IntervalMode = (typeof INTERVAL_MODES)[number];

/** Fires once, at `runAt`. */
export interface OnceSchedule {
  readonly type: 'ONCE';
  readonly runAt: Date;
}

/** Fires whenever the wall clock in `timezone` matches `cronExpression` (see {@link parseCron}). */
export interface CronSchedule {
  readonly type: 'CRON';
  readonly cronExpression: string;
  /** IANA zone whose wall clock the fields match, e.g. `Europe/Berlin`. */
  readonly timezone: string;
  /**
   * A matching wall time that a spring-forward skips: `SKIP` drops it, `SHIFT` fires at the first
   * instant after the gap (several such wall times fire once).
   * @defaultValue 'SHIFT'
   */
  readonly dstGapPolicy?: DstGapPolicy;
  /**
   * A matching wall time that a fall-back repeats fires at its `FIRST` occurrence, its `LAST`, or `BOTH`.
   * @defaultValue 'FIRST'
   */
  readonly dstRepeatPolicy?: DstRepeatPolicy;
  /** No fire before this instant (inclusive bound). */
  readonly startAt?: Date | null;
  /** No fire after this instant (inclusive bound). */
  readonly endAt?: Date | null;
}

/** Fires every `intervalSeconds`. */
export interface IntervalSchedule {
  readonly type: 'INTERVAL';
  /** A positive whole number of seconds. */
  readonly intervalSeconds: number;
  /**
   * `FIXED_RATE`: at anchor + k·interval (k >= 0), however long runs take.
   * `FIXED_DELAY`: interval after the previous run finished (`lastFinishedAt`); the first at the anchor.
   * @defaultValue 'FIXED_RATE'
   */
  readonly intervalMode?: IntervalMode;
  /** First fire and phase of the series; falls back to `startAt`. One of the two is required. */
  readonly anchorAt?: Date | null;
  /** No fire before this instant (inclusive bound). */
  readonly startAt?: Date | null;
  /** No fire after this instant (inclusive bound). */
  readonly endAt?: Date | null;
  /** FIXED_DELAY only: when the last run finished; null/absent when it never ran. */
  readonly lastFinishedAt?: Date | null;
}

export type ScheduleSpec = OnceSchedule | CronSchedule | IntervalSchedule;

/** Epoch ms of the next fire, or null when the series is over; each call moves on. */
type FireIterator = () => number | null;

/** The last instant a Date can hold. */
const MAX_DATE_MS = 8.64e15;
const CRON_CACHE_SIZE = 10_000;
const cronCache = new Map<string, CronExpression>();

/** Parsed once per distinct expression: the scheduler asks for the same few thousand over and over. */
function cachedCron(expression: string): CronExpression {
  let cron = cronCache.get(expression);
  if (cron === undefined) {
    cron = compileCron(expression);
    if (cronCache.size >= CRON_CACHE_SIZE) {
      const oldest = cronCache.keys().next();
      if (oldest.done !== true) cronCache.delete(oldest.value);
    }
    cronCache.set(expression, cron);
  }
  return cron;
}

function isValidDate(value: unknown): value is Date {
  return value instanceof Date && !Number.isNaN(value.getTime());
}

function invalid(path: string, message: string): ValidationError {
  return new ValidationError(`${path}: ${message}`, [{ path, message }]);
}

function requireDate(value: unknown, path: string): number {
  if (!isValidDate(value)) throw invalid(path, 'must be a valid Date');
  return value.getTime();
}

function optionalDate(value: Date | null | undefined, path: string): number | undefined {
  return value === null || value === undefined ? undefined : requireDate(value, path);
}

function cronIterator(spec: CronSchedule, afterMs: number): FireIterator {
  const cron = cachedCron(spec.cronExpression);
  const zone = zoneRules(spec.timezone);
  const gap = spec.dstGapPolicy ?? 'SHIFT';
  const repeat = spec.dstRepeatPolicy ?? 'FIRST';
  const startMs = optionalDate(spec.startAt, 'startAt');
  const endMs = optionalDate(spec.endAt, 'endAt') ?? Number.POSITIVE_INFINITY;
  // fires are whole seconds: "> after and >= startAt" is "> max(after, startAt - 1 ms)"
  let after = Math.max(afterMs, startMs === undefined ? Number.NEGATIVE_INFINITY : startMs - 1) / 1000;
  let done = false;
  return () => {
    if (done) return null;
    const next = nextCronFire(cron, zone, after, gap, repeat);
    if (next === null || next * 1000 > endMs) {
      done = true;
      return null;
    }
    after = next;
    return next * 1000;
  };
}

function intervalIterator(spec: IntervalSchedule, afterMs: number): FireIterator {
  const seconds = spec.intervalSeconds;
  if (!Number.isSafeInteger(seconds) || seconds < 1) {
    throw invalid('intervalSeconds', 'must be a positive whole number of seconds');
  }
  const step = seconds * 1000;
  const startMs = optionalDate(spec.startAt, 'startAt');
  const endMs = optionalDate(spec.endAt, 'endAt') ?? Number.POSITIVE_INFINITY;
  const anchorMs = optionalDate(spec.anchorAt, 'anchorAt') ?? startMs;
  const lastFinishedMs = optionalDate(spec.lastFinishedAt, 'lastFinishedAt');
  let base: number | undefined;
  if ((spec.intervalMode ?? 'FIXED_RATE') === 'FIXED_DELAY') {
    // the next run waits `interval` after the last one finished; later previews assume zero-length runs
    base = lastFinishedMs === undefined ? anchorMs : lastFinishedMs + step;
    if (base !== undefined && startMs !== undefined) base = Math.max(base, startMs);
  } else {
    base = anchorMs;
  }
  if (base === undefined) throw invalid('anchorAt', 'anchorAt or startAt is required');
  const lowest = Math.max(afterMs + 1, startMs ?? Number.NEGATIVE_INFINITY);
  let next = base + Math.max(0, Math.ceil((lowest - base) / step)) * step;
  const last = Math.min(endMs, MAX_DATE_MS);
  return () => {
    if (next > last) return null;
    const fire = next;
    next += step;
    return fire;
  };
}

function fireIterator(spec: ScheduleSpec, afterMs: number): FireIterator {
  switch (spec.type) {
    case 'ONCE': {
      const runAt = requireDate(spec.runAt, 'runAt');
      let fired = runAt <= afterMs;
      return () => {
        if (fired) return null;
        fired = true;
        return runAt;
      };
    }
    case 'CRON':
      return cronIterator(spec, afterMs);
    case 'INTERVAL':
      return intervalIterator(spec, afterMs);
    default:
      throw invalid('type', `unknown schedule type ${JSON.stringify((spec as { type?: unknown }).type)}`);
  }
}

function requireCount(value: number, path: string): void {
  if (!Number.isSafeInteger(value) || value < 0) throw invalid(path, 'must be a non-negative whole number');
}

/**
 * The next `count` fire instants strictly after `after`, ascending and unique (previews; the
 * scheduler's horizon). Fewer when the schedule ends (endAt, a ONCE that fired, an expression with
 * no date left up to 2199). CRON fires are whole seconds; INTERVAL keeps its anchor's milliseconds.
 *
 * A FIXED_DELAY preview beyond the next fire assumes runs take no time: lastFinishedAt + k·interval.
 * @throws ValidationError (CronSyntaxError for the expression) when the spec cannot be computed.
 */
export function nextFireTimes(spec: ScheduleSpec, after: Date, count: number): Date[] {
  const afterMs = requireDate(after, 'after');
  requireCount(count, 'count');
  const times: Date[] = [];
  if (count === 0) return times;
  const next = fireIterator(spec, afterMs);
  for (let t = next(); t !== null; t = times.length < count ? next() : null) times.push(new Date(t));
  return times;
}

/**
 * Every fire instant in (from, to], at most `limit`; `truncated` says more fires in the range were
 * cut off. For the scheduler's horizon and for backfill after downtime.
 */
export function fireTimesBetween(
  spec: ScheduleSpec,
  from: Date,
  to: Date,
  limit: number,
): { times: Date[]; truncated: boolean } {
  const fromMs = requireDate(from, 'from');
  const toMs = requireDate(to, 'to');
  requireCount(limit, 'limit');
  const times: Date[] = [];
  if (toMs <= fromMs) return { times, truncated: false };
  const next = fireIterator(spec, fromMs);
  for (;;) {
    const t = next();
    if (t === null || t > toMs) return { times, truncated: false };
    if (times.length === limit) return { times, truncated: true };
    times.push(new Date(t));
  }
}

/**
 * Checks a spec before it is stored, listing every problem with its field path (prefixed with
 * `pathPrefix`, e.g. `schedule` → `schedule.cronExpression`).
 * A cron expression that can never fire, or no fire between startAt and endAt, is an error here,
 * while {@link nextFireTimes} just returns no times for it.
 * @throws ValidationError
 */
export function validateSchedule(spec: ScheduleSpec, pathPrefix = ''): void {
  const issues: FieldIssue[] = [];
  const add = (field: string, message: string) =>
    issues.push({ path: pathPrefix === '' ? field : `${pathPrefix}.${field}`, message });
  const checkDate = (field: string, value: unknown, required: boolean) => {
    if (value === null || value === undefined) {
      if (required) add(field, 'is required');
    } else if (!isValidDate(value)) {
      add(field, 'must be a valid Date');
    }
  };
  const checkBounds = (s: CronSchedule | IntervalSchedule) => {
    checkDate('startAt', s.startAt, false);
    checkDate('endAt', s.endAt, false);
    if (isValidDate(s.startAt) && isValidDate(s.endAt) && s.endAt < s.startAt) {
      add('endAt', 'must not be before startAt');
    }
  };

  const type: unknown = (spec as { type?: unknown } | null)?.type;
  if (type === 'ONCE') {
    checkDate('runAt', (spec as OnceSchedule).runAt, true);
  } else if (type === 'CRON') {
    const s = spec as CronSchedule;
    if (typeof s.cronExpression !== 'string') {
      add('cronExpression', 'must be a string');
    } else {
      try {
        parseCron(s.cronExpression);
      } catch (error) {
        if (!(error instanceof CronSyntaxError)) throw error;
        add('cronExpression', error.message);
      }
    }
    if (typeof s.timezone !== 'string' || !isValidTimeZone(s.timezone)) {
      add(
        'timezone',
        `unknown time zone ${JSON.stringify(s.timezone)} (expected an IANA name such as Europe/Berlin)`,
      );
    }
    if (s.dstGapPolicy != null && !DST_GAP_POLICIES.includes(s.dstGapPolicy)) {
      add('dstGapPolicy', `must be one of ${DST_GAP_POLICIES.join(', ')}`);
    }
    if (s.dstRepeatPolicy != null && !DST_REPEAT_POLICIES.includes(s.dstRepeatPolicy)) {
      add('dstRepeatPolicy', `must be one of ${DST_REPEAT_POLICIES.join(', ')}`);
    }
    checkBounds(s);
    if (issues.length === 0 && s.startAt != null && s.endAt != null) {
      if (nextFireTimes(s, new Date(s.startAt.getTime() - 1), 1).length === 0) {
        add('endAt', 'the schedule never fires between startAt and endAt');
      }
    }
  } else if (type === 'INTERVAL') {
    const s = spec as IntervalSchedule;
    if (!Number.isSafeInteger(s.intervalSeconds) || s.intervalSeconds < 1) {
      add('intervalSeconds', 'must be a positive whole number of seconds');
    }
    if (s.intervalMode != null && !INTERVAL_MODES.includes(s.intervalMode)) {
      add('intervalMode', `must be one of ${INTERVAL_MODES.join(', ')}`);
    }
    checkDate('anchorAt', s.anchorAt, false);
    checkDate('lastFinishedAt', s.lastFinishedAt, false);
    checkBounds(s);
    if (s.anchorAt == null && s.startAt == null) add('anchorAt', 'anchorAt or startAt is required');
  } else {
    add('type', 'must be ONCE, CRON or INTERVAL');
  }

  if (issues.length > 0) {
    throw new ValidationError(
      `invalid schedule: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      issues,
    );
  }
}

import { describe, expect, it } from 'vitest';
import {
  CronSyntaxError,
  ValidationError,
  fireTimesBetween,
  nextFireTimes,
  validateSchedule,
  type ScheduleSpec,
} from '../../src/index.ts';

const at = (iso: string) => new Date(iso);
const iso = (dates: readonly Date[]) => dates.map((d) => d.toISOString());

describe('ONCE schedules', () => {
  const spec: ScheduleSpec = { type: 'ONCE', runAt: at('2026-05-01T12:00:00.250Z') };
  it.each([
    ['before runAt', '2026-05-01T12:00:00.249Z', ['2026-05-01T12:00:00.250Z']],
    ['exactly at runAt (fires are strictly after)', '2026-05-01T12:00:00.250Z', []],
    ['after runAt', '2026-06-01T00:00:00.000Z', []],
  ])('asked %s fire at most once', (_, after, expected) => {
    expect(iso(nextFireTimes(spec, at(after), 5))).toEqual(expected);
  });
});

describe('INTERVAL schedules', () => {
  const rows: { behaviour: string; spec: ScheduleSpec; after: string; expected: string[] }[] = [
    {
      behaviour: 'fixed rate fires at anchor + k·interval, keeping the anchor milliseconds',
      spec: { type: 'INTERVAL', intervalSeconds: 3600, anchorAt: at('2026-01-01T00:00:00.250Z') },
      after: '2026-01-01T02:30:00.000Z',
      expected: ['2026-01-01T03:00:00.250Z', '2026-01-01T04:00:00.250Z', '2026-01-01T05:00:00.250Z'],
    },
    {
      behaviour: 'fixed rate fires at the anchor itself first',
      spec: { type: 'INTERVAL', intervalSeconds: 90, anchorAt: at('2026-01-01T00:00:00.000Z') },
      after: '2025-12-31T00:00:00.000Z',
      expected: ['2026-01-01T00:00:00.000Z', '2026-01-01T00:01:30.000Z'],
    },
    {
      behaviour: 'fixed rate is strictly after `after` when `after` is a fire',
      spec: { type: 'INTERVAL', intervalSeconds: 60, anchorAt: at('2026-01-01T00:00:00.000Z') },
      after: '2026-01-01T00:05:00.000Z',
      expected: ['2026-01-01T00:06:00.000Z'],
    },
    {
      behaviour: 'fixed rate anchors on startAt without anchorAt',
      spec: { type: 'INTERVAL', intervalSeconds: 600, startAt: at('2026-01-01T00:07:00.000Z') },
      after: '2026-01-01T00:00:00.000Z',
      expected: ['2026-01-01T00:07:00.000Z', '2026-01-01T00:17:00.000Z'],
    },
    {
      behaviour: 'fixed rate keeps the anchor phase after a later startAt',
      spec: {
        type: 'INTERVAL',
        intervalSeconds: 3600,
        anchorAt: at('2026-01-01T00:00:00.000Z'),
        startAt: at('2026-01-01T05:30:00.000Z'),
      },
      after: '2026-01-01T00:00:00.000Z',
      expected: ['2026-01-01T06:00:00.000Z', '2026-01-01T07:00:00.000Z'],
    },
    {
      behaviour: 'fixed rate stops at endAt, inclusive',
      spec: {
        type: 'INTERVAL',
        intervalSeconds: 3600,
        anchorAt: at('2026-01-01T00:00:00.000Z'),
        endAt: at('2026-01-01T02:00:00.000Z'),
      },
      after: '2025-12-31T23:00:00.000Z',
      expected: ['2026-01-01T00:00:00.000Z', '2026-01-01T01:00:00.000Z', '2026-01-01T02:00:00.000Z'],
    },
    {
      behaviour: 'fixed delay waits the interval after the last run finished, previewing zero-length runs',
      spec: {
        type: 'INTERVAL',
        intervalSeconds: 300,
        intervalMode: 'FIXED_DELAY',
        anchorAt: at('2026-01-01T00:00:00.000Z'),
        lastFinishedAt: at('2026-01-01T10:00:07.500Z'),
      },
      after: '2026-01-01T10:00:07.500Z',
      expected: ['2026-01-01T10:05:07.500Z', '2026-01-01T10:10:07.500Z', '2026-01-01T10:15:07.500Z'],
    },
    {
      behaviour: 'fixed delay that never ran fires at its anchor first',
      spec: {
        type: 'INTERVAL',
        intervalSeconds: 300,
        intervalMode: 'FIXED_DELAY',
        startAt: at('2026-01-01T09:00:00.000Z'),
      },
      after: '2026-01-01T08:00:00.000Z',
      expected: ['2026-01-01T09:00:00.000Z', '2026-01-01T09:05:00.000Z'],
    },
    {
      behaviour: 'fixed delay does not fire before startAt even when the last run was long ago',
      spec: {
        type: 'INTERVAL',
        intervalSeconds: 300,
        intervalMode: 'FIXED_DELAY',
        startAt: at('2026-01-02T00:00:00.000Z'),
        lastFinishedAt: at('2026-01-01T00:00:00.000Z'),
      },
      after: '2026-01-01T00:00:00.000Z',
      expected: ['2026-01-02T00:00:00.000Z', '2026-01-02T00:05:00.000Z'],
    },
  ];
  it.each(rows)('$behaviour', ({ spec, after, expected }) => {
    expect(iso(nextFireTimes(spec, at(after), expected.length))).toEqual(expected);
  });

  it('end at endAt however many fires are asked for', () => {
    const spec: ScheduleSpec = {
      type: 'INTERVAL',
      intervalSeconds: 3600,
      anchorAt: at('2026-01-01T00:00:00.000Z'),
      endAt: at('2026-01-01T02:00:00.000Z'),
    };
    expect(nextFireTimes(spec, at('2025-12-31T23:00:00.000Z'), 10)).toHaveLength(3);
  });
});

describe('CRON bounds', () => {
  const hourly = (extra: object): ScheduleSpec => ({
    type: 'CRON',
    cronExpression: '0 * * * *',
    timezone: 'UTC',
    ...extra,
  });
  it.each([
    [
      'startAt on a fire includes it',
      { startAt: at('2026-01-01T02:00:00Z') },
      ['2026-01-01T02:00:00.000Z', '2026-01-01T03:00:00.000Z'],
    ],
    [
      'startAt 1 ms past a fire excludes it',
      { startAt: at('2026-01-01T02:00:00.001Z') },
      ['2026-01-01T03:00:00.000Z', '2026-01-01T04:00:00.000Z'],
    ],
    [
      'endAt on a fire includes it and ends the series',
      { startAt: at('2026-01-01T02:00:00Z'), endAt: at('2026-01-01T04:00:00Z') },
      ['2026-01-01T02:00:00.000Z', '2026-01-01T03:00:00.000Z', '2026-01-01T04:00:00.000Z'],
    ],
    ['endAt before the next fire ends the series', { endAt: at('2026-01-01T00:59:59Z') }, []],
  ])('%s', (_, extra, expected) => {
    const asked = 'endAt' in extra ? 5 : expected.length;
    expect(iso(nextFireTimes(hourly(extra), at('2026-01-01T00:00:00Z'), asked))).toEqual(expected);
  });
});

describe('fireTimesBetween', () => {
  const hourly: ScheduleSpec = { type: 'CRON', cronExpression: '0 * * * *', timezone: 'UTC' };
  it.each([
    ['returns every fire in (from, to]', '2026-01-01T00:00:00Z', '2026-01-01T03:00:00Z', 10, 3, false],
    [
      'stops at the limit and says more were cut off',
      '2026-01-01T00:00:00Z',
      '2026-01-01T05:00:00Z',
      3,
      3,
      true,
    ],
    [
      'is not truncated when the limit matches the fires exactly',
      '2026-01-01T00:00:00Z',
      '2026-01-01T03:00:00Z',
      3,
      3,
      false,
    ],
    [
      'with limit 0 only says whether any fire is due',
      '2026-01-01T00:00:00Z',
      '2026-01-01T03:00:00Z',
      0,
      0,
      true,
    ],
    ['is empty for an empty range', '2026-01-01T03:00:00Z', '2026-01-01T03:00:00Z', 10, 0, false],
  ])('%s', (_, from, to, limit, count, truncated) => {
    const result = fireTimesBetween(hourly, at(from), at(to), limit);
    expect(result.times).toHaveLength(count);
    expect(result.truncated).toBe(truncated);
    if (count > 0) expect(result.times[0]!.toISOString()).toBe('2026-01-01T01:00:00.000Z');
  });

  it('backfills an interval schedule over downtime', () => {
    const spec: ScheduleSpec = {
      type: 'INTERVAL',
      intervalSeconds: 1800,
      anchorAt: at('2026-01-01T00:10:00.000Z'),
    };
    const { times, truncated } = fireTimesBetween(
      spec,
      at('2026-01-01T00:10:00.000Z'),
      at('2026-01-01T02:10:00.000Z'),
      100,
    );
    expect(iso(times)).toEqual([
      '2026-01-01T00:40:00.000Z',
      '2026-01-01T01:10:00.000Z',
      '2026-01-01T01:40:00.000Z',
      '2026-01-01T02:10:00.000Z',
    ]);
    expect(truncated).toBe(false);
  });
});

describe('schedules that can never fire', () => {
  const cron = (cronExpression: string, timezone = 'Europe/Berlin'): ScheduleSpec => ({
    type: 'CRON',
    cronExpression,
    timezone,
  });
  it.each(['0 0 30 2 *', '0 0 31 4,6,9,11 *', '0 0 0 ? 2 MON#5 2026'])(
    '%s yields no fire times instead of searching forever',
    (expression) => {
      expect(nextFireTimes(cron(expression), at('2026-01-01T00:00:00Z'), 3)).toEqual([]);
      expect(
        fireTimesBetween(cron(expression), at('1970-01-01T00:00:00Z'), at('2199-12-31T00:00:00Z'), 10),
      ).toEqual({
        times: [],
        truncated: false,
      });
    },
  );

  it('a schedule past its last year yields nothing', () => {
    expect(nextFireTimes(cron('0 0 0 1 1 ? 2020'), at('2026-01-01T00:00:00Z'), 1)).toEqual([]);
    expect(nextFireTimes(cron('0 0 12 * * ? 2026'), at('2026-12-31T12:00:00Z'), 1)).toEqual([]);
  });
});

describe('invalid input to the fire-time functions', () => {
  it('an unparsable expression throws CronSyntaxError', () => {
    expect(() =>
      nextFireTimes(
        { type: 'CRON', cronExpression: '0 0 32 * *', timezone: 'UTC' },
        at('2026-01-01T00:00:00Z'),
        1,
      ),
    ).toThrow(CronSyntaxError);
  });
  it('an unknown zone throws ValidationError naming timezone', () => {
    expect(() =>
      nextFireTimes(
        { type: 'CRON', cronExpression: '0 0 * * *', timezone: 'Mars/Base' },
        at('2026-01-01T00:00:00Z'),
        1,
      ),
    ).toThrow(expect.objectContaining({ issues: [expect.objectContaining({ path: 'timezone' })] }));
  });
  it.each([
    ['an invalid after', at('nope'), 1],
    ['a negative count', at('2026-01-01T00:00:00Z'), -1],
    ['a fractional count', at('2026-01-01T00:00:00Z'), 1.5],
  ])('%s throws ValidationError', (_, after, count) => {
    expect(() => nextFireTimes({ type: 'ONCE', runAt: at('2027-01-01T00:00:00Z') }, after, count)).toThrow(
      ValidationError,
    );
  });
  it('an interval without anchorAt or startAt throws', () => {
    expect(() =>
      nextFireTimes({ type: 'INTERVAL', intervalSeconds: 60 }, at('2026-01-01T00:00:00Z'), 1),
    ).toThrow(/anchorAt or startAt/);
  });
});

describe('validateSchedule', () => {
  const issuesOf = (spec: unknown, prefix?: string) => {
    try {
      validateSchedule(spec as ScheduleSpec, prefix);
      return [];
    } catch (e) {
      expect(e).toBeInstanceOf(ValidationError);
      return (e as ValidationError).issues.map((i) => i.path);
    }
  };
  it.each<[string, unknown, string[]]>([
    [
      'accepts a cron in a zone',
      { type: 'CRON', cronExpression: '0 9 * * MON-FRI', timezone: 'Europe/Berlin' },
      [],
    ],
    [
      'accepts an interval anchored on startAt',
      { type: 'INTERVAL', intervalSeconds: 60, startAt: at('2026-01-01T00:00:00Z') },
      [],
    ],
    ['accepts a once', { type: 'ONCE', runAt: at('2026-01-01T00:00:00Z') }, []],
    [
      'rejects a bad expression',
      { type: 'CRON', cronExpression: '0 0 32 * *', timezone: 'UTC' },
      ['cronExpression'],
    ],
    [
      'rejects an expression that never fires',
      { type: 'CRON', cronExpression: '0 0 30 2 *', timezone: 'UTC' },
      ['cronExpression'],
    ],
    [
      'rejects an unknown zone',
      { type: 'CRON', cronExpression: '0 0 * * *', timezone: 'Europe/Atlantis' },
      ['timezone'],
    ],
    [
      'lists every problem at once',
      {
        type: 'CRON',
        cronExpression: '0 0 * *',
        timezone: '',
        dstGapPolicy: 'LATER',
        dstRepeatPolicy: 'ALL',
      },
      ['cronExpression', 'timezone', 'dstGapPolicy', 'dstRepeatPolicy'],
    ],
    [
      'rejects endAt before startAt',
      {
        type: 'CRON',
        cronExpression: '0 0 * * *',
        timezone: 'UTC',
        startAt: at('2026-02-01'),
        endAt: at('2026-01-01'),
      },
      ['endAt'],
    ],
    [
      'rejects a window without a fire',
      {
        type: 'CRON',
        cronExpression: '0 0 1 * *',
        timezone: 'UTC',
        startAt: at('2026-01-02'),
        endAt: at('2026-01-31'),
      },
      ['endAt'],
    ],
    [
      'rejects a zero interval',
      { type: 'INTERVAL', intervalSeconds: 0, anchorAt: at('2026-01-01') },
      ['intervalSeconds'],
    ],
    [
      'rejects a fractional interval',
      { type: 'INTERVAL', intervalSeconds: 1.5, anchorAt: at('2026-01-01') },
      ['intervalSeconds'],
    ],
    ['requires an anchor for an interval', { type: 'INTERVAL', intervalSeconds: 60 }, ['anchorAt']],
    [
      'rejects an unknown interval mode',
      { type: 'INTERVAL', intervalSeconds: 60, intervalMode: 'SOMETIMES', anchorAt: at('2026-01-01') },
      ['intervalMode'],
    ],
    ['rejects an invalid date', { type: 'ONCE', runAt: at('nope') }, ['runAt']],
    ['rejects an unknown type', { type: 'HOURLY' }, ['type']],
  ])('%s', (_, spec, paths) => {
    expect(issuesOf(spec)).toEqual(paths);
  });

  it('prefixes paths as the input nests them', () => {
    expect(issuesOf({ type: 'CRON', cronExpression: '0 0 * * *', timezone: 'Nowhere' }, 'schedule')).toEqual([
      'schedule.timezone',
    ]);
  });

  it('carries the cron position in the issue message', () => {
    expect(() => validateSchedule({ type: 'CRON', cronExpression: '0 60 * * * ?', timezone: 'UTC' })).toThrow(
      'cronExpression: cron: "60" at position 2 (minute): value out of range 0-59',
    );
  });
});

describe('throughput', () => {
  it('10,000 next-fire computations over varied specs and zones each return one later fire', () => {
    const specs: ScheduleSpec[] = [
      { type: 'CRON', cronExpression: '*/5 * * * *', timezone: 'Europe/Berlin' },
      {
        type: 'CRON',
        cronExpression: '0 9 * * MON-FRI',
        timezone: 'America/New_York',
        dstRepeatPolicy: 'BOTH',
      },
      { type: 'CRON', cronExpression: '0 0 L * ?', timezone: 'Australia/Lord_Howe', dstGapPolicy: 'SKIP' },
      { type: 'CRON', cronExpression: '0 30 2 ? * 6#3', timezone: 'Asia/Kathmandu' },
      { type: 'CRON', cronExpression: '0 0 29 2 *', timezone: 'UTC' },
      { type: 'INTERVAL', intervalSeconds: 90, anchorAt: at('2026-01-01T00:00:00.123Z') },
    ];
    const base = Date.UTC(2026, 0, 1);
    let ok = 0;
    for (let i = 0; i < 10_000; i++) {
      const after = new Date(base + i * 3_599_000);
      const [next] = nextFireTimes(specs[i % specs.length]!, after, 1);
      if (next !== undefined && next > after) ok++;
    }
    expect(ok).toBe(10_000);
  });
});

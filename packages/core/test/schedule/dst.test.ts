import { describe, expect, it } from 'vitest';
import { fireTimesBetween, nextFireTimes, type DstGapPolicy, type DstRepeatPolicy } from '../../src/index.ts';
import { intlWallClock, isoSeconds, localeWallClock } from './helpers.ts';

interface Row {
  behaviour: string;
  timezone: string;
  expression: string;
  gap?: DstGapPolicy;
  repeat?: DstRepeatPolicy;
  after: string;
  expected: string[];
}

/*
 * Transitions (worked out from the tz rules, checked against Intl below):
 * - Europe/Berlin 2026-03-29 01:00Z: 02:00 CET → 03:00 CEST (gap 02:00-03:00);
 *   2026-10-25 01:00Z: 03:00 CEST → 02:00 CET (02:00-03:00 twice).
 * - America/New_York 2026-03-08 07:00Z: 02:00 EST → 03:00 EDT; 2026-11-01 06:00Z: 02:00 EDT → 01:00 EST.
 * - Australia/Lord_Howe (+10:30 / +11) 2026-04-04 15:00Z: 02:00 → 01:30 (01:30-02:00 twice);
 *   2026-10-03 15:30Z: 02:00 → 02:30 (gap 02:00-02:30).
 */
const rows: Row[] = [
  // Europe/Berlin, spring forward
  {
    behaviour: 'SHIFT fires a skipped 02:30 at the first instant after the gap (03:00 CEST)',
    timezone: 'Europe/Berlin',
    expression: '30 2 * * *',
    after: '2026-03-28T12:00:00Z',
    expected: ['2026-03-29T01:00:00Z', '2026-03-30T00:30:00Z'],
  },
  {
    behaviour: 'SKIP drops a skipped 02:30',
    timezone: 'Europe/Berlin',
    expression: '30 2 * * *',
    gap: 'SKIP',
    after: '2026-03-28T12:00:00Z',
    expected: ['2026-03-30T00:30:00Z', '2026-03-31T00:30:00Z'],
  },
  {
    behaviour: 'a wall time right after the gap fires once, not again for the shift',
    timezone: 'Europe/Berlin',
    expression: '0 3 * * *',
    after: '2026-03-28T12:00:00Z',
    expected: ['2026-03-29T01:00:00Z', '2026-03-30T01:00:00Z'],
  },
  {
    behaviour: 'SHIFT folds every 15-minute slot in the gap into one fire',
    timezone: 'Europe/Berlin',
    expression: '*/15 * * * *',
    after: '2026-03-29T00:30:00Z',
    expected: ['2026-03-29T00:45:00Z', '2026-03-29T01:00:00Z', '2026-03-29T01:15:00Z'],
  },
  {
    behaviour: 'SKIP on a 15-minute cron fires at 03:00 like any hour',
    timezone: 'Europe/Berlin',
    expression: '*/15 * * * *',
    gap: 'SKIP',
    after: '2026-03-29T00:30:00Z',
    expected: ['2026-03-29T00:45:00Z', '2026-03-29T01:00:00Z', '2026-03-29T01:15:00Z'],
  },
  {
    behaviour: 'SHIFT folds sixty per-minute slots in the gap into one fire',
    timezone: 'Europe/Berlin',
    expression: '* * * * *',
    after: '2026-03-29T00:58:00Z',
    expected: ['2026-03-29T00:59:00Z', '2026-03-29T01:00:00Z', '2026-03-29T01:01:00Z'],
  },
  {
    behaviour: 'SKIP ends a schedule whose only fire falls in the gap',
    timezone: 'Europe/Berlin',
    expression: '0 30 2 29 3 ? 2026',
    gap: 'SKIP',
    after: '2026-01-01T00:00:00Z',
    expected: [],
  },
  {
    behaviour: 'SHIFT keeps a schedule whose only fire falls in the gap',
    timezone: 'Europe/Berlin',
    expression: '0 30 2 29 3 ? 2026',
    after: '2026-01-01T00:00:00Z',
    expected: ['2026-03-29T01:00:00Z'],
  },
  // Europe/Berlin, fall back
  {
    behaviour: 'FIRST fires a repeated 02:30 at its CEST occurrence',
    timezone: 'Europe/Berlin',
    expression: '30 2 * * *',
    after: '2026-10-24T12:00:00Z',
    expected: ['2026-10-25T00:30:00Z', '2026-10-26T01:30:00Z'],
  },
  {
    behaviour: 'LAST fires a repeated 02:30 at its CET occurrence',
    timezone: 'Europe/Berlin',
    expression: '30 2 * * *',
    repeat: 'LAST',
    after: '2026-10-24T12:00:00Z',
    expected: ['2026-10-25T01:30:00Z', '2026-10-26T01:30:00Z'],
  },
  {
    behaviour: 'BOTH fires a repeated 02:30 twice',
    timezone: 'Europe/Berlin',
    expression: '30 2 * * *',
    repeat: 'BOTH',
    after: '2026-10-24T12:00:00Z',
    expected: ['2026-10-25T00:30:00Z', '2026-10-25T01:30:00Z', '2026-10-26T01:30:00Z'],
  },
  {
    behaviour: 'FIRST on a 15-minute cron skips the repeated hour',
    timezone: 'Europe/Berlin',
    expression: '*/15 * * * *',
    after: '2026-10-24T23:40:00Z',
    expected: [
      '2026-10-24T23:45:00Z',
      '2026-10-25T00:00:00Z',
      '2026-10-25T00:15:00Z',
      '2026-10-25T00:30:00Z',
      '2026-10-25T00:45:00Z',
      '2026-10-25T02:00:00Z',
    ],
  },
  {
    behaviour: 'FIRST never fires the second occurrence, even when asked from between the two',
    timezone: 'Europe/Berlin',
    expression: '*/15 * * * *',
    after: '2026-10-25T00:45:00Z',
    expected: ['2026-10-25T02:00:00Z', '2026-10-25T02:15:00Z'],
  },
  {
    behaviour: 'LAST on a 15-minute cron waits for the repeated hour',
    timezone: 'Europe/Berlin',
    expression: '*/15 * * * *',
    repeat: 'LAST',
    after: '2026-10-24T23:40:00Z',
    expected: [
      '2026-10-24T23:45:00Z',
      '2026-10-25T01:00:00Z',
      '2026-10-25T01:15:00Z',
      '2026-10-25T01:30:00Z',
      '2026-10-25T01:45:00Z',
      '2026-10-25T02:00:00Z',
    ],
  },
  {
    behaviour: 'BOTH on a 15-minute cron fires every quarter hour of real time',
    timezone: 'Europe/Berlin',
    expression: '*/15 * * * *',
    repeat: 'BOTH',
    after: '2026-10-25T00:40:00Z',
    expected: ['2026-10-25T00:45:00Z', '2026-10-25T01:00:00Z', '2026-10-25T01:15:00Z'],
  },
  // America/New_York
  {
    behaviour: 'New York: SHIFT fires a skipped 02:30 at 03:00 EDT',
    timezone: 'America/New_York',
    expression: '30 2 * * *',
    after: '2026-03-07T12:00:00Z',
    expected: ['2026-03-08T07:00:00Z', '2026-03-09T06:30:00Z'],
  },
  {
    behaviour: 'New York: SKIP drops a skipped 02:30',
    timezone: 'America/New_York',
    expression: '30 2 * * *',
    gap: 'SKIP',
    after: '2026-03-07T12:00:00Z',
    expected: ['2026-03-09T06:30:00Z', '2026-03-10T06:30:00Z'],
  },
  {
    behaviour: 'New York: FIRST fires a repeated 01:30 in EDT',
    timezone: 'America/New_York',
    expression: '30 1 * * *',
    after: '2026-10-31T12:00:00Z',
    expected: ['2026-11-01T05:30:00Z', '2026-11-02T06:30:00Z'],
  },
  {
    behaviour: 'New York: LAST fires a repeated 01:30 in EST',
    timezone: 'America/New_York',
    expression: '30 1 * * *',
    repeat: 'LAST',
    after: '2026-10-31T12:00:00Z',
    expected: ['2026-11-01T06:30:00Z', '2026-11-02T06:30:00Z'],
  },
  {
    behaviour: 'New York: BOTH fires a repeated 01:30 twice',
    timezone: 'America/New_York',
    expression: '30 1 * * *',
    repeat: 'BOTH',
    after: '2026-10-31T12:00:00Z',
    expected: ['2026-11-01T05:30:00Z', '2026-11-01T06:30:00Z', '2026-11-02T06:30:00Z'],
  },
  {
    behaviour: 'New York: an hourly cron under FIRST leaves out the repeated 01:00',
    timezone: 'America/New_York',
    expression: '0 * * * *',
    after: '2026-11-01T03:30:00Z',
    expected: ['2026-11-01T04:00:00Z', '2026-11-01T05:00:00Z', '2026-11-01T07:00:00Z'],
  },
  {
    behaviour: 'New York: an hourly cron under LAST takes the later 01:00',
    timezone: 'America/New_York',
    expression: '0 * * * *',
    repeat: 'LAST',
    after: '2026-11-01T03:30:00Z',
    expected: ['2026-11-01T04:00:00Z', '2026-11-01T06:00:00Z', '2026-11-01T07:00:00Z'],
  },
  {
    behaviour: 'New York: an hourly cron under BOTH fires every real hour',
    timezone: 'America/New_York',
    expression: '0 * * * *',
    repeat: 'BOTH',
    after: '2026-11-01T03:30:00Z',
    expected: [
      '2026-11-01T04:00:00Z',
      '2026-11-01T05:00:00Z',
      '2026-11-01T06:00:00Z',
      '2026-11-01T07:00:00Z',
    ],
  },
  // Australia/Lord_Howe: half-hour shifts
  {
    behaviour: 'Lord Howe: FIRST fires a repeated 01:45 at +11:00',
    timezone: 'Australia/Lord_Howe',
    expression: '45 1 * * *',
    after: '2026-04-04T00:00:00Z',
    expected: ['2026-04-04T14:45:00Z', '2026-04-05T15:15:00Z'],
  },
  {
    behaviour: 'Lord Howe: LAST fires a repeated 01:45 at +10:30',
    timezone: 'Australia/Lord_Howe',
    expression: '45 1 * * *',
    repeat: 'LAST',
    after: '2026-04-04T00:00:00Z',
    expected: ['2026-04-04T15:15:00Z', '2026-04-05T15:15:00Z'],
  },
  {
    behaviour: 'Lord Howe: BOTH fires a repeated 01:45 half an hour apart',
    timezone: 'Australia/Lord_Howe',
    expression: '45 1 * * *',
    repeat: 'BOTH',
    after: '2026-04-04T00:00:00Z',
    expected: ['2026-04-04T14:45:00Z', '2026-04-04T15:15:00Z', '2026-04-05T15:15:00Z'],
  },
  {
    behaviour: 'Lord Howe: 02:00 just after the repeated half hour is not repeated',
    timezone: 'Australia/Lord_Howe',
    expression: '0 2 * * *',
    repeat: 'LAST',
    after: '2026-04-04T00:00:00Z',
    expected: ['2026-04-04T15:30:00Z', '2026-04-05T15:30:00Z'],
  },
  {
    behaviour: 'Lord Howe: FIRST on a 15-minute cron drops the repeated half hour',
    timezone: 'Australia/Lord_Howe',
    expression: '*/15 * * * *',
    after: '2026-04-04T14:20:00Z',
    expected: ['2026-04-04T14:30:00Z', '2026-04-04T14:45:00Z', '2026-04-04T15:30:00Z'],
  },
  {
    behaviour: 'Lord Howe: LAST on a 15-minute cron waits for the repeated half hour',
    timezone: 'Australia/Lord_Howe',
    expression: '*/15 * * * *',
    repeat: 'LAST',
    after: '2026-04-04T14:20:00Z',
    expected: ['2026-04-04T15:00:00Z', '2026-04-04T15:15:00Z', '2026-04-04T15:30:00Z'],
  },
  {
    behaviour: 'Lord Howe: BOTH on a 15-minute cron fires every real quarter hour',
    timezone: 'Australia/Lord_Howe',
    expression: '*/15 * * * *',
    repeat: 'BOTH',
    after: '2026-04-04T14:20:00Z',
    expected: [
      '2026-04-04T14:30:00Z',
      '2026-04-04T14:45:00Z',
      '2026-04-04T15:00:00Z',
      '2026-04-04T15:15:00Z',
    ],
  },
  {
    behaviour: 'Lord Howe: SHIFT fires a skipped 02:15 at 02:30',
    timezone: 'Australia/Lord_Howe',
    expression: '15 2 * * *',
    after: '2026-10-03T00:00:00Z',
    expected: ['2026-10-03T15:30:00Z', '2026-10-04T15:15:00Z'],
  },
  {
    behaviour: 'Lord Howe: SKIP drops a skipped 02:15',
    timezone: 'Australia/Lord_Howe',
    expression: '15 2 * * *',
    gap: 'SKIP',
    after: '2026-10-03T00:00:00Z',
    expected: ['2026-10-04T15:15:00Z', '2026-10-05T15:15:00Z'],
  },
  {
    behaviour: 'Lord Howe: SHIFT folds 02:00, 02:10, 02:20 and the real 02:30 into one fire',
    timezone: 'Australia/Lord_Howe',
    expression: '*/10 * * * *',
    after: '2026-10-03T15:15:00Z',
    expected: ['2026-10-03T15:20:00Z', '2026-10-03T15:30:00Z', '2026-10-03T15:40:00Z'],
  },
  {
    behaviour: 'Lord Howe: SKIP drops the skipped 02:00',
    timezone: 'Australia/Lord_Howe',
    expression: '0 2 * * *',
    gap: 'SKIP',
    after: '2026-10-03T00:00:00Z',
    expected: ['2026-10-04T15:00:00Z'],
  },
  // fixed odd offsets
  {
    behaviour: 'Kathmandu (+05:45) fires at local midnight',
    timezone: 'Asia/Kathmandu',
    expression: '0 0 * * *',
    after: '2026-01-01T00:00:00Z',
    expected: ['2026-01-01T18:15:00Z', '2026-01-02T18:15:00Z'],
  },
];

describe('cron fire times across DST transitions', () => {
  it.each(rows)('$behaviour', ({ timezone, expression, gap, repeat, after, expected }) => {
    const spec = {
      type: 'CRON' as const,
      cronExpression: expression,
      timezone,
      ...(gap ? { dstGapPolicy: gap } : {}),
      ...(repeat ? { dstRepeatPolicy: repeat } : {}),
    };
    expect(isoSeconds(nextFireTimes(spec, new Date(after), expected.length))).toEqual(expected);
  });

  // An independent look at the instants the tables rely on: Intl's own wall clock.
  const wallClocks: [instant: string, timezone: string, wall: string][] = [
    ['2026-03-29T00:59:59Z', 'Europe/Berlin', '2026-03-29 01:59:59'],
    ['2026-03-29T01:00:00Z', 'Europe/Berlin', '2026-03-29 03:00:00'],
    ['2026-10-25T00:30:00Z', 'Europe/Berlin', '2026-10-25 02:30:00'],
    ['2026-10-25T01:30:00Z', 'Europe/Berlin', '2026-10-25 02:30:00'],
    ['2026-10-25T02:00:00Z', 'Europe/Berlin', '2026-10-25 03:00:00'],
    ['2026-03-08T07:00:00Z', 'America/New_York', '2026-03-08 03:00:00'],
    ['2026-11-01T05:30:00Z', 'America/New_York', '2026-11-01 01:30:00'],
    ['2026-11-01T06:30:00Z', 'America/New_York', '2026-11-01 01:30:00'],
    ['2026-04-04T14:45:00Z', 'Australia/Lord_Howe', '2026-04-05 01:45:00'],
    ['2026-04-04T15:15:00Z', 'Australia/Lord_Howe', '2026-04-05 01:45:00'],
    ['2026-04-04T15:30:00Z', 'Australia/Lord_Howe', '2026-04-05 02:00:00'],
    ['2026-10-03T15:29:59Z', 'Australia/Lord_Howe', '2026-10-04 01:59:59'],
    ['2026-10-03T15:30:00Z', 'Australia/Lord_Howe', '2026-10-04 02:30:00'],
    ['2026-10-04T15:15:00Z', 'Australia/Lord_Howe', '2026-10-05 02:15:00'],
    ['2026-01-01T18:15:00Z', 'Asia/Kathmandu', '2026-01-02 00:00:00'],
  ];
  it.each(wallClocks)('table instant %s reads %s %s', (instant, timezone, wall) => {
    expect(localeWallClock(new Date(instant), timezone)).toBe(wall);
  });

  const zones = ['Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'Pacific/Chatham'];
  const policies: [DstGapPolicy, DstRepeatPolicy][] = [
    ['SHIFT', 'FIRST'],
    ['SKIP', 'LAST'],
    ['SHIFT', 'BOTH'],
  ];
  it.each(zones.flatMap((zone) => policies.map(([gap, repeat]) => ({ zone, gap, repeat }))))(
    'over a year in $zone ($gap/$repeat), fires strictly increase and a wall time fires once unless BOTH',
    ({ zone, gap, repeat }) => {
      const spec = {
        type: 'CRON' as const,
        cronExpression: '*/30 * * * *',
        timezone: zone,
        dstGapPolicy: gap,
        dstRepeatPolicy: repeat,
      };
      const { times } = fireTimesBetween(
        spec,
        new Date('2026-01-01T00:00:00Z'),
        new Date('2027-01-01T00:00:00Z'),
        20_000,
      );
      expect(times.length).toBeGreaterThan(17_000);
      const increasing = times.every((t, i) => i === 0 || t.getTime() > times[i - 1]!.getTime());
      expect(increasing).toBe(true);
      const walls = new Set(times.map((t) => intlWallClock(t, zone)));
      // each zone here repeats one stretch a year, holding one or two half-hour slots
      if (repeat === 'BOTH') expect(times.length - walls.size).toBeGreaterThanOrEqual(1);
      else expect(walls.size).toBe(times.length);
    },
  );
});

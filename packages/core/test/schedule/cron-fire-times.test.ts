import { describe, expect, it } from 'vitest';
import { nextFireTimes } from '../../src/index.ts';
import { isoSeconds } from './helpers.ts';

const utc = (cronExpression: string) => ({ type: 'CRON' as const, cronExpression, timezone: 'UTC' });

interface Row {
  behaviour: string;
  expression: string;
  after: string;
  expected: string[];
}

// Weekdays of 2026: Jan 1 is a Thursday; Feb 1, Mar 1 and Nov 1 are Sundays; Aug 1 is a Saturday.
const rows: Row[] = [
  {
    behaviour: 'steps over a range fire at each step',
    expression: '*/20 9-10 * * *',
    after: '2026-01-01T00:00:00Z',
    expected: [
      '2026-01-01T09:00:00Z',
      '2026-01-01T09:20:00Z',
      '2026-01-01T09:40:00Z',
      '2026-01-01T10:00:00Z',
    ],
  },
  {
    behaviour: 'a/n starts at a and runs to the end of the field',
    expression: '5/20 * * * *',
    after: '2026-01-01T00:00:00Z',
    expected: [
      '2026-01-01T00:05:00Z',
      '2026-01-01T00:25:00Z',
      '2026-01-01T00:45:00Z',
      '2026-01-01T01:05:00Z',
    ],
  },
  {
    behaviour: 'a-b/n steps inside the range',
    expression: '0 8-18/5 * * *',
    after: '2026-01-01T00:00:00Z',
    expected: [
      '2026-01-01T08:00:00Z',
      '2026-01-01T13:00:00Z',
      '2026-01-01T18:00:00Z',
      '2026-01-02T08:00:00Z',
    ],
  },
  {
    behaviour: 'lists fire on each listed day',
    expression: '0 0 1,15 * *',
    after: '2026-01-01T00:00:00Z',
    expected: ['2026-01-15T00:00:00Z', '2026-02-01T00:00:00Z', '2026-02-15T00:00:00Z'],
  },
  {
    behaviour: 'month and weekday names are case-insensitive (and both restrict)',
    expression: '0 12 * jan,Jul sun',
    after: '2026-01-01T00:00:00Z',
    expected: [
      '2026-01-04T12:00:00Z',
      '2026-01-11T12:00:00Z',
      '2026-01-18T12:00:00Z',
      '2026-01-25T12:00:00Z',
      '2026-07-05T12:00:00Z',
    ],
  },
  {
    behaviour: 'standard day-of-week 7 is Sunday',
    expression: '0 0 * * 7',
    after: '2026-01-01T00:00:00Z',
    expected: ['2026-01-04T00:00:00Z', '2026-01-11T00:00:00Z'],
  },
  {
    behaviour: 'standard day-of-week 0 is Sunday',
    expression: '0 0 * * 0',
    after: '2026-01-01T00:00:00Z',
    expected: ['2026-01-04T00:00:00Z', '2026-01-11T00:00:00Z'],
  },
  {
    behaviour: 'standard day-of-week 1 is Monday',
    expression: '0 0 * * 1',
    after: '2026-01-01T00:00:00Z',
    expected: ['2026-01-05T00:00:00Z', '2026-01-12T00:00:00Z'],
  },
  {
    behaviour: 'Quartz day-of-week 1 is Sunday',
    expression: '0 0 0 ? * 1',
    after: '2026-01-01T00:00:00Z',
    expected: ['2026-01-04T00:00:00Z', '2026-01-11T00:00:00Z'],
  },
  {
    behaviour: 'Quartz day-of-week 2 is Monday',
    expression: '0 0 0 ? * 2',
    after: '2026-01-01T00:00:00Z',
    expected: ['2026-01-05T00:00:00Z', '2026-01-12T00:00:00Z'],
  },
  {
    behaviour: 'Quartz seconds fire within the minute',
    expression: '*/20 0 0 * * ?',
    after: '2026-01-01T00:00:00Z',
    expected: ['2026-01-01T00:00:20Z', '2026-01-01T00:00:40Z', '2026-01-02T00:00:00Z'],
  },
  {
    behaviour: 'a fractional `after` still yields whole seconds strictly after it',
    expression: '* * * * * ?',
    after: '2026-01-01T00:00:00.500Z',
    expected: ['2026-01-01T00:00:01Z', '2026-01-01T00:00:02Z'],
  },
  {
    behaviour: 'Quartz mon-fri at 10:15 skips the weekend',
    expression: '0 15 10 ? * MON-FRI',
    after: '2026-01-02T10:15:00Z',
    expected: ['2026-01-05T10:15:00Z', '2026-01-06T10:15:00Z'],
  },
  {
    behaviour: 'the year field limits fires to the listed years',
    expression: '0 0 0 1 1 ? 2030,2032',
    after: '2026-01-01T00:00:00Z',
    expected: ['2030-01-01T00:00:00Z', '2032-01-01T00:00:00Z'],
  },
  {
    behaviour: 'a year range with a step',
    expression: '0 0 0 1 1 ? 2027-2035/4',
    after: '2026-01-01T00:00:00Z',
    expected: ['2027-01-01T00:00:00Z', '2031-01-01T00:00:00Z', '2035-01-01T00:00:00Z'],
  },
  {
    behaviour: '? in a 5-field day-of-month leaves day-of-week alone',
    expression: '0 0 ? * MON',
    after: '2026-01-01T00:00:00Z',
    expected: ['2026-01-05T00:00:00Z', '2026-01-12T00:00:00Z'],
  },
  {
    behaviour: 'L is the last day of each month',
    expression: '0 0 L * *',
    after: '2026-01-01T00:00:00Z',
    expected: [
      '2026-01-31T00:00:00Z',
      '2026-02-28T00:00:00Z',
      '2026-03-31T00:00:00Z',
      '2026-04-30T00:00:00Z',
    ],
  },
  {
    behaviour: 'L in February is the 29th in a leap year',
    expression: '0 0 L 2 *',
    after: '2027-06-01T00:00:00Z',
    expected: ['2028-02-29T00:00:00Z', '2029-02-28T00:00:00Z'],
  },
  {
    behaviour: 'L-3 is three days before the last day',
    expression: '0 0 L-3 * *',
    after: '2026-01-01T00:00:00Z',
    expected: ['2026-01-28T00:00:00Z', '2026-02-25T00:00:00Z', '2026-03-28T00:00:00Z'],
  },
  {
    behaviour: '15W is the 15th, or the nearest weekday when it falls on a weekend',
    expression: '0 0 15W * *',
    after: '2026-01-01T00:00:00Z',
    // Jan 15 Thu; Feb 15 and Mar 15 are Sundays → Monday 16th; Apr 15 Wed
    expected: [
      '2026-01-15T00:00:00Z',
      '2026-02-16T00:00:00Z',
      '2026-03-16T00:00:00Z',
      '2026-04-15T00:00:00Z',
    ],
  },
  {
    behaviour: '15W on a Saturday moves back to Friday the 14th',
    expression: '0 0 15W * *',
    after: '2026-08-01T00:00:00Z',
    expected: ['2026-08-14T00:00:00Z'],
  },
  {
    behaviour: '1W on a Saturday 1st moves forward to Monday the 3rd, not back into the previous month',
    expression: '0 0 1W * *',
    after: '2026-07-15T00:00:00Z',
    expected: ['2026-08-03T00:00:00Z', '2026-09-01T00:00:00Z', '2026-10-01T00:00:00Z'],
  },
  {
    behaviour: '1W on a Sunday 1st is Monday the 2nd',
    expression: '0 0 1W * *',
    after: '2026-01-15T00:00:00Z',
    expected: ['2026-02-02T00:00:00Z'],
  },
  {
    behaviour: '31W on a Sunday moves back to Friday the 29th, and skips months without a 31st',
    expression: '0 0 31W * *',
    after: '2026-05-15T00:00:00Z',
    expected: ['2026-05-29T00:00:00Z', '2026-07-31T00:00:00Z', '2026-08-31T00:00:00Z'],
  },
  {
    behaviour: '31W on a Saturday is Friday the 30th',
    expression: '0 0 31W * *',
    after: '2026-10-01T00:00:00Z',
    expected: ['2026-10-30T00:00:00Z'],
  },
  {
    behaviour: 'LW is the last weekday of the month',
    expression: '0 0 LW * *',
    after: '2026-01-01T00:00:00Z',
    // Jan 31 and Feb 28 are Saturdays; Mar 31 is a Tuesday; May 31 a Sunday
    expected: [
      '2026-01-30T00:00:00Z',
      '2026-02-27T00:00:00Z',
      '2026-03-31T00:00:00Z',
      '2026-04-30T00:00:00Z',
      '2026-05-29T00:00:00Z',
    ],
  },
  {
    behaviour: 'standard 5L is the last Friday',
    expression: '0 0 * * 5L',
    after: '2026-01-01T00:00:00Z',
    expected: ['2026-01-30T00:00:00Z', '2026-02-27T00:00:00Z', '2026-03-27T00:00:00Z'],
  },
  {
    behaviour: 'Quartz 6L is the last Friday',
    expression: '0 0 0 ? * 6L',
    after: '2026-01-01T00:00:00Z',
    expected: ['2026-01-30T00:00:00Z', '2026-02-27T00:00:00Z', '2026-03-27T00:00:00Z'],
  },
  {
    behaviour: 'FRIL is the last Friday',
    expression: '0 0 0 ? * FRIL',
    after: '2026-01-01T00:00:00Z',
    expected: ['2026-01-30T00:00:00Z', '2026-02-27T00:00:00Z', '2026-03-27T00:00:00Z'],
  },
  {
    behaviour: 'standard 2#3 is the third Tuesday',
    expression: '0 0 * * 2#3',
    after: '2026-01-01T00:00:00Z',
    expected: ['2026-01-20T00:00:00Z', '2026-02-17T00:00:00Z', '2026-03-17T00:00:00Z'],
  },
  {
    behaviour: 'Quartz 2#3 is the third Monday',
    expression: '0 0 0 ? * 2#3',
    after: '2026-01-01T00:00:00Z',
    expected: ['2026-01-19T00:00:00Z', '2026-02-16T00:00:00Z'],
  },
  {
    behaviour: '#5 fires only in months with a fifth such weekday',
    expression: '0 0 * * THU#5',
    after: '2026-01-01T00:00:00Z',
    expected: ['2026-01-29T00:00:00Z', '2026-04-30T00:00:00Z', '2026-07-30T00:00:00Z'],
  },
  {
    behaviour: 'a fifth Monday in February waits for a leap year starting on a Monday',
    expression: '0 0 0 ? 2 MON#5',
    after: '2026-01-01T00:00:00Z',
    expected: ['2044-02-29T00:00:00Z'],
  },
  {
    behaviour: 'L alone in day-of-week is Saturday',
    expression: '0 0 * * L',
    after: '2026-01-01T00:00:00Z',
    expected: ['2026-01-03T00:00:00Z', '2026-01-10T00:00:00Z'],
  },
  {
    behaviour: 'standard cron ORs a restricted day-of-month with a restricted day-of-week',
    expression: '0 0 13 * FRI',
    after: '2026-01-01T00:00:00Z',
    expected: [
      '2026-01-02T00:00:00Z',
      '2026-01-09T00:00:00Z',
      '2026-01-13T00:00:00Z',
      '2026-01-16T00:00:00Z',
    ],
  },
  {
    behaviour: 'Feb 29 fires only in leap years',
    expression: '0 0 29 2 *',
    after: '2026-01-01T00:00:00Z',
    expected: ['2028-02-29T00:00:00Z', '2032-02-29T00:00:00Z', '2036-02-29T00:00:00Z'],
  },
  {
    behaviour: 'the 31st skips months that are shorter',
    expression: '0 0 31 * *',
    after: '2026-01-01T00:00:00Z',
    expected: [
      '2026-01-31T00:00:00Z',
      '2026-03-31T00:00:00Z',
      '2026-05-31T00:00:00Z',
      '2026-07-31T00:00:00Z',
    ],
  },
  {
    behaviour: 'a reversed hour range wraps past midnight',
    expression: '0 22-2 * * *',
    after: '2026-01-01T00:00:00Z',
    expected: [
      '2026-01-01T01:00:00Z',
      '2026-01-01T02:00:00Z',
      '2026-01-01T22:00:00Z',
      '2026-01-01T23:00:00Z',
      '2026-01-02T00:00:00Z',
    ],
  },
  {
    behaviour: 'a reversed weekday range wraps over the weekend',
    expression: '0 0 * * FRI-MON',
    after: '2026-01-01T00:00:00Z',
    expected: [
      '2026-01-02T00:00:00Z',
      '2026-01-03T00:00:00Z',
      '2026-01-04T00:00:00Z',
      '2026-01-05T00:00:00Z',
      '2026-01-09T00:00:00Z',
    ],
  },
  {
    behaviour: 'a reversed month range wraps over the new year',
    expression: '0 0 1 NOV-FEB *',
    after: '2026-01-01T00:00:00Z',
    expected: [
      '2026-02-01T00:00:00Z',
      '2026-11-01T00:00:00Z',
      '2026-12-01T00:00:00Z',
      '2027-01-01T00:00:00Z',
    ],
  },
  {
    behaviour: '@monthly fires at midnight on the 1st',
    expression: '@monthly',
    after: '2026-01-01T00:00:00Z',
    expected: ['2026-02-01T00:00:00Z', '2026-03-01T00:00:00Z'],
  },
  {
    behaviour: 'the search crosses year ends',
    expression: '59 23 31 12 *',
    after: '2026-12-31T23:59:00Z',
    expected: ['2027-12-31T23:59:00Z'],
  },
];

describe('cron fire times (UTC)', () => {
  it.each(rows)('$behaviour ($expression)', ({ expression, after, expected }) => {
    expect(isoSeconds(nextFireTimes(utc(expression), new Date(after), expected.length))).toEqual(expected);
  });

  it('end with the last year the year field allows', () => {
    const times = nextFireTimes(utc('0 0 0 1 1 ? 2030,2032'), new Date('2026-01-01T00:00:00Z'), 5);
    expect(isoSeconds(times)).toEqual(['2030-01-01T00:00:00Z', '2032-01-01T00:00:00Z']);
  });

  it('end in 2199 for expressions without a year field', () => {
    const times = nextFireTimes(utc('0 0 1 1 *'), new Date('2197-06-01T00:00:00Z'), 5);
    expect(isoSeconds(times)).toEqual(['2198-01-01T00:00:00Z', '2199-01-01T00:00:00Z']);
  });
});

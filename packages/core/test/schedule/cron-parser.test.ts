import { describe, expect, it } from 'vitest';
import {
  CronSyntaxError,
  ValidationError,
  describeCronError,
  parseCron,
  type CronFields,
} from '../../src/index.ts';

describe('parseCron accepts', () => {
  const rows: { expression: string; expected: Partial<CronFields> }[] = [
    {
      expression: '*/15 9-17 * * MON-FRI',
      expected: {
        format: 'STANDARD',
        seconds: [0],
        minutes: [0, 15, 30, 45],
        hours: [9, 10, 11, 12, 13, 14, 15, 16, 17],
        daysOfWeek: [1, 2, 3, 4, 5],
        dayOfMonthRestricted: false,
        dayOfWeekRestricted: true,
      },
    },
    { expression: '5/20 * * * *', expected: { minutes: [5, 25, 45] } },
    { expression: '0 8-18/5 * * *', expected: { hours: [8, 13, 18] } },
    { expression: '0 0 1,15,L * *', expected: { daysOfMonth: [1, 15], lastDayOffsets: [0] } },
    { expression: '0 0 L-3 * *', expected: { daysOfMonth: [], lastDayOffsets: [3] } },
    { expression: '0 0 15W * *', expected: { nearestWeekdays: [15] } },
    { expression: '0 0 LW * *', expected: { lastWeekdayOfMonth: true } },
    { expression: '0 0 * jan,Jul,DEC *', expected: { months: [1, 7, 12] } },
    { expression: '0 0 * * sun,Sat', expected: { daysOfWeek: [0, 6] } },
    { expression: '0 0 * * 7', expected: { daysOfWeek: [0] } },
    { expression: '0 0 * * 5-7', expected: { daysOfWeek: [0, 5, 6] } },
    { expression: '0 0 * * */2', expected: { daysOfWeek: [0, 2, 4, 6] } },
    { expression: '0 0 * * L', expected: { daysOfWeek: [6] } },
    { expression: '0 0 * * 5L', expected: { lastWeekdaysOfMonth: [5] } },
    { expression: '0 0 * * 2#3', expected: { nthWeekdays: [{ weekday: 2, nth: 3 }] } },
    { expression: '0 0 ? * MON', expected: { dayOfMonthRestricted: false, daysOfWeek: [1] } },
    { expression: '0 22-2 * * *', expected: { hours: [0, 1, 2, 22, 23] } },
    { expression: '0 0 * * FRI-MON', expected: { daysOfWeek: [0, 1, 5, 6] } },
    { expression: '0 0 * * 7-2', expected: { daysOfWeek: [0, 1, 2] } },
    { expression: '0 0 1 NOV-FEB *', expected: { months: [1, 2, 11, 12] } },
    { expression: '  0   0  *  *  *  ', expected: { minutes: [0], hours: [0] } },
    { expression: '@daily', expected: { minutes: [0], hours: [0], dayOfWeekRestricted: false } },
    { expression: '@weekly', expected: { daysOfWeek: [0] } },
    { expression: '*/20 0 0 * * ?', expected: { format: 'QUARTZ', seconds: [0, 20, 40], minutes: [0] } },
    { expression: '0 0 0 ? * 1', expected: { daysOfWeek: [0] } },
    { expression: '0 0 0 ? * 2-6', expected: { daysOfWeek: [1, 2, 3, 4, 5] } },
    { expression: '0 0 0 ? * */2', expected: { daysOfWeek: [0, 2, 4, 6] } },
    { expression: '0 0 0 ? * L', expected: { daysOfWeek: [6] } },
    { expression: '0 0 0 ? * 6L', expected: { lastWeekdaysOfMonth: [5] } },
    { expression: '0 0 0 ? * FRIL', expected: { lastWeekdaysOfMonth: [5] } },
    { expression: '0 0 0 ? * 3#3', expected: { nthWeekdays: [{ weekday: 2, nth: 3 }] } },
    { expression: '0 0 0 ? * MON#1', expected: { nthWeekdays: [{ weekday: 1, nth: 1 }] } },
    { expression: '0 0 12 * * MON', expected: { dayOfMonthRestricted: false, daysOfWeek: [1] } },
    { expression: '0 0 0 1 1 ? 2027-2035/4', expected: { years: [2027, 2031, 2035] } },
    { expression: '0 0 0 1 1 ? *', expected: { years: null } },
  ];
  it.each(rows)('$expression', ({ expression, expected }) => {
    expect(parseCron(expression)).toMatchObject({ source: expression, ...expected });
  });

  it('reads 5 fields with standard weekday numbering and 6-7 fields with Quartz numbering', () => {
    expect(parseCron('0 0 * * 1').daysOfWeek).toEqual([1]); // Monday
    expect(parseCron('0 0 0 ? * 1').daysOfWeek).toEqual([0]); // Sunday
  });
});

describe('parseCron rejects', () => {
  const rows: { expression: string; field: string; position: number; token: string; reason: RegExp }[] = [
    { expression: '60 * * * *', field: 'minute', position: 0, token: '60', reason: /out of range 0-59/ },
    { expression: '0 24 * * *', field: 'hour', position: 2, token: '24', reason: /out of range 0-23/ },
    {
      expression: '0 0 32 * *',
      field: 'day-of-month',
      position: 4,
      token: '32',
      reason: /out of range 1-31/,
    },
    { expression: '0 0 0 * *', field: 'day-of-month', position: 4, token: '0', reason: /out of range 1-31/ },
    { expression: '0 0 * 13 *', field: 'month', position: 6, token: '13', reason: /out of range 1-12/ },
    { expression: '0 0 * * 8', field: 'day-of-week', position: 8, token: '8', reason: /out of range 0-7/ },
    { expression: '0 0 0 ? * 0', field: 'day-of-week', position: 10, token: '0', reason: /out of range 1-7/ },
    { expression: '60 0 0 * * ?', field: 'second', position: 0, token: '60', reason: /out of range 0-59/ },
    {
      expression: '0 0 0 1 1 ? 1969',
      field: 'year',
      position: 12,
      token: '1969',
      reason: /out of range 1970-2199/,
    },
    {
      expression: '* * * *',
      field: 'expression',
      position: 0,
      token: '* * * *',
      reason: /expected 5 fields.*got 4/,
    },
    { expression: '* * * * * * * *', field: 'expression', position: 14, token: '*', reason: /got 8/ },
    { expression: '', field: 'expression', position: 0, token: '', reason: /got 0/ },
    {
      expression: '*/0 * * * *',
      field: 'minute',
      position: 2,
      token: '0',
      reason: /step must be at least 1/,
    },
    {
      expression: '*/x * * * *',
      field: 'minute',
      position: 2,
      token: 'x',
      reason: /step must be a positive integer/,
    },
    {
      expression: '5/ * * * *',
      field: 'minute',
      position: 1,
      token: '/',
      reason: /step must be a positive integer/,
    },
    {
      expression: '*/61 * * * *',
      field: 'minute',
      position: 2,
      token: '61',
      reason: /step must be at most 60/,
    },
    {
      expression: '0 0 0 1 1 ? 2030-2020',
      field: 'year',
      position: 12,
      token: '2030-2020',
      reason: /after its end/,
    },
    {
      expression: '0 15W * * *',
      field: 'hour',
      position: 2,
      token: '15W',
      reason: /"W" is only allowed in day-of-month/,
    },
    {
      expression: '0 0 * * 1W',
      field: 'day-of-week',
      position: 8,
      token: '1W',
      reason: /"W" is only allowed/,
    },
    {
      expression: '0 L * * *',
      field: 'hour',
      position: 2,
      token: 'L',
      reason: /"L" is only allowed in day-of-month and/,
    },
    {
      expression: '0 0 5L * *',
      field: 'day-of-month',
      position: 4,
      token: '5L',
      reason: /must be L, L-n or LW/,
    },
    { expression: '0 0 L-31 * *', field: 'day-of-month', position: 6, token: '31', reason: /0-30/ },
    {
      expression: '0 0 32W * *',
      field: 'day-of-month',
      position: 4,
      token: '32',
      reason: /out of range 1-31/,
    },
    {
      expression: '0 0 2#3 * *',
      field: 'day-of-month',
      position: 4,
      token: '2#3',
      reason: /only allowed in day-of-week/,
    },
    {
      expression: '0 0 * * 2#6',
      field: 'day-of-week',
      position: 10,
      token: '6',
      reason: /occurrence after "#" must be 1-5/,
    },
    { expression: '0 0 * * mon#0', field: 'day-of-week', position: 12, token: '0', reason: /must be 1-5/ },
    {
      expression: '0 0 * * MON#2/2',
      field: 'day-of-week',
      position: 8,
      token: 'MON#2/2',
      reason: /step cannot follow/,
    },
    { expression: '1,,2 * * * *', field: 'minute', position: 1, token: ',', reason: /empty list item/ },
    { expression: ',1 * * * *', field: 'minute', position: 0, token: ',', reason: /empty list item/ },
    { expression: '0 0 1, * *', field: 'day-of-month', position: 5, token: ',', reason: /empty list item/ },
    {
      expression: '0 ? * * *',
      field: 'hour',
      position: 2,
      token: '?',
      reason: /only allowed in day-of-month and day-of-week/,
    },
    {
      expression: '0 0 1,? * *',
      field: 'day-of-month',
      position: 6,
      token: '?',
      reason: /must be the whole field/,
    },
    { expression: '0 0 ? * ?', field: 'day-of-week', position: 8, token: '?', reason: /only one of/ },
    {
      expression: '0 0 12 15 * MON',
      field: 'day-of-week',
      position: 12,
      token: 'MON',
      reason: /set one of them to "\?"/,
    },
    { expression: 'x * * * *', field: 'minute', position: 0, token: 'x', reason: /not a number/ },
    {
      expression: '0 0 * jul-foo *',
      field: 'month',
      position: 10,
      token: 'foo',
      reason: /unknown name \(expected JAN-DEC\)/,
    },
    { expression: '@reboot', field: 'expression', position: 0, token: '@reboot', reason: /unknown macro/ },
    {
      expression: '0 0 30 2 *',
      field: 'expression',
      position: 0,
      token: '0 0 30 2 *',
      reason: /can never fire/,
    },
    {
      expression: '0 0 31 4,6,9,11 *',
      field: 'expression',
      position: 0,
      token: '0 0 31 4,6,9,11 *',
      reason: /never/,
    },
    {
      expression: '0 0 0 ? 2 MON#5 2026',
      field: 'expression',
      position: 0,
      token: '0 0 0 ? 2 MON#5 2026',
      reason: /never/,
    },
  ];
  it.each(rows)('$expression: $field at $position', ({ expression, field, position, token, reason }) => {
    let error: unknown;
    try {
      parseCron(expression);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CronSyntaxError);
    expect(error).toBeInstanceOf(ValidationError);
    const e = error as CronSyntaxError;
    expect({ field: e.field, position: e.position, token: e.token }).toEqual({ field, position, token });
    expect(e.reason).toMatch(reason);
    expect(e.code).toBe('VALIDATION_FAILED');
    expect(e.message).toBe(`cron: "${token}" at position ${position} (${field}): ${e.reason}`);
    expect(e.issues).toEqual([{ path: 'cronExpression', message: e.message }]);
  });

  it('word the message as "cron: <token> at position <n> (<field>): <reason>"', () => {
    expect(() => parseCron('0 60 * * * ?')).toThrow(
      'cron: "60" at position 2 (minute): value out of range 0-59',
    );
  });

  it('can be shown with a caret under the offending token', () => {
    try {
      parseCron('0 60 * * * ?');
      expect.unreachable();
    } catch (e) {
      expect(describeCronError(e as CronSyntaxError)).toBe(
        '0 60 * * * ?\n  ^^ minute: value out of range 0-59',
      );
    }
  });
});

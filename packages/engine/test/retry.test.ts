import { describe, expect, it } from 'vitest';
import { isRetryCondition, matchesRetryOn, retryDelayMs } from '../src/index.ts';

describe('retry_on matching', () => {
  const cases: [string[], Parameters<typeof matchesRetryOn>[1], boolean][] = [
    [['TIMEOUT'], { code: 'TIMEOUT' }, true],
    [['TIMEOUT'], { code: 'NETWORK' }, false],
    [['NETWORK'], { code: 'NETWORK' }, true],
    [['HTTP_5XX'], { code: 'HTTP_5XX', httpStatus: 503 }, true],
    [['HTTP_5XX'], { code: 'HTTP_4XX', httpStatus: 404 }, false],
    [['HTTP_429'], { code: 'HTTP_429', httpStatus: 429 }, true],
    [['HTTP_4XX'], { code: 'HTTP_429', httpStatus: 429 }, false],
    [['HTTP_4XX'], { code: 'HTTP_4XX', httpStatus: 409 }, true],
    [['EXIT_CODE:2'], { code: 'EXIT_CODE', exitCode: 2 }, true],
    [['EXIT_CODE:2'], { code: 'EXIT_CODE', exitCode: 1 }, false],
    [['ERROR_CODE:DEADLOCK'], { code: 'DEADLOCK' }, true],
    [['ERROR_CODE:DEADLOCK'], { code: 'OTHER' }, false],
    [['ERROR_CODE:SQLSTATE:40001'], { code: 'SQLSTATE:40001' }, true],
    [['NETWORK'], { code: 'CIRCUIT_OPEN' }, true],
    [[], { code: 'TIMEOUT' }, false],
  ];
  it.each(cases)('retry_on %j with %j → %s', (retryOn, failure, expected) => {
    expect(matchesRetryOn(retryOn, failure)).toBe(expected);
  });

  it('knows its conditions', () => {
    for (const c of ['TIMEOUT', 'HTTP_5XX', 'EXIT_CODE:137', 'ERROR_CODE:X_1'])
      expect(isRetryCondition(c)).toBe(true);
    for (const c of ['timeout', 'EXIT_CODE:', 'ERROR_CODE:a b', 'HTTP_3XX'])
      expect(isRetryCondition(c)).toBe(false);
  });
});

describe('backoff', () => {
  const fixed = { backoffStrategy: 'FIXED' as const, backoffSeconds: 30, jitter: false };
  const expo = { backoffStrategy: 'EXPONENTIAL' as const, backoffSeconds: 10, jitter: false };
  it('FIXED waits the same each time', () => {
    expect([1, 2, 5].map((a) => retryDelayMs(fixed, a))).toEqual([30_000, 30_000, 30_000]);
  });
  it('EXPONENTIAL doubles from backoff_seconds and stops at one hour', () => {
    expect([1, 2, 3, 4].map((a) => retryDelayMs(expo, a))).toEqual([10_000, 20_000, 40_000, 80_000]);
    expect(retryDelayMs(expo, 12)).toBe(3_600_000);
    expect(retryDelayMs({ ...fixed, backoffSeconds: 3600 }, 1)).toBe(3_600_000);
  });
  it('jitter lands in the upper half of the delay', () => {
    const j = { ...expo, jitter: true };
    expect(retryDelayMs(j, 2, () => 0)).toBe(10_000);
    expect(retryDelayMs(j, 2, () => 0.999999)).toBe(20_000);
    for (let i = 0; i < 100; i++) {
      const d = retryDelayMs(j, 3);
      expect(d).toBeGreaterThanOrEqual(20_000);
      expect(d).toBeLessThanOrEqual(40_000);
    }
  });
});

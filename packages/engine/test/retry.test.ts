import { describe, expect, it } from 'vitest';
import {
  TRANSIENT_CODES,
  isRetryCondition,
  matchesRetryOn,
  retryDelayMs,
  shouldRetry,
} from '../src/index.ts';

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

describe('retried by default: the failure class', () => {
  const cases: [string[], Parameters<typeof shouldRetry>[1], boolean][] = [
    // No retry_on: the class decides.
    [[], { code: 'DUMMY_FAILURE', retryable: true }, true],
    [[], { code: 'DUMMY_FAILURE', retryable: false }, false],
    [[], { code: 'HTTP_4XX', httpStatus: 404, retryable: false }, false],
    [[], { code: 'HTTP_5XX', httpStatus: 503, retryable: true }, true],
    // No class given (a finish recorded by the engine itself): the code's default.
    [[], { code: 'TIMEOUT' }, true],
    [[], { code: 'NETWORK' }, true],
    [[], { code: 'HTTP_5XX' }, true],
    [[], { code: 'HTTP_429' }, true],
    [[], { code: 'CIRCUIT_OPEN' }, true],
    [[], { code: 'WORKER_LOST' }, true],
    [[], { code: 'HTTP_4XX' }, false],
    [[], { code: 'INVALID_PAYLOAD' }, false],
    [[], { code: null }, false],
    // A retry_on list replaces the default, both ways.
    [['HTTP_5XX'], { code: 'DUMMY_FAILURE', retryable: true }, false],
    [['HTTP_4XX'], { code: 'HTTP_4XX', httpStatus: 409, retryable: false }, true],
    [['ERROR_CODE:DUMMY_FAILURE'], { code: 'DUMMY_FAILURE', retryable: false }, true],
  ];
  it.each(cases)('retry_on %j with %j → %s', (retryOn, failure, expected) => {
    expect(shouldRetry(retryOn, failure)).toBe(expected);
  });
  it('transient codes are the ones the README lists', () => {
    expect([...TRANSIENT_CODES].sort()).toEqual(
      ['CIRCUIT_OPEN', 'HTTP_429', 'HTTP_5XX', 'NETWORK', 'RETRYABLE', 'TIMEOUT', 'WORKER_LOST'].sort(),
    );
  });
});

describe('Retry-After is a floor on the backoff', () => {
  const fixed = { backoffStrategy: 'FIXED' as const, backoffSeconds: 2, jitter: false };
  it('a longer Retry-After wins, a shorter one changes nothing', () => {
    expect(retryDelayMs(fixed, 1, Math.random, 9_000)).toBe(9_000);
    expect(retryDelayMs(fixed, 1, Math.random, 500)).toBe(2_000);
    expect(retryDelayMs(fixed, 1, Math.random, null)).toBe(2_000);
  });
  it('holds with jitter, and is itself capped at one hour', () => {
    const j = { ...fixed, jitter: true };
    for (let i = 0; i < 50; i++) expect(retryDelayMs(j, 1, Math.random, 5_000)).toBeGreaterThanOrEqual(5_000);
    expect(retryDelayMs(fixed, 1, Math.random, 86_400_000)).toBe(3_600_000);
  });
});

import { PermanentJobError, RetryableJobError, ValidationError, dummyPayloadSchema } from '@chronos/core';
import { describe, expect, it } from 'vitest';
import { classifyFailure, type FailureClass } from '../src/index.ts';

/** An error as Node's net/dns/undici or a driver throws it: a message and a code, nothing typed. */
const sys = (code: string | number, message = `${String(code)} happened`) =>
  Object.assign(new Error(message), { code });

const NOW = Date.parse('2026-12-01T00:00:00Z');

describe('classifyFailure: the one classifier of run failures', () => {
  const cases: [string, unknown, Partial<FailureClass>][] = [
    // Typed errors say it themselves.
    [
      'a RetryableJobError',
      new RetryableJobError('flaky', 'DUMMY_FAILURE'),
      { code: 'DUMMY_FAILURE', retryable: true },
    ],
    [
      'a PermanentJobError',
      new PermanentJobError('bad', 'DUMMY_FAILURE'),
      { code: 'DUMMY_FAILURE', retryable: false },
    ],
    [
      'an HTTP 503 with Retry-After',
      Object.assign(new RetryableJobError('503', 'HTTP_5XX'), { httpStatus: 503, retryAfterMs: 7000 }),
      { code: 'HTTP_5XX', retryable: true, httpStatus: 503, retryAfterMs: 7000 },
    ],
    [
      'an HTTP 429',
      Object.assign(new RetryableJobError('429', 'HTTP_429'), { httpStatus: 429 }),
      { code: 'HTTP_429', retryable: true, httpStatus: 429 },
    ],
    [
      'an HTTP 404',
      Object.assign(new PermanentJobError('404', 'HTTP_4XX'), { httpStatus: 404 }),
      { code: 'HTTP_4XX', retryable: false, httpStatus: 404 },
    ],
    [
      'an open circuit with its retry time',
      Object.assign(new RetryableJobError('open', 'CIRCUIT_OPEN'), { retryAt: new Date(NOW + 30_000) }),
      { code: 'CIRCUIT_OPEN', retryable: true, retryAfterMs: 30_000 },
    ],
    [
      'a script exit code',
      Object.assign(new PermanentJobError('exit 3', 'EXIT_CODE'), { exitCode: 3 }),
      { code: 'EXIT_CODE', retryable: false, exitCode: 3 },
    ],
    [
      'an invalid payload',
      new PermanentJobError('x', 'INVALID_PAYLOAD'),
      { code: 'INVALID_PAYLOAD', retryable: false },
    ],
    // Other Chronos errors and zod: the input is wrong, the next attempt has the same.
    [
      'a ValidationError',
      new ValidationError('bad template'),
      { code: 'VALIDATION_FAILED', retryable: false },
    ],
    [
      'a ZodError',
      dummyPayloadSchema.safeParse({ metadata: { sleepMs: 'long' } }).error,
      { code: 'INVALID_PAYLOAD', retryable: false },
    ],
    // Untyped: sockets, timeouts, drivers.
    ['ECONNRESET', sys('ECONNRESET'), { code: 'NETWORK', retryable: true }],
    ['ECONNREFUSED', sys('ECONNREFUSED'), { code: 'NETWORK', retryable: true }],
    ['EAI_AGAIN', sys('EAI_AGAIN'), { code: 'NETWORK', retryable: true }],
    ['ETIMEDOUT', sys('ETIMEDOUT'), { code: 'TIMEOUT', retryable: true }],
    ['undici connect timeout', sys('UND_ERR_CONNECT_TIMEOUT'), { code: 'TIMEOUT', retryable: true }],
    [
      "fetch's TypeError wrapping ECONNRESET",
      new TypeError('fetch failed', { cause: sys('ECONNRESET') }),
      { code: 'NETWORK', retryable: true },
    ],
    [
      'AbortSignal.timeout',
      new DOMException('The operation timed out', 'TimeoutError'),
      { code: 'TIMEOUT', retryable: true },
    ],
    [
      "pg's statement_timeout (57014)",
      sys('57014', 'canceling statement due to statement timeout'),
      { code: 'TIMEOUT', retryable: true },
    ],
    [
      "pg's query read timeout (no code)",
      new Error('Query read timeout'),
      { code: 'TIMEOUT', retryable: true },
    ],
    [
      "knex's pool timeout (no code)",
      new Error('Knex: Timeout acquiring a connection.'),
      { code: 'TIMEOUT', retryable: true },
    ],
    ['a deadlock', sys('40P01', 'deadlock detected'), { code: 'SQLSTATE:40P01', retryable: true }],
    ['a serialization failure', sys('40001'), { code: 'SQLSTATE:40001', retryable: true }],
    ['a MySQL deadlock', sys('ER_LOCK_DEADLOCK'), { code: 'ER_LOCK_DEADLOCK', retryable: true }],
    ['a lost MySQL connection', sys('PROTOCOL_CONNECTION_LOST'), { code: 'NETWORK', retryable: true }],
    [
      'a database outage (Prisma P1001)',
      sys('P1001', "Can't reach database server"),
      { code: 'NETWORK', retryable: true },
    ],
    [
      'a database shutting down (57P01)',
      sys('57P01', 'terminating connection'),
      { code: 'NETWORK', retryable: true },
    ],
    [
      "pg's Connection terminated",
      new Error('Connection terminated unexpectedly'),
      { code: 'NETWORK', retryable: true },
    ],
    ['a missing file', sys('ENOENT'), { code: 'ENOENT', retryable: false }],
    ['a permission denied', sys('EACCES'), { code: 'EACCES', retryable: false }],
    // Unknown: the attempts the job allows.
    ['a plain Error', new Error('boom'), { code: 'ERROR', retryable: true }],
    ['an error with its own code', sys('E_SOMETHING'), { code: 'E_SOMETHING', retryable: true }],
    ['a thrown string', 'oops', { code: 'ERROR', retryable: true }],
    ['undefined', undefined, { code: 'ERROR', retryable: true }],
  ];
  it.each(cases)('%s', (_name, err, expected) => {
    const got = classifyFailure(err, NOW);
    expect(got).toMatchObject(expected);
    if (expected.retryAfterMs === undefined) expect(got.retryAfterMs).toBeUndefined();
  });

  it('a typed error wrapped in an untyped one keeps its class', () => {
    const inner = Object.assign(new PermanentJobError('404', 'HTTP_4XX'), { httpStatus: 404 });
    expect(classifyFailure(new Error('wrapped', { cause: inner }))).toMatchObject({
      code: 'HTTP_4XX',
      retryable: false,
      httpStatus: 404,
    });
  });

  it('a cause cycle ends', () => {
    const a = new Error('a') as Error & { cause?: unknown };
    const b = new Error('b', { cause: a });
    a.cause = b;
    expect(classifyFailure(a)).toMatchObject({ code: 'ERROR', retryable: true });
  });
});

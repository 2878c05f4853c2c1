// The one place where a run's failure gets its class: the code recorded in job_runs.error_code and
// matched by retry_on, whether it is transient (retried by default) and how long the target asked
// to be left alone. Typed job errors (RetryableJobError, PermanentJobError and their subclasses in
// the executors) say it themselves; everything else — a socket's ECONNRESET, a driver's timeout, a
// database outage, a bug — is converted here, so every executor and the worker agree on it.

import { ChronosError } from '@chronos/core';
import { isDatabaseUnavailable } from '@chronos/db';

/** A failure as the retry policy sees it. */
export interface FailureClass {
  /** Stable code: TIMEOUT, NETWORK, HTTP_5XX, … or the typed error's own (DUMMY_FAILURE, SQLSTATE:…). */
  code: string;
  /** Transient: retried by default (a job's retry_on list, when given, decides instead). */
  retryable: boolean;
  /** The least wait before the next attempt that the target asked for (HTTP Retry-After). */
  retryAfterMs?: number;
  httpStatus: number | null;
  exitCode: number | null;
}

/** Socket errors of a connection that could not be made, broke, or went quiet. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENETRESET',
  'EPROTO',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
  'PROTOCOL_CONNECTION_LOST',
  'ER_CON_COUNT_ERROR',
]);
const TIMEOUT_CODES = new Set([
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_LOCK_WAIT_TIMEOUT',
  // PostgreSQL query_canceled: statement_timeout / lock_timeout.
  '57014',
]);
/** SQLSTATEs (and MySQL names) another attempt may fix: serialization failure, deadlock, lock not available. */
const TRANSIENT_SQL = new Set(['40001', '40P01', '55P03', 'ER_LOCK_DEADLOCK']);
/** A file or permission that is not there: the same on the next attempt. */
const PERMANENT_CODES = new Set([
  'ENOENT',
  'EACCES',
  'EPERM',
  'ENOTDIR',
  'EISDIR',
  'EEXIST',
  'EROFS',
  'ELOOP',
]);
/** Drivers' timeouts that carry no code (pg's "Query read timeout", knex's "Timeout acquiring a connection"). */
const TIMEOUT_MESSAGE = /\btime(?:d)?[ -]?out\b|\btimeout\b/i;

interface ErrorLike {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  cause?: unknown;
  retryable?: unknown;
  httpStatus?: unknown;
  exitCode?: unknown;
  retryAfterMs?: unknown;
  retryAt?: unknown;
  errors?: unknown;
}

const str = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** The error and what it wraps (cause chain, AggregateError's errors), outermost first. */
function chain(err: unknown): ErrorLike[] {
  const out: ErrorLike[] = [];
  const seen = new Set<unknown>();
  const visit = (e: unknown) => {
    if (e === null || typeof e !== 'object' || seen.has(e) || out.length >= 16) return;
    seen.add(e);
    const x = e as ErrorLike;
    out.push(x);
    visit(x.cause);
    if (Array.isArray(x.errors)) for (const inner of x.errors as unknown[]) visit(inner);
  };
  visit(err);
  return out;
}

/**
 * The class of a run's failure, from the error its executor threw (`now` dates a `retryAt`):
 * 1. an error that says `retryable` (RetryableJobError, PermanentJobError and their subclasses)
 *    keeps its code and class, and its `retryAfterMs` (or `retryAt`) as the target's wish;
 * 2. another Chronos error with a code (a bad payload, a template or secret that cannot be
 *    resolved), and a zod error, are permanent;
 * 3. untyped errors, looking through their causes: socket errors are NETWORK, timeouts TIMEOUT,
 *    a database outage NETWORK, a deadlock or serialization failure keeps its SQLSTATE — all
 *    transient; a missing file or permission keeps its code and is permanent;
 * 4. anything else is ERROR (or its own code), transient: as in BullMQ and Temporal, an unknown
 *    failure gets the attempts the job allows, and the last one is dead-lettered.
 */
export function classifyFailure(err: unknown, now: number = Date.now()): FailureClass {
  const errors = chain(err);
  const top = errors[0] ?? {};
  const httpStatus = errors.map((e) => num(e.httpStatus)).find((v) => v !== null) ?? null;
  const exitCode = errors.map((e) => num(e.exitCode)).find((v) => v !== null) ?? null;
  const base = { httpStatus, exitCode };

  const typed = errors.find((e) => typeof e.retryable === 'boolean' && str(e.code));
  if (typed) {
    const retryAfterMs =
      num(typed.retryAfterMs) ??
      (typed.retryAt instanceof Date ? Math.max(0, typed.retryAt.getTime() - now) : null);
    return {
      ...base,
      code: typed.code as string,
      retryable: typed.retryable as boolean,
      ...(retryAfterMs !== null && retryAfterMs > 0 ? { retryAfterMs } : {}),
    };
  }
  if (top.name === 'ZodError') return { ...base, code: 'INVALID_PAYLOAD', retryable: false };
  if (err instanceof ChronosError && str(top.code))
    return { ...base, code: top.code as string, retryable: false };

  for (const e of errors) {
    const code = str(e.code) ?? (typeof e.code === 'number' ? String(e.code) : null);
    if (e.name === 'TimeoutError') return { ...base, code: 'TIMEOUT', retryable: true };
    if (code === null) continue;
    if (TIMEOUT_CODES.has(code)) return { ...base, code: 'TIMEOUT', retryable: true };
    if (NETWORK_CODES.has(code)) return { ...base, code: 'NETWORK', retryable: true };
    if (TRANSIENT_SQL.has(code))
      return { ...base, code: /^[0-9A-Z]{5}$/.test(code) ? `SQLSTATE:${code}` : code, retryable: true };
    if (PERMANENT_CODES.has(code)) return { ...base, code, retryable: false };
  }
  if (isDatabaseUnavailable(err)) return { ...base, code: 'NETWORK', retryable: true };
  if (errors.some((e) => typeof e.message === 'string' && TIMEOUT_MESSAGE.test(e.message)))
    return { ...base, code: 'TIMEOUT', retryable: true };
  const own = str(top.code);
  return { ...base, code: own && /^[A-Za-z0-9_.:-]{1,64}$/.test(own) ? own : 'ERROR', retryable: true };
}

import { PermanentJobError, RetryableJobError } from '@chronos/core';
import type { DatabaseSession, DriverFailure } from './session.ts';

/**
 * SQLSTATEs worth another attempt: serialization failure, deadlock, lock not available, too many
 * connections, server shutting down / starting, and the connection-exception class 08.
 */
const RETRYABLE_SQLSTATES = new Set(['40001', '40P01', '55P03', '53300', '57P01', '57P02', '57P03']);
/** MySQL errors whose SQLSTATE is the generic HY000 but which a retry may fix. */
const RETRYABLE_MYSQL_ERRORS = new Set([
  'ER_LOCK_WAIT_TIMEOUT',
  'ER_LOCK_DEADLOCK',
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
]);
/** MySQL max_execution_time / MariaDB max_statement_time. */
const MYSQL_TIMEOUT_ERRNOS = new Set([3024, 1969]);
const MYSQL_INTERRUPTED = 1317;
const MYSQL_READ_ONLY_TRANSACTION = 1792;

export interface FailureContext {
  flavor: DatabaseSession['flavor'];
  /** Masks the URL's password in any text. */
  mask: (text: string) => string;
  /** The executor's own timer fired (so a cancellation is the query timeout). */
  timedOut: boolean;
  timeoutSeconds: number | null;
}

function queryTimeout(ctx: FailureContext, detail: string): RetryableJobError {
  const limit = ctx.timeoutSeconds === null ? '' : ` of ${ctx.timeoutSeconds}s`;
  return new RetryableJobError(
    ctx.mask(`the query exceeded its timeout${limit} and was cancelled: ${detail}`),
    'QUERY_TIMEOUT',
  );
}

/**
 * The job error for a driver failure: SQL errors carry `SQLSTATE:<state>` (or `MYSQL:<ER_NAME>`
 * for MySQL's generic HY000), with retryable ones (deadlock, serialization) as RetryableJobError;
 * timeouts are QUERY_TIMEOUT, writes in a read-only transaction READ_ONLY_VIOLATION, lost
 * connections NETWORK. Every message goes through `ctx.mask`.
 */
export function jobErrorFor(
  failure: DriverFailure,
  ctx: FailureContext,
): PermanentJobError | RetryableJobError {
  const server = ctx.flavor === 'postgres' ? 'PostgreSQL' : ctx.flavor === 'mariadb' ? 'MariaDB' : 'MySQL';
  if (failure.kind === 'network') {
    if (ctx.timedOut) return queryTimeout(ctx, failure.message);
    return new RetryableJobError(ctx.mask(`${server} connection failed: ${failure.message}`), 'NETWORK');
  }
  if (failure.kind === 'other') {
    if (ctx.timedOut) return queryTimeout(ctx, failure.message);
    return new PermanentJobError(ctx.mask(`${server} client error: ${failure.message}`), 'DATABASE_ERROR');
  }

  const { sqlState, errno, errorName } = failure;
  const label = errno === null ? sqlState : `${sqlState}, ${errorName ?? 'error'} ${errno}`;
  const message = ctx.mask(`${server} error ${label}: ${failure.message}`);
  const isPg = ctx.flavor === 'postgres';

  if (isPg && sqlState === '57014' && (ctx.timedOut || /statement timeout/i.test(failure.message))) {
    return queryTimeout(ctx, failure.message);
  }
  if (
    !isPg &&
    errno !== null &&
    (MYSQL_TIMEOUT_ERRNOS.has(errno) || (ctx.timedOut && errno === MYSQL_INTERRUPTED))
  ) {
    return queryTimeout(ctx, failure.message);
  }
  if (sqlState === '25006' || errno === MYSQL_READ_ONLY_TRANSACTION) {
    return new PermanentJobError(
      ctx.mask(`the statement tried to write in a read-only run and was rolled back: ${failure.message}`),
      'READ_ONLY_VIOLATION',
    );
  }
  if (isPg && sqlState === '42601' && /cannot insert multiple commands/i.test(failure.message)) {
    return new PermanentJobError(message, 'STACKED_STATEMENTS');
  }

  const generic = !isPg && sqlState === 'HY000' && errorName !== null;
  const code = generic ? `MYSQL:${errorName}` : `SQLSTATE:${sqlState}`;
  const retryable =
    RETRYABLE_SQLSTATES.has(sqlState) ||
    sqlState.startsWith('08') ||
    (errorName !== null && RETRYABLE_MYSQL_ERRORS.has(errorName));
  return retryable ? new RetryableJobError(message, code) : new PermanentJobError(message, code);
}

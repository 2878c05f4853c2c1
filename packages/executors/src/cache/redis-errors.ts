import { ChronosError, PermanentJobError, RetryableJobError } from '@chronos/core';

/** The codes CACHE runs fail with, besides INVALID_PAYLOAD, OUTBOUND_REFUSED and the HTTP codes of a WARM source. */
export const CACHE_ERROR_CODES = [
  'NETWORK',
  'CACHE_FORBIDDEN_NAMESPACE',
  'CACHE_UNAVAILABLE',
  'CACHE_AUTH_FAILED',
  'CACHE_COMMAND_FAILED',
  'CACHE_WARM_SOURCE_INVALID',
  'CACHE_WARM_SOURCE_TOO_LARGE',
] as const;
export type CacheErrorCode = (typeof CACHE_ERROR_CODES)[number];

/** Redis is there but cannot serve now (loading, failing over, out of memory, busy script). */
const UNAVAILABLE = new Set([
  'LOADING',
  'BUSY',
  'MASTERDOWN',
  'READONLY',
  'TRYAGAIN',
  'CLUSTERDOWN',
  'OOM',
  'MISCONF',
]);
const AUTH = new Set(['NOAUTH', 'WRONGPASS', 'NOPERM']);

/** Whether `err` is a Redis error reply (as opposed to a connection failure). */
export function isReplyError(err: unknown): err is Error {
  return err instanceof Error && err.name === 'ReplyError';
}

/**
 * A Redis failure as a job error: error replies by their prefix (auth → permanent, "not now" →
 * retryable, anything else → permanent), everything else (refused, reset, timed out, closed) as a
 * retryable NETWORK failure. Chronos errors pass through.
 */
export function cacheFailure(err: unknown, target: string): Error {
  if (err instanceof ChronosError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (isReplyError(err)) {
    const prefix = /^[A-Z]+/.exec(message)?.[0] ?? '';
    if (AUTH.has(prefix)) {
      return new PermanentJobError(`cache Redis ${target} refused access: ${message}`, 'CACHE_AUTH_FAILED', {
        cause: err,
      });
    }
    if (UNAVAILABLE.has(prefix) || /max number of clients/i.test(message)) {
      return new RetryableJobError(`cache Redis ${target} is unavailable: ${message}`, 'CACHE_UNAVAILABLE', {
        cause: err,
      });
    }
    return new PermanentJobError(
      `cache Redis ${target} refused a command: ${message}`,
      'CACHE_COMMAND_FAILED',
      {
        cause: err,
      },
    );
  }
  return new RetryableJobError(`cache Redis ${target} unreachable: ${message}`, 'NETWORK', { cause: err });
}

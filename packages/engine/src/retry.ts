/** What a failed attempt tells the retry policy. */
export interface Failure {
  /** Classified failure code: TIMEOUT, NETWORK, HTTP_5XX, HTTP_429, HTTP_4XX, CIRCUIT_OPEN, … */
  code: string | null;
  exitCode?: number | null;
  httpStatus?: number | null;
  /**
   * The failure's class as its executor (or `classifyFailure`) gave it: transient (true) or
   * permanent (false). Unknown (absent): the code decides (see `TRANSIENT_CODES`).
   */
  retryable?: boolean | null;
}

/**
 * Codes that are transient when nothing else says so (a finish without a class: a lost worker, a
 * timeout recorded by the engine itself). Every other code is permanent unless its error said
 * `retryable`.
 */
export const TRANSIENT_CODES: readonly string[] = [
  'TIMEOUT',
  'NETWORK',
  'HTTP_5XX',
  'HTTP_429',
  'CIRCUIT_OPEN',
  'RETRYABLE',
  'WORKER_LOST',
];

/**
 * Is a failed attempt retried (when attempts are left)? A policy's retry_on list, when it has
 * entries, decides alone (it replaces the default); an empty one means the default: the failure's
 * class — transient failures are retried, permanent ones never are.
 */
export function shouldRetry(retryOn: readonly string[], f: Failure): boolean {
  if (retryOn.length > 0) return matchesRetryOn(retryOn, f);
  return f.retryable ?? (f.code !== null && TRANSIENT_CODES.includes(f.code));
}

/** The longest wait between attempts. */
export const MAX_BACKOFF_MS = 3_600_000;

/** Conditions a retry policy may list; anything else is written `EXIT_CODE:n` or `ERROR_CODE:x`. */
export const RETRY_CONDITIONS = [
  'TIMEOUT',
  'NETWORK',
  'HTTP_5XX',
  'HTTP_429',
  'HTTP_4XX',
  'CIRCUIT_OPEN',
] as const;

/** Is `condition` a retry_on entry Chronos understands? */
export function isRetryCondition(condition: string): boolean {
  return (
    (RETRY_CONDITIONS as readonly string[]).includes(condition) ||
    /^EXIT_CODE:-?\d+$/.test(condition) ||
    /^ERROR_CODE:[A-Za-z0-9_.:-]+$/.test(condition)
  );
}

/**
 * Does the failure match one of the policy's retry_on conditions? Only a match is retried; any other
 * failure is permanent. An open circuit breaker counts as the NETWORK / HTTP_5XX failures that
 * opened it.
 */
export function matchesRetryOn(retryOn: readonly string[], f: Failure): boolean {
  const status = f.httpStatus ?? null;
  return retryOn.some((c) => {
    switch (c) {
      case 'TIMEOUT':
        return f.code === 'TIMEOUT';
      case 'NETWORK':
        return f.code === 'NETWORK' || f.code === 'CIRCUIT_OPEN';
      case 'HTTP_5XX':
        return (
          f.code === 'HTTP_5XX' ||
          f.code === 'CIRCUIT_OPEN' ||
          (status !== null && status >= 500 && status <= 599)
        );
      case 'HTTP_429':
        return f.code === 'HTTP_429' || status === 429;
      case 'HTTP_4XX':
        return f.code === 'HTTP_4XX' || (status !== null && status >= 400 && status <= 499 && status !== 429);
      case 'CIRCUIT_OPEN':
        return f.code === 'CIRCUIT_OPEN';
    }
    if (c.startsWith('EXIT_CODE:')) return f.exitCode != null && Number(c.slice(10)) === f.exitCode;
    if (c.startsWith('ERROR_CODE:')) return f.code === c.slice(11);
    return false;
  });
}

export interface BackoffPolicy {
  backoffStrategy: 'FIXED' | 'EXPONENTIAL';
  backoffSeconds: number;
  jitter: boolean;
}

/**
 * Wait before attempt `attempt + 1` after attempt `attempt` failed: FIXED waits backoff_seconds,
 * EXPONENTIAL backoff_seconds · 2^(attempt−1); capped at one hour; with jitter, a random point in
 * the upper half ([d/2, d]) so retries of many runs spread out without ever waiting much less.
 * A wait the target asked for (`retryAfterMs`, from HTTP Retry-After) is a floor on the result,
 * itself capped at one hour (a target cannot park a run for a day).
 */
export function retryDelayMs(
  policy: BackoffPolicy,
  attempt: number,
  random: () => number = Math.random,
  retryAfterMs?: number | null,
): number {
  const base = policy.backoffSeconds * 1000;
  const raw = policy.backoffStrategy === 'EXPONENTIAL' ? base * 2 ** Math.max(0, attempt - 1) : base;
  const capped = Math.min(raw, MAX_BACKOFF_MS);
  const backoff = policy.jitter ? Math.round(capped / 2 + random() * (capped / 2)) : capped;
  const floor =
    retryAfterMs != null && retryAfterMs > 0 ? Math.min(Math.ceil(retryAfterMs), MAX_BACKOFF_MS) : 0;
  return Math.max(backoff, floor);
}

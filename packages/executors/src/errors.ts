import { PermanentJobError, RetryableJobError } from '@chronos/core';

/** The stable codes executors fail with (the worker matches them against retry_on). */
export const EXEC_ERROR_CODES = [
  'TIMEOUT',
  'NETWORK',
  'HTTP_5XX',
  'HTTP_429',
  'HTTP_4XX',
  'HTTP_3XX',
  'HTTP_UNEXPECTED',
  'TOO_MANY_REDIRECTS',
  'OAUTH2_TOKEN_INVALID',
  'CIRCUIT_OPEN',
  'OUTBOUND_REFUSED',
  'INVALID_PAYLOAD',
  'DUMMY_FAILURE',
] as const;
export type ExecErrorCode = (typeof EXEC_ERROR_CODES)[number];

/** What the failing response looked like (body capped), for the run's error details. */
export interface HttpErrorResponse {
  status: number;
  headers: Record<string, string | string[]>;
  body: string;
  bodyTruncated: boolean;
}

export interface HttpErrorDetails {
  httpStatus: number;
  response?: HttpErrorResponse;
  /** The raw Retry-After header of a 429/503. */
  retryAfter?: string;
  /** Retry-After in milliseconds from the response, when it parses (seconds or HTTP date). */
  retryAfterMs?: number;
}

/** An HTTP failure worth retrying (5xx, 429). */
export class RetryableHttpError extends RetryableJobError {
  readonly httpStatus: number;
  readonly response?: HttpErrorResponse;
  readonly retryAfter?: string;
  readonly retryAfterMs?: number;
  constructor(message: string, code: ExecErrorCode, details: HttpErrorDetails) {
    super(message, code);
    this.httpStatus = details.httpStatus;
    this.response = details.response;
    this.retryAfter = details.retryAfter;
    this.retryAfterMs = details.retryAfterMs;
  }
}

/** An HTTP failure that retrying will not fix (4xx, unexpected status, redirect loop). */
export class PermanentHttpError extends PermanentJobError {
  readonly httpStatus: number;
  readonly response?: HttpErrorResponse;
  constructor(message: string, code: ExecErrorCode, details: HttpErrorDetails) {
    super(message, code);
    this.httpStatus = details.httpStatus;
    this.response = details.response;
  }
}

/**
 * How to allow a refused target, in the worker's own settings (HTTP_ALLOW_HOSTS / HTTP_ALLOW_CIDRS
 * fill the outbound policy's allowHosts / allowCidrs): the host itself, or its address as a CIDR.
 */
function allowHint(host: string, address: string | null): string {
  const cidr = address && (address.includes(':') ? `${address}/128` : `${address}/32`);
  return (
    `if intended, allow it on the worker with HTTP_ALLOW_HOSTS=${host}` +
    (cidr ? ` or HTTP_ALLOW_CIDRS=${cidr}` : '')
  );
}

/** A connection the outbound policy does not allow; no byte was sent. */
export class OutboundRefusedError extends PermanentJobError {
  constructor(
    readonly host: string,
    readonly address: string | null,
    readonly addressClass: string,
  ) {
    super(
      `outbound connection to ${JSON.stringify(host)}${address && address !== host ? ` (${address})` : ''} refused: ` +
        `${addressClass}; ${allowHint(host, address)}`,
      'OUTBOUND_REFUSED',
    );
  }
}

/**
 * The job's circuit breaker for the target host is open: no request was sent. `retryAfterMs` is how
 * long the breaker stays open from `now` (0 when only a half-open trial is in flight): an attempt
 * before then fails CIRCUIT_OPEN again, so the retry policy takes it as a floor on its backoff.
 */
export class CircuitOpenError extends RetryableJobError {
  readonly retryAfterMs: number;
  constructor(
    readonly host: string,
    readonly openedAt: Date,
    readonly retryAt: Date,
    now: number = Date.now(),
  ) {
    super(
      `circuit open for host ${host} since ${openedAt.toISOString()}, retry after ${retryAt.toISOString()}`,
      'CIRCUIT_OPEN',
    );
    this.retryAfterMs = Math.max(0, retryAt.getTime() - now);
  }
}

export function invalidPayload(message: string, cause?: unknown): PermanentJobError {
  return new PermanentJobError(message, 'INVALID_PAYLOAD', cause === undefined ? undefined : { cause });
}

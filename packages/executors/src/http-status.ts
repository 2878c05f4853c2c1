import { PermanentHttpError, RetryableHttpError, type HttpErrorResponse } from './errors.ts';
import { firstHeader, parseRetryAfter, type HttpResponse } from './http-client.ts';

export interface StatusFailure {
  error: RetryableHttpError | PermanentHttpError;
  /** 5xx and 429 say the host is struggling (they count towards its circuit breaker); others do not. */
  countsAsHostFailure: boolean;
}

const SNIPPET = 200;

/**
 * The error for a response whose status was not accepted: 5xx → HTTP_5XX and 429 → HTTP_429
 * (retryable, Retry-After kept), other 4xx → HTTP_4XX, 3xx → HTTP_3XX, anything else
 * HTTP_UNEXPECTED (permanent).
 */
export function statusFailure(response: HttpResponse, where: string, now: number): StatusFailure {
  const { status } = response;
  const details: HttpErrorResponse = {
    status,
    headers: response.headers,
    body: response.body.text,
    bodyTruncated: response.body.truncated,
  };
  const snippet = response.body.text.replace(/\s+/g, ' ').trim().slice(0, SNIPPET);
  const message = `${where} answered HTTP ${status}${snippet ? `: ${snippet}` : ''}`;
  const retryAfter = firstHeader(response.headers, 'retry-after');
  const retryAfterMs = parseRetryAfter(retryAfter, now);
  if (status === 429 || status >= 500) {
    return {
      error: new RetryableHttpError(message, status === 429 ? 'HTTP_429' : 'HTTP_5XX', {
        httpStatus: status,
        response: details,
        retryAfter,
        retryAfterMs,
      }),
      countsAsHostFailure: true,
    };
  }
  const code = status >= 400 ? 'HTTP_4XX' : status >= 300 ? 'HTTP_3XX' : 'HTTP_UNEXPECTED';
  return {
    error: new PermanentHttpError(message, code, { httpStatus: status, response: details }),
    countsAsHostFailure: false,
  };
}

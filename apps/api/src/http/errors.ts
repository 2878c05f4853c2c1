/**
 * HTTP-only failures (authentication, authorization, throttling). Domain errors stay in
 * @chronos/core (ValidationError, NotFoundError, ConflictError); the problem mapper turns both into
 * RFC 9457 documents.
 */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    detail: string,
    /** Extra response headers (WWW-Authenticate, Retry-After). */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(detail);
    this.name = 'HttpError';
  }
}

/** 401: no credentials, or credentials that do not hold (expired, revoked, forged). */
export const unauthorized = (
  detail = 'Sign in first: send a valid access token as "Authorization: Bearer …"',
) => new HttpError(401, 'Unauthorized', detail, { 'WWW-Authenticate': 'Bearer realm="chronos"' });

/** 403: signed in, but the role lacks the permission. Never used to hide another owner's object (404 is). */
export const forbidden = (detail: string) => new HttpError(403, 'Forbidden', detail);

/** 415: a body of a type the route does not read (every API body is JSON). */
export const unsupportedMediaType = (detail: string) => new HttpError(415, 'Unsupported Media Type', detail);

/** 429 with the seconds to wait. */
export const tooManyRequests = (detail: string, retryAfterSeconds: number) =>
  new HttpError(429, 'Too Many Requests', detail, {
    'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))),
  });

/** 503 with the seconds after which a retry may succeed (overload, a dependency down). */
export const serviceUnavailable = (detail: string, retryAfterSeconds: number) =>
  new HttpError(503, 'Service Unavailable', detail, {
    'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))),
  });

import { STATUS_CODES } from 'node:http';
import { ChronosError, ConflictError, NotFoundError, ValidationError } from '@chronos/core';
import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { dependencyUnavailable, type Dependency } from './dependency-errors.ts';
import { HttpError } from './errors.ts';

/** Retry-After of a 503 for PostgreSQL or Redis being unreachable (a restart takes seconds). */
export const DEPENDENCY_RETRY_AFTER_SECONDS = 5;

const DEPENDENCY_NAMES: Record<Dependency, string> = {
  database: 'The database (PostgreSQL)',
  redis: 'Redis',
};

/** An RFC 9457 problem document, plus the request id (also in the `X-Request-Id` header and the log). */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  requestId?: string;
  /** Validation: one entry per field at fault, `path` as in the input (`schedule.cronExpression`). */
  errors?: { path: string; message: string }[];
  /** 503: the dependency that cannot be reached (`database` or `redis`). */
  dependency?: Dependency;
}

export function sendProblem(req: Request, res: Response, problem: Problem): void {
  res
    .status(problem.status)
    .type('application/problem+json')
    .json({ instance: req.originalUrl, requestId: req.id, ...problem });
}

/** Answers every unmatched route with a 404 problem. */
export const notFound: RequestHandler = (req, res) => {
  sendProblem(req, res, {
    type: 'about:blank',
    title: 'Not Found',
    status: 404,
    detail: `No route for ${req.method} ${req.path}`,
  });
};

/** Prisma's known request errors carry a code; these two have an HTTP meaning. */
function prismaCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^P\d{4}$/.test(code) ? code : undefined;
}

/**
 * The one error mapper: typed Chronos errors keep their meaning, HTTP errors their status and
 * headers, body-parser errors their status (400 bad JSON, 413 too large); PostgreSQL or Redis out
 * of reach is a 503 with Retry-After naming which; anything else is a 500 whose details stay in the
 * log (with the request id), never in the answer.
 */
export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    if (res.headersSent) {
      log.warn({ err, requestId: req.id }, 'error after the response started');
      res.end();
      return;
    }
    if (err instanceof ValidationError) {
      return sendProblem(req, res, {
        type: 'about:blank',
        title: 'Bad Request',
        status: 400,
        detail: err.message,
        errors: err.issues.map((i) => ({ path: i.path, message: i.message })),
      });
    }
    if (err instanceof HttpError) {
      res.set(err.headers);
      return sendProblem(req, res, {
        type: 'about:blank',
        title: err.title,
        status: err.status,
        detail: err.message,
      });
    }
    if (err instanceof NotFoundError || prismaCode(err) === 'P2025')
      return sendProblem(req, res, {
        type: 'about:blank',
        title: 'Not Found',
        status: 404,
        detail: err instanceof NotFoundError ? err.message : 'not found',
      });
    if (err instanceof ConflictError || prismaCode(err) === 'P2002')
      return sendProblem(req, res, {
        type: 'about:blank',
        title: 'Conflict',
        status: 409,
        detail:
          err instanceof ConflictError ? err.message : 'an object with the same unique fields already exists',
      });
    const status = (err as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500 && !(err instanceof ChronosError)) {
      return sendProblem(req, res, {
        type: 'about:blank',
        title: status === 413 ? 'Content Too Large' : (STATUS_CODES[status] ?? 'Bad Request'),
        status,
        detail:
          status === 413
            ? 'The request body is larger than the limit (API_BODY_LIMIT_BYTES)'
            : (err as { type?: unknown }).type === 'entity.parse.failed'
              ? `The request body is not valid JSON: ${(err as Error).message}`
              : (err as Error).message,
      });
    }
    const dependency = dependencyUnavailable(err);
    if (dependency) {
      // The driver's message stays in the log: it may name hosts, ports or users.
      log.warn(
        { err, dependency, requestId: req.id, method: req.method, url: req.originalUrl },
        `${dependency} unavailable`,
      );
      res.set('Retry-After', String(DEPENDENCY_RETRY_AFTER_SECONDS));
      return sendProblem(req, res, {
        type: 'about:blank',
        title: 'Service Unavailable',
        status: 503,
        detail: `${DEPENDENCY_NAMES[dependency]} is unavailable right now; try again in a few seconds`,
        dependency,
      });
    }
    log.error({ err, requestId: req.id, method: req.method, url: req.originalUrl }, 'unhandled error');
    sendProblem(req, res, {
      type: 'about:blank',
      title: 'Internal Server Error',
      status: 500,
      detail: `Something failed on our side; quote request id ${req.id} when reporting it`,
    });
  };
}

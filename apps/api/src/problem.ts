import { ChronosError, ConflictError, NotFoundError, ValidationError } from '@chronos/core';
import type { ErrorRequestHandler, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';

/** An RFC 9457 problem document. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  errors?: { path: string; message: string }[];
}

export function sendProblem(res: Response, problem: Problem): void {
  res.status(problem.status).type('application/problem+json').json(problem);
}

/** Answers every unmatched route with a 404 problem. */
export const notFound: RequestHandler = (req, res) => {
  sendProblem(res, {
    type: 'about:blank',
    title: 'Not Found',
    status: 404,
    detail: `No route for ${req.method} ${req.path}`,
    instance: req.originalUrl,
  });
};

/**
 * The one error mapper: typed Chronos errors keep their meaning, body-parser errors keep their
 * status, anything else is a 500 whose details stay in the log, never in the answer.
 */
export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    if (err instanceof ValidationError) {
      return sendProblem(res, {
        type: 'about:blank',
        title: 'Bad Request',
        status: 400,
        detail: err.message,
        errors: err.issues.map((i) => ({ path: i.path, message: i.message })),
      });
    }
    if (err instanceof NotFoundError)
      return sendProblem(res, { type: 'about:blank', title: 'Not Found', status: 404, detail: err.message });
    if (err instanceof ConflictError)
      return sendProblem(res, { type: 'about:blank', title: 'Conflict', status: 409, detail: err.message });
    const status = (err as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500 && !(err instanceof ChronosError)) {
      return sendProblem(res, {
        type: 'about:blank',
        title: status === 413 ? 'Content Too Large' : 'Bad Request',
        status,
        detail: (err as Error).message,
      });
    }
    log.error({ err, method: req.method, url: req.originalUrl }, 'unhandled error');
    sendProblem(res, { type: 'about:blank', title: 'Internal Server Error', status: 500 });
  };
}

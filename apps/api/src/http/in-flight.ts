// Load shedding: an API process serves at most `max` requests at once and answers the rest 503 at
// once, instead of letting them pile up in its event loop and database pool until every client
// times out (seen at twice the capacity: 89 % of requests timed out after 10 s, none was refused).
import type { Request, RequestHandler, Response } from 'express';
import type { Counter, Gauge } from 'prom-client';
import { serviceUnavailable } from './errors.ts';

export interface InFlightLimitOptions {
  /** Requests served at once (API_MAX_IN_FLIGHT); one more is answered 503. */
  max: number;
  /**
   * Retry-After of the 503: the wait is short, requests come and go in milliseconds.
   * @defaultValue 1
   */
  retryAfterSeconds?: number;
  /** Gauge of requests being served and counter of requests refused. */
  metrics?: { inFlight: Gauge; shed: Counter };
  /**
   * Longest a request whose client went away keeps its slot while its handler has not answered
   * (the work goes on: a query waiting for a connection, a transaction).
   * @defaultValue 60000
   */
  abandonedHoldMs?: number;
}

/** The slot each request holds, so a long-lived response can give it back early. */
const slots = new WeakMap<Request, () => void>();

/**
 * Gives back the in-flight slot of `req` (once; later calls do nothing). For responses that last
 * long but cost little, such as a live log stream (capped on its own): they must not starve the
 * requests behind them.
 */
export function leaveInFlight(req: Request): void {
  slots.get(req)?.();
}

/**
 * Counts each request from its arrival until its handler has answered. A client that gives up does
 * not free its slot before that: its work still occupies the process and the database pool, and
 * freeing it would let clients that time out and retry pile up work without bound — the overload
 * this limit is for. Mount it after the health and readiness probes (they must answer however busy
 * the process is) and before body parsing (a refused request's body is never read).
 */
export function inFlightLimit(opts: InFlightLimitOptions): RequestHandler {
  const retryAfter = opts.retryAfterSeconds ?? 1;
  const abandonedHoldMs = opts.abandonedHoldMs ?? 60_000;
  let inFlight = 0;
  return (req: Request, res: Response, next) => {
    if (inFlight >= opts.max) {
      opts.metrics?.shed.inc();
      next(
        serviceUnavailable(
          `The API is serving as many requests as it may at once (${opts.max}); try again in ${retryAfter} s`,
          retryAfter,
        ),
      );
      return;
    }
    inFlight++;
    opts.metrics?.inFlight.inc();
    let held = true;
    const release = () => {
      if (!held) return;
      held = false;
      inFlight--;
      opts.metrics?.inFlight.dec();
      slots.delete(req);
    };
    slots.set(req, release);
    res.once('finish', release);
    res.once('close', () => {
      if (!held || res.writableEnded) return release();
      // No event tells when the handler of a closed response is done, except its call to end().
      const timer = setTimeout(release, abandonedHoldMs);
      timer.unref();
      const end = res.end;
      res.end = ((...args: unknown[]) => {
        clearTimeout(timer);
        release();
        return end.apply(res, args as never);
      }) as Response['end'];
    });
    next();
  };
}

import type { RequestHandler } from 'express';
import { Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The API's Prometheus registry and its HTTP instrumentation. */
export interface Metrics {
  registry: Registry;
  /** Observes every request by method, route pattern (not the raw URL) and status. */
  http: RequestHandler;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'chronos_api_' });
  const requests = new Histogram({
    name: 'chronos_http_request_duration_seconds',
    help: 'HTTP requests by method, route and status, with latency',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const http: RequestHandler = (req, res, next) => {
    const end = requests.startTimer();
    res.on('finish', () => {
      // The matched pattern (`/api/v1/jobs/:id`) keeps label cardinality bounded.
      const route = req.route ? `${req.baseUrl}${String(req.route.path)}` : 'unmatched';
      end({ method: req.method, route, status: String(res.statusCode) });
    });
    next();
  };
  return { registry, http };
}

import { rejectAfter } from '@chronos/core';
import type { Express } from 'express';
import type { ApiDeps } from './deps.ts';
import { DEPENDENCY_RETRY_AFTER_SECONDS } from './http/problem.ts';
import { registerJobMetrics } from './metrics.ts';

/** How long one readiness check may take before it counts as down. */
export const READY_CHECK_TIMEOUT_MS = 2000;

export type CheckState = 'up' | 'down';

/**
 * Runs every readiness check in parallel, each under its own deadline. The answer names only which
 * dependency is down (it is public); the reason goes to the log.
 */
async function readiness(deps: ApiDeps): Promise<Record<string, CheckState>> {
  const checks: Record<string, () => Promise<unknown>> = {
    postgres: () => deps.db.$queryRaw`SELECT 1`,
    redis: () => deps.redis.ping(),
    storage: () => deps.storage.ping(),
  };
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]): Promise<[string, CheckState]> => {
      try {
        await rejectAfter(
          check(),
          READY_CHECK_TIMEOUT_MS,
          `${name}: no answer within ${READY_CHECK_TIMEOUT_MS} ms`,
        );
        return [name, 'up'];
      } catch (err) {
        deps.log.warn({ err, check: name }, 'readiness check failed');
        return [name, 'down'];
      }
    }),
  );
  return Object.fromEntries(entries);
}

/**
 * `/healthz` (the process answers), `/readyz` (PostgreSQL, Redis and object storage answer: 200, or
 * 503 with Retry-After and `checks` naming which is down), `/metrics` (Prometheus text). Outside
 * /api/v1 and unauthenticated, for probes and scrapers: keep `/metrics` off the public network
 * (there is no token for it). Mounted before the in-flight limit, so probes are answered however
 * busy the API is.
 */
export function mountOps(app: Express, deps: ApiDeps): void {
  registerJobMetrics(deps.metrics.registry, { ...deps, prefix: deps.config.redis.prefix });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.get('/readyz', async (_req, res) => {
    const checks = await readiness(deps);
    const ready = Object.values(checks).every((s) => s === 'up');
    res.status(ready ? 200 : 503).set('Cache-Control', 'no-store');
    if (!ready) res.set('Retry-After', String(DEPENDENCY_RETRY_AFTER_SECONDS));
    res.json({ status: ready ? 'ready' : 'unavailable', checks });
  });

  app.get('/metrics', async (_req, res) => {
    const { registry } = deps.metrics;
    const text = await registry.metrics();
    res.set('Cache-Control', 'no-store').type(registry.contentType).send(text);
  });
}

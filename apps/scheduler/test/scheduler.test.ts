import { loadConfig } from '@chronos/config';
import { newId } from '@chronos/core';
import { createTestDatabase, type TestDatabase } from '@chronos/db/testing';
import { createRedis, readSchedulerSkews } from '@chronos/queue';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSchedulerService } from '../src/scheduler.ts';

let tdb: TestDatabase;
beforeAll(async () => {
  tdb = await createTestDatabase('scheduler');
});
afterAll(async () => {
  await tdb?.drop();
});

async function poll<T>(f: () => T | undefined | Promise<T | undefined>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('the scheduler process', () => {
  it('starts against PostgreSQL and Redis, exports the database clock skew, and stops cleanly', async () => {
    const prefix = `test-sched-${newId()}`;
    const config = loadConfig({
      DATABASE_URL: tdb.url,
      REDIS_PREFIX: prefix,
      SCHEDULER_METRICS_PORT: '0',
      HOST: '127.0.0.1',
    });
    const scheduler = createSchedulerService(config, pino({ level: 'silent' }));
    const redis = createRedis(config.redis.url, { name: 'scheduler-test' });
    await scheduler.start();
    try {
      // Shared through Redis for the API's /metrics, and withdrawn at stop (checked below).
      const shared = await poll(async () =>
        (await readSchedulerSkews(redis, prefix)).get(scheduler.instanceId),
      );
      expect(Math.abs(shared)).toBeLessThan(1000);
      const skew = await poll(() => scheduler.clockSkewMs);
      // Same machine: the two clocks agree to well within a second.
      expect(Math.abs(skew)).toBeLessThan(1000);
      const res = await fetch(`http://127.0.0.1:${scheduler.metricsPort}/metrics`);
      expect(res.status).toBe(200);
      const body = await res.text();
      expect(body).toMatch(/^chronos_scheduler_clock_skew_ms -?\d/m);
      expect((await fetch(`http://127.0.0.1:${scheduler.metricsPort}/healthz`)).status).toBe(200);
      await scheduler.stop();
      expect((await readSchedulerSkews(redis, prefix)).has(scheduler.instanceId)).toBe(false);
    } finally {
      await scheduler.stop();
      redis.disconnect();
    }
  });

  it('fails to start with a message naming an unreachable Redis', async () => {
    const config = loadConfig({
      DATABASE_URL: tdb.url,
      REDIS_URL: 'redis://127.0.0.1:1',
      SCHEDULER_METRICS_PORT: '0',
    });
    const scheduler = createSchedulerService(config, pino({ level: 'silent' }));
    await expect(scheduler.start()).rejects.toThrow(/Redis at redis:\/\/127\.0\.0\.1:1 is not reachable/);
    await scheduler.stop();
  });
});

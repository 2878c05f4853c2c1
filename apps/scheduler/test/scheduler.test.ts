import { loadConfig } from '@chronos/config';
import { newId } from '@chronos/core';
import { createTestDatabase, type TestDatabase } from '@chronos/db/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSchedulerService, measureClockSkew } from '../src/scheduler.ts';

let tdb: TestDatabase;
beforeAll(async () => {
  tdb = await createTestDatabase('scheduler');
});
afterAll(async () => {
  await tdb?.drop();
});

describe('the scheduler process', () => {
  it('measures the database clock against its own', async () => {
    const skew = await measureClockSkew(tdb.db);
    expect(Number.isFinite(skew)).toBe(true);
    // Same machine: the two clocks agree to well within a second.
    expect(Math.abs(skew)).toBeLessThan(1000);
  });

  it('starts against PostgreSQL and Redis and stops cleanly', async () => {
    const config = loadConfig({ DATABASE_URL: tdb.url, REDIS_PREFIX: `test-sched-${newId()}` });
    const scheduler = createSchedulerService(config, pino({ level: 'silent' }));
    await scheduler.start();
    expect(scheduler.clockSkewMs).toBeTypeOf('number');
    await scheduler.stop();
  });

  it('fails to start with a message naming an unreachable Redis', async () => {
    const config = loadConfig({ DATABASE_URL: tdb.url, REDIS_URL: 'redis://127.0.0.1:1' });
    const scheduler = createSchedulerService(config, pino({ level: 'silent' }));
    await expect(scheduler.start()).rejects.toThrow(/Redis at redis:\/\/127\.0\.0\.1:1 is not reachable/);
    await scheduler.stop();
  });
});

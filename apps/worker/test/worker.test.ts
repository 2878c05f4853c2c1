import { loadConfig } from '@chronos/config';
import { RUNNABLE_JOB_TYPES, newId, queueName } from '@chronos/core';
import { createTestDatabase, type TestDatabase } from '@chronos/db/testing';
import { createRedis } from '@chronos/queue';
import { Queue, QueueEvents, type Processor } from 'bullmq';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createWorkerService, workerPoolSize } from '../src/worker.ts';
import { startTestStorage, type TestStorage } from '@chronos/storage/testing';

let tdb: TestDatabase;
let redis: Redis;
let s3: TestStorage;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  tdb = await createTestDatabase('worker');
  s3 = await startTestStorage('worker');
  redis = createRedis('redis://127.0.0.1:6379');
});
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});
afterAll(async () => {
  await s3?.stop();
  redis?.disconnect();
  await tdb?.drop();
});

function setup(env: Record<string, string>, processor?: (type: string) => Processor) {
  const prefix = `test-worker-${newId()}`;
  const config = loadConfig({
    DATABASE_URL: tdb.url,
    REDIS_PREFIX: prefix,
    WORKER_ID: 'w-test',
    ...s3.env,
    ...env,
  });
  const service = createWorkerService(config, pino({ level: 'silent' }), processor ? { processor } : {});
  const queue = (type: 'DUMMY' | 'HTTP') => {
    const q = new Queue(queueName(type), { connection: redis, prefix });
    const events = new QueueEvents(queueName(type), { connection: redis.duplicate(), prefix });
    cleanups.push(async () => {
      await events.close();
      await q.obliterate({ force: true });
      await q.close();
    });
    return { q, events };
  };
  cleanups.push(() => service.stop());
  return { service, queue, prefix };
}

async function workerNames(q: Queue): Promise<string[]> {
  // BullMQ names worker connections `<prefix>:<queue>:w:<worker name>`.
  return (await q.getWorkers()).map((w) => String(w['rawname']).split(':w:').pop() ?? '');
}

describe('a worker process', () => {
  it('serves every type in WORKER_TYPES and no other', async () => {
    const { service, queue } = setup({ WORKER_TYPES: 'DUMMY' });
    await service.start();
    expect([...service.workers.keys()]).toEqual(['DUMMY']);
    expect(await workerNames(queue('DUMMY').q)).toEqual(['w-test']);
    expect(await workerNames(queue('HTTP').q)).toEqual([]);
  });

  it('serves every type with an executor by default, and none of the types without one', async () => {
    const { service, prefix } = setup({});
    await service.start();
    expect([...service.workers.keys()]).toEqual([...RUNNABLE_JOB_TYPES]);
    for (const type of ['EMAIL', 'REPORT', 'MESSAGE_QUEUE', 'DB_TO_KAFKA'] as const) {
      expect(service.workers.has(type)).toBe(false);
      // No queue of theirs exists in Redis either (nothing to show empty in Bull Board).
      expect(await redis.keys(`${prefix}:${queueName(type)}:*`)).toEqual([]);
    }
  });

  it('on stop lets an in-flight job finish before closing', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const { service, queue } = setup(
      { WORKER_TYPES: 'DUMMY', SHUTDOWN_GRACE_SECONDS: '60' },
      () => async () => {
        started();
        await gate;
        return 'done';
      },
    );
    await service.start();
    const { q } = queue('DUMMY');
    const job = await q.add('run', {});
    await running;
    let stopped = false;
    const stopping = service.stop().then(() => (stopped = true));
    // The job is still running: stop() must not have returned yet.
    expect(await q.getJobState(job.id as string)).toBe('active');
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(await q.getJobState(job.id as string)).toBe('completed');
  });

  it('when the grace period is over, aborts the run and stops without waiting for it', async () => {
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    let aborted: unknown;
    const never = new Promise<never>(() => {});
    const { service, queue } = setup({ WORKER_TYPES: 'DUMMY', SHUTDOWN_GRACE_SECONDS: '0' }, () => {
      // Three parameters: BullMQ then passes the abort signal.
      return async (_job, _token, signal) => {
        signal?.addEventListener('abort', () => (aborted = signal.reason));
        started();
        return never;
      };
    });
    await service.start();
    const { q } = queue('DUMMY');
    const job = await q.add('run', {});
    await running;
    await service.stop();
    expect(String(aborted)).toMatch(/worker shutting down/);
    // Left active: BullMQ hands it to another worker after the stall interval.
    expect(await q.getJobState(job.id as string)).toBe('active');
  });
});

describe("a worker's PostgreSQL pool", () => {
  const size = (env: Record<string, string>) => workerPoolSize(loadConfig({ DATABASE_URL: tdb.url, ...env }));

  it('grows with the runs the worker may have in flight, within a bound, unless WORKER_DB_POOL_SIZE says', () => {
    expect(size({ WORKER_TYPES: 'DUMMY', WORKER_CONCURRENCY: '1' })).toBe(5);
    expect(size({ WORKER_TYPES: 'DUMMY,HTTP', WORKER_CONCURRENCY: '10,HTTP=50' })).toBe(10);
    expect(size({ WORKER_TYPES: 'all', WORKER_CONCURRENCY: '100' })).toBe(20);
    expect(size({ WORKER_TYPES: 'DUMMY', WORKER_DB_POOL_SIZE: '3' })).toBe(3);
  });
});

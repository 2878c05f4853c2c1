import { loadConfig } from '@chronos/config';
import { newId, slotKey } from '@chronos/core';
import { createTestDatabase, type TestDatabase } from '@chronos/db/testing';
import { bullJobId, createJob, createScheduler, requestCancel, triggerRun } from '@chronos/engine';
import { closeQueues, createQueues, createRedis, type QueueSet } from '@chronos/queue';
import { startTestStorage, type TestStorage } from '@chronos/storage/testing';
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createWorkerService, type WorkerService } from '../src/worker.ts';

// What Bull Board shows of a run's BullMQ job: its state (FAILED tab or COMPLETED), failedReason and
// name. A real worker, PostgreSQL and Redis; the dashboard reads exactly these fields.

let tdb: TestDatabase;
let redis: Redis;
let queues: QueueSet;
let worker: WorkerService;
let s3: TestStorage;
let ownerId: string;
const prefix = `test-bull-jobs-${newId()}`;
const log = pino({ level: 'silent' });

beforeAll(async () => {
  tdb = await createTestDatabase('worker-bull-jobs');
  s3 = await startTestStorage('worker-bull-jobs');
  redis = createRedis('redis://127.0.0.1:6379');
  queues = createQueues({ connection: redis, prefix, types: ['DUMMY'] });
  ownerId = newId();
  await tdb.db.user.create({ data: { id: ownerId, email: 'owner@example.test', passwordHash: 'x' } });
  worker = createWorkerService(
    loadConfig({
      DATABASE_URL: tdb.url,
      REDIS_PREFIX: prefix,
      WORKER_TYPES: 'DUMMY',
      WORKER_ID: 'bull-jobs-1',
      SHUTDOWN_GRACE_SECONDS: '5',
      ...s3.env,
    }),
    log,
  );
  await worker.start();
});
afterEach(async () => {
  await tdb.db.job.deleteMany();
});
afterAll(async () => {
  await worker?.stop();
  await s3?.stop();
  for (const q of queues?.values() ?? []) await q.obliterate({ force: true });
  if (queues) await closeQueues(queues);
  redis?.disconnect();
  await tdb?.drop();
});

const deps = () => ({ db: tdb.db, queues, redis, prefix });

/** Polls until `f` gives a value (not null/undefined), or fails naming `what`. */
async function until<T>(what: string, f: () => Promise<T | null | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== null && v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The BullMQ job of a run's attempt once it has ended (completed or failed), as stored in Redis. */
async function endedBullJob(key: string, attempt = 1): Promise<{ job: Job; state: string }> {
  return until(`the BullMQ job of ${key} (attempt ${attempt}) to end`, async () => {
    const job = await queues.get('DUMMY')!.getJob(bullJobId(key, attempt));
    if (!job) return null;
    const state = await job.getState();
    return state === 'completed' || state === 'failed' ? { job, state } : null;
  });
}

async function runsOf(jobId: string, count: number) {
  return until(`${count} finished run(s) of ${jobId}`, async () => {
    const rows = await tdb.db.jobRun.findMany({
      where: { jobId, status: { notIn: ['QUEUED', 'RUNNING'] } },
      orderBy: { attempt: 'asc' },
    });
    return rows.length >= count ? rows : null;
  });
}

describe("a run's BullMQ job tells the truth (Bull Board)", () => {
  it('a run that ends FAILURE leaves its BullMQ job failed with the run error, named after the job, not retried by BullMQ', async () => {
    const { id } = await createJob(deps(), {
      ownerId,
      name: 'nightly-report',
      type: 'DUMMY',
      schedule: { type: 'ONCE', runAt: new Date(Date.now() + 3_600_000) },
      payload: { metadata: { fail: 'permanent', message: 'the report broke' } },
    });
    const { runId } = await triggerRun(deps(), { jobId: id, trigger: 'MANUAL' });
    const [run] = await runsOf(id, 1);
    expect(run).toMatchObject({ id: runId, status: 'FAILURE', errorMessage: 'the report broke' });

    const { job, state } = await endedBullJob(run!.idempotencyKey);
    expect(state).toBe('failed');
    expect(job.failedReason).toBe(run!.errorMessage);
    expect(job.name).toBe('nightly-report');
    expect(job.attemptsMade).toBe(1);
    // The trace Bull Board shows is the run's failure, not the worker's stack.
    expect(job.stacktrace).toEqual(['FAILURE (DUMMY_FAILURE): the report broke']);
    expect(await queues.get('DUMMY')!.getFailedCount()).toBeGreaterThanOrEqual(1);
    // Failed is final: the run's row is FAILURE exactly once (BullMQ did not run it again).
    expect(await tdb.db.jobRun.findMany({ where: { jobId: id }, select: { status: true } })).toEqual([
      { status: 'FAILURE' },
    ]);
  });

  it("a retried run: each attempt's BullMQ job is named after the job and failed with that attempt's error", async () => {
    const { id } = await createJob(deps(), {
      ownerId,
      name: 'flaky sync',
      type: 'DUMMY',
      schedule: { type: 'ONCE', runAt: new Date(Date.now() + 3_600_000) },
      // Each attempt fails with its own message (the run's attempt is a template value).
      payload: { metadata: { fail: 'retryable', message: 'flaky attempt {{run.attempt}}' } },
      retryPolicy: {
        maxAttempts: 2,
        backoffSeconds: 0,
        jitter: false,
        retryOn: ['ERROR_CODE:DUMMY_FAILURE'],
      },
    });
    await triggerRun(deps(), { jobId: id, trigger: 'MANUAL' });
    const rows = await runsOf(id, 2);
    expect(rows.map((r) => [r.attempt, r.status, r.errorMessage])).toEqual([
      [1, 'FAILURE', 'flaky attempt 1'],
      [2, 'FAILURE', 'flaky attempt 2'],
    ]);
    const key = rows[0]!.idempotencyKey;
    for (const attempt of [1, 2]) {
      const { job, state } = await endedBullJob(key, attempt);
      expect({ state, name: job.name, failedReason: job.failedReason }).toEqual({
        state: 'failed',
        name: 'flaky sync',
        failedReason: `flaky attempt ${attempt}`,
      });
    }
  });

  it('a successful run scheduled by the scheduler: its BullMQ job is completed and named after the job', async () => {
    const runAt = new Date();
    const { id } = await createJob(deps(), {
      ownerId,
      name: 'hourly-ok',
      type: 'DUMMY',
      schedule: { type: 'ONCE', runAt },
    });
    await createScheduler({ ...deps(), log, instanceId: 'test' }).tick();
    const [run] = await runsOf(id, 1);
    expect(run?.status).toBe('SUCCESS');
    const { job, state } = await endedBullJob(slotKey(id, runAt));
    expect(state).toBe('completed');
    expect(job.name).toBe('hourly-ok');
    expect(job.failedReason).toBeUndefined();
  });

  it('a run that times out leaves its BullMQ job failed with the timeout', async () => {
    const { id } = await createJob(deps(), {
      ownerId,
      name: 'slow-export',
      type: 'DUMMY',
      schedule: { type: 'ONCE', runAt: new Date(Date.now() + 3_600_000) },
      payload: { timeoutSeconds: 1, metadata: { sleepMs: 60_000 } },
    });
    await triggerRun(deps(), { jobId: id, trigger: 'MANUAL' });
    const [run] = await runsOf(id, 1);
    expect(run?.status).toBe('TIMEOUT');
    const { job, state } = await endedBullJob(run!.idempotencyKey);
    expect({ state, name: job.name, failedReason: job.failedReason }).toEqual({
      state: 'failed',
      name: 'slow-export',
      failedReason: run!.errorMessage,
    });
  });

  it('a cancelled run is not a failure: its BullMQ job completes', async () => {
    const { id } = await createJob(deps(), {
      ownerId,
      name: 'cancel-me',
      type: 'DUMMY',
      schedule: { type: 'ONCE', runAt: new Date(Date.now() + 3_600_000) },
      payload: { metadata: { sleepMs: 60_000 } },
    });
    const { runId } = await triggerRun(deps(), { jobId: id, trigger: 'MANUAL' });
    await until('the run to start', () =>
      tdb.db.jobRun.findFirst({ where: { id: runId, status: 'RUNNING' } }),
    );
    await requestCancel(redis, prefix, runId);
    const [run] = await runsOf(id, 1);
    expect(run?.status).toBe('CANCELLED');
    const { job, state } = await endedBullJob(run!.idempotencyKey);
    expect(state).toBe('completed');
    expect(job.name).toBe('cancel-me');
  });
});

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '@chronos/config';
import { newId } from '@chronos/core';
import { createTestDatabase, type TestDatabase } from '@chronos/db/testing';
import { cancelRun, createJob, createScheduler } from '@chronos/engine';
import { closeQueues, createQueues, createRedis, type QueueSet } from '@chronos/queue';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestStorage, type TestStorage } from '@chronos/storage/testing';
import { createWorkerService, type WorkerService } from '../src/worker.ts';

const root = fileURLToPath(new URL('../../..', import.meta.url));
let tdb: TestDatabase;
let redis: Redis;
let queues: QueueSet;
let child: ChildProcess | undefined;
let survivor: WorkerService | undefined;
let s3: TestStorage;
const prefix = `test-takeover-${newId()}`;
const workerEnv: Record<string, string> = {
  REDIS_PREFIX: prefix,
  WORKER_TYPES: 'DUMMY',
  // Short lock and stall check: a dead worker's run is noticed within seconds.
  WORKER_LOCK_DURATION_MS: '2000',
  WORKER_STALLED_INTERVAL_MS: '1000',
  LOG_LEVEL: 'warn',
};

beforeAll(async () => {
  tdb = await createTestDatabase('worker-takeover');
  s3 = await startTestStorage('worker-takeover');
  Object.assign(workerEnv, s3.env);
  redis = createRedis('redis://127.0.0.1:6379');
  queues = createQueues({ connection: redis, prefix, types: ['DUMMY'] });
});
afterAll(async () => {
  child?.kill('SIGKILL');
  await survivor?.stop();
  for (const q of queues.values()) await q.obliterate({ force: true });
  await closeQueues(queues);
  redis?.disconnect();
  await tdb?.drop();
  await s3?.stop();
});

async function until<T>(what: string, f: () => Promise<T | undefined | null>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== null) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const deps = () => ({ db: tdb.db, queues, redis, prefix });

/** A ONCE DUMMY job of a new owner, sleeping `sleepMs` per run. */
async function sleepingJob(name: string, sleepMs: number): Promise<string> {
  const ownerId = newId();
  await tdb.db.user.create({ data: { id: ownerId, email: `${name}@example.test`, passwordHash: 'x' } });
  const { id } = await createJob(deps(), {
    ownerId,
    name,
    type: 'DUMMY',
    schedule: { type: 'ONCE', runAt: new Date() },
    payload: { metadata: { sleepMs } },
  });
  return id;
}

/** Plans `jobId`'s slot, lets a worker process `workerId` start it, then kills that process (SIGKILL). */
async function runThenKill(jobId: string, workerId: string) {
  child = spawn(process.execPath, ['--import', 'tsx', 'apps/worker/src/main.ts'], {
    cwd: root,
    env: { ...process.env, ...workerEnv, DATABASE_URL: tdb.url, WORKER_ID: workerId },
    stdio: 'ignore',
  });
  await createScheduler({ ...deps(), log: pino({ level: 'silent' }), instanceId: workerId }).tick();
  const running = await until(`${workerId} to start the run`, () =>
    tdb.db.jobRun.findFirst({ where: { jobId, status: 'RUNNING', workerId } }),
  );
  const exited = new Promise((r) => child!.once('exit', r));
  child.kill('SIGKILL');
  await exited;
  return running;
}

/** The job's attempts, in order: attempt, status, worker, error code. */
async function attempts(jobId: string) {
  const rows = await tdb.db.jobRun.findMany({ where: { jobId }, orderBy: { attempt: 'asc' } });
  return { rows, summary: rows.map((r) => [r.attempt, r.status, r.workerId, r.errorCode]) };
}

/** A worker in this process (replacing the previous survivor: only one serves the queue). */
async function startSurvivor(workerId: string): Promise<WorkerService> {
  await survivor?.stop();
  survivor = createWorkerService(
    loadConfig({ ...workerEnv, DATABASE_URL: tdb.url, WORKER_ID: workerId }),
    pino({ level: 'silent' }),
  );
  await survivor.start();
  return survivor;
}

describe('a worker killed with SIGKILL mid-run', () => {
  it('another worker takes the run over as a new attempt with the same key; exactly one success', async () => {
    const jobId = await sleepingJob('long', 3000);
    const running = await runThenKill(jobId, 'doomed');
    await startSurvivor('survivor');
    const success = await until('the run to succeed elsewhere', () =>
      tdb.db.jobRun.findFirst({ where: { jobId, status: 'SUCCESS' } }),
    );
    const { rows, summary } = await attempts(jobId);
    expect(summary).toEqual([
      [1, 'FAILURE', 'doomed', 'WORKER_LOST'],
      [2, 'SUCCESS', 'survivor', null],
    ]);
    expect(rows[1]?.idempotencyKey).toBe(running.idempotencyKey);
    expect(success.retryOfId).toBe(running.id);
    expect((await tdb.db.job.findUniqueOrThrow({ where: { id: jobId } })).status).toBe('SUCCEEDED');
  });
});

describe('a worker stopped (SIGTERM) while a run outlasts its grace period', () => {
  it('hands the run over: another worker runs it as a new attempt; nothing is recorded CANCELLED', async () => {
    // Only the two workers of this test serve the queue.
    await survivor?.stop();
    survivor = undefined;
    // Long enough to still be running once the second worker has started on a loaded machine.
    const jobId = await sleepingJob('outlasts-grace', 8000);
    const worker = (id: string) =>
      createWorkerService(
        loadConfig({ ...workerEnv, DATABASE_URL: tdb.url, WORKER_ID: id, SHUTDOWN_GRACE_SECONDS: '0' }),
        pino({ level: 'silent' }),
      );
    const leaving = worker('leaving');
    await leaving.start();
    await createScheduler({ ...deps(), log: pino({ level: 'silent' }), instanceId: 't2' }).tick();
    const first = await until('the leaving worker to start the run', () =>
      tdb.db.jobRun.findFirst({ where: { jobId, status: 'RUNNING', workerId: 'leaving' } }),
    );
    const staying = worker('staying');
    try {
      await staying.start();
      await leaving.stop();
      await until('the run to succeed on the other worker', () =>
        tdb.db.jobRun.findFirst({ where: { jobId, status: 'SUCCESS' } }),
      );
      const { rows, summary } = await attempts(jobId);
      expect(summary).toEqual([
        [1, 'FAILURE', 'leaving', 'WORKER_LOST'],
        [2, 'SUCCESS', 'staying', null],
      ]);
      expect(rows[1]?.retryOfId).toBe(first.id);
      const lastLine = await tdb.db.jobRunLog.findFirst({
        where: { runId: first.id },
        orderBy: { id: 'desc' },
      });
      expect(lastLine?.message).toMatch(/worker shut down before the run ended/);
      expect((await tdb.db.job.findUniqueOrThrow({ where: { id: jobId } })).status).toBe('SUCCEEDED');
    } finally {
      await staying.stop();
    }
  });
});

describe('a run cancelled while its worker is dead', () => {
  it('is closed CANCELLED by the worker that takes it over, and not run again', async () => {
    await survivor?.stop();
    survivor = undefined;
    const jobId = await sleepingJob('cancel-while-dead', 3000);
    const running = await runThenKill(jobId, 'doomed-too');
    // Nobody hears the request now: it must outlive its message.
    expect(await cancelRun(deps(), running.id, { by: 'ops@example.test' })).toBe('CANCEL_REQUESTED');
    await startSurvivor('survivor-2');
    await until('the run to be closed CANCELLED', () =>
      tdb.db.jobRun.findFirst({ where: { id: running.id, status: 'CANCELLED' } }),
    );
    expect((await attempts(jobId)).summary).toEqual([[1, 'CANCELLED', 'doomed-too', 'CANCELLED']]);
    expect(await tdb.db.dlqEvent.count({ where: { jobId } })).toBe(0);
  });
});

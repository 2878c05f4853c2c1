// A Chronos fleet for fault tests: a migrated database, a Redis prefix and an S3 bucket of the
// test's own, a user who owns jobs, and the apps as real processes.
import { randomBytes } from 'node:crypto';
import { newId } from '@chronos/core';
import { createTestDatabase, type TestDatabase } from '@chronos/db/testing';
import { createJob, type CreateJobInput } from '@chronos/engine';
import { createQueues, createRedis, closeQueues } from '@chronos/queue';
import { startTestStorage, type TestStorage } from '@chronos/storage/testing';
import type { Redis } from 'ioredis';
import { eventually, withPg } from '../helpers.ts';
import { startApp, type AppName, type AppProcess } from './app-process.ts';

/** A run as the fault tests read it from job_runs. */
export interface RunRow {
  id: string;
  idempotency_key: string;
  status: string;
  attempt: number;
  scheduled_time: Date;
  worker_id: string | null;
}

export interface Fleet {
  readonly tdb: TestDatabase;
  readonly s3: TestStorage;
  /** A client of the fleet's Redis (for inspecting queues). */
  readonly redis: Redis;
  readonly prefix: string;
  readonly ownerId: string;
  /** The environment every app of the fleet runs with. */
  readonly env: Record<string, string>;
  start(name: AppName, extra?: Record<string, string>): AppProcess;
  /** Creates a job through the engine, as the API would (the scheduler hears of it at once). */
  createJob(input: Omit<CreateJobInput, 'ownerId'>): Promise<string>;
  /** A DUMMY job that fires every second and sleeps `sleepMs`, its runs allowed to overlap. */
  everySecond(name: string, sleepMs: number): Promise<string>;
  /** The job's runs, by slot and attempt (a connection of its own: the test's faults cannot break it). */
  runsOf(jobId: string): Promise<RunRow[]>;
  /** Waits until every slot of the job due before `before` is finished; returns all its runs. */
  settled(jobId: string, before: Date): Promise<RunRow[]>;
  close(): Promise<void>;
}

export async function createFleet(
  label: string,
  opts: { postgresUrl?: string; redisUrl?: string } = {},
): Promise<Fleet> {
  const tdb = await createTestDatabase(
    `faults_${label}`,
    opts.postgresUrl ? { serverUrl: opts.postgresUrl } : {},
  );
  const s3 = await startTestStorage(`faults-${label}`);
  const redisUrl = opts.redisUrl ?? process.env['CHRONOS_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
  const redis = createRedis(redisUrl);
  // The fleet's own client must survive the faults the test injects.
  redis.on('error', () => {});
  const prefix = `faults-${label}-${randomBytes(4).toString('hex')}`;
  const ownerId = newId();
  await tdb.db.user.create({
    data: { id: ownerId, email: `${prefix}@example.test`, passwordHash: 'x' },
  });
  const env: Record<string, string> = {
    DATABASE_URL: tdb.url,
    REDIS_URL: redisUrl,
    REDIS_PREFIX: prefix,
    ...s3.env,
    SCHEDULER_TICK_MS: '200',
    SCHEDULER_RECONCILE_MS: '1000',
    WORKER_LOCK_DURATION_MS: '5000',
    WORKER_STALLED_INTERVAL_MS: '1000',
    SHUTDOWN_GRACE_SECONDS: '2',
  };
  const runsOf = (jobId: string) =>
    withPg(
      tdb.url,
      async (c) =>
        (
          await c.query<RunRow>(
            `SELECT id, idempotency_key, status::text AS status, attempt, scheduled_time, worker_id
             FROM job_runs WHERE job_id = $1 ORDER BY scheduled_time, attempt`,
            [jobId],
          )
        ).rows,
    );
  const newJob = async (input: Omit<CreateJobInput, 'ownerId'>): Promise<string> => {
    const queues = createQueues({ connection: redis, prefix, types: [input.type] });
    try {
      const { id } = await createJob({ db: tdb.db, queues, redis, prefix }, { ...input, ownerId });
      return id;
    } finally {
      await closeQueues(queues);
    }
  };
  return {
    tdb,
    s3,
    redis,
    prefix,
    ownerId,
    env,
    start: (name, extra = {}) => startApp(name, { ...env, ...extra }),
    createJob: newJob,
    everySecond(name, sleepMs) {
      return newJob({
        name,
        type: 'DUMMY',
        overlapPolicy: 'ALLOW_ALL',
        schedule: { type: 'INTERVAL', intervalSeconds: 1 },
        payload: { metadata: { sleepMs } },
      });
    },
    runsOf,
    settled(jobId, before) {
      return eventually(
        async () => {
          const runs = await runsOf(jobId);
          const due = runs.filter((r) => r.scheduled_time < before);
          return due.every((r) => !['QUEUED', 'RUNNING'].includes(r.status)) ? runs : undefined;
        },
        {
          timeoutMs: 90_000,
          what: `every slot of ${jobId} due before ${before.toISOString()} to be finished`,
        },
      );
    },
    async close() {
      redis.disconnect();
      await s3.stop().catch(() => {});
      await tdb.drop().catch(() => {});
    },
  };
}

// Support for tests that run the real scheduler process (`node --import tsx src/main.ts`) against
// a database and a Redis prefix of their own.

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { newId, queueName, type JobTypeName, type ScheduleSpec } from '@chronos/core';
import type { Db } from '@chronos/db';
import { createRedis } from '@chronos/queue';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

/** The monorepo root: the scheduler process runs from there, as in production. */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

const live = new Set<SchedulerProcess>();

export interface SchedulerProcess {
  readonly instanceId: string;
  readonly pid: number;
  /** Resolves once the process logged "scheduler started"; rejects if it exits first. */
  readonly ready: Promise<void>;
  /** Resolves with the exit code (null when killed by a signal) once the process is gone. */
  readonly exited: Promise<number | null>;
  /** stdout and stderr so far (the tail), for failure messages. */
  output(): string;
  /** SIGKILL: no shutdown hook runs, an open transaction is cut off. Resolves when gone. */
  kill(): Promise<void>;
  /** SIGTERM and wait for the clean stop; resolves with the exit code. */
  stop(timeoutMs?: number): Promise<number | null>;
}

/**
 * Starts one scheduler process with `env` on top of the test's environment. Every process started
 * here is remembered until it exits, so `killAll()` in `afterEach`/`afterAll` leaves none behind.
 */
export function spawnScheduler(instanceId: string, env: Record<string, string>): SchedulerProcess {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'apps/scheduler/src/main.ts'], {
    cwd: repoRoot,
    env: {
      ...process.env,
      LOG_LEVEL: 'info',
      HOST: '127.0.0.1',
      SCHEDULER_METRICS_PORT: '0',
      WORKER_TYPES: 'DUMMY',
      ...env,
      SCHEDULER_INSTANCE_ID: instanceId,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const append = (chunk: Buffer) => {
    out = (out + chunk.toString('utf8')).slice(-20_000);
  };
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = new Promise<void>((resolve, reject) => {
    let pending = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      append(chunk);
      pending += chunk.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      if (lines.some((l) => l.includes('"msg":"scheduler started"'))) resolve();
    });
    child.stderr?.on('data', append);
    void exited.then((code) =>
      reject(new Error(`scheduler ${instanceId} exited (code ${code}) before it started:\n${out}`)),
    );
  });
  // A test that never awaits `ready` must not see an unhandled rejection when it stops the process.
  ready.catch(() => {});
  const proc: SchedulerProcess = {
    instanceId,
    pid: child.pid ?? -1,
    ready,
    exited,
    output: () => out,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    async stop(timeoutMs = 30_000) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`scheduler ${instanceId} did not stop within ${timeoutMs} ms:\n${out}`)),
          timeoutMs,
        );
      });
      try {
        return await Promise.race([exited, deadline]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
  live.add(proc);
  void exited.then(() => live.delete(proc));
  return proc;
}

/** SIGKILLs every scheduler process still running. */
export async function killAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.kill()));
}

/** Polls `check` until it returns something other than undefined; fails after `ms`. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  ms: number,
  what: string,
  describe: () => string = () => '',
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}\n${describe()}`);
    await sleep(100);
  }
}

/** Only for letting wall-clock time pass where that is the point (an outage, a scheduler down). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The database clock: due-ness and the ledger's created_at are measured on it. */
export async function dbNow(db: Db): Promise<Date> {
  const [row] = await db.$queryRaw<{ now: Date }[]>`SELECT clock_timestamp() AS now`;
  if (!row) throw new Error('no database clock');
  return row.now;
}

export async function createOwner(db: Db): Promise<string> {
  const id = newId();
  await db.user.create({ data: { id, email: `${id.toLowerCase()}@example.test`, passwordHash: 'x' } });
  return id;
}

/** A job to insert: its schedule as the pure schedule math sees it, plus the misfire settings. */
export interface JobDef {
  id: string;
  spec: Extract<ScheduleSpec, { type: 'CRON' | 'INTERVAL' }>;
  /** The first slot (job_schedules.next_fire_at). */
  firstFire: Date;
  misfirePolicy?: 'FIRE_NOW' | 'IGNORE' | 'RESCHEDULE';
  misfireMaxCatchUp?: number;
}

/** Inserts jobs of type DUMMY with their schedules and payloads in one transaction. */
export async function insertJobs(db: Db, ownerId: string, defs: readonly JobDef[]): Promise<void> {
  const created = new Date();
  await db.$transaction([
    db.job.createMany({
      data: defs.map((d) => ({ id: d.id, ownerId, name: `job-${d.id}`, type: 'DUMMY' as const })),
    }),
    db.jobSchedule.createMany({
      data: defs.map((d) => ({
        jobId: d.id,
        scheduleType: d.spec.type,
        cronExpression: d.spec.type === 'CRON' ? d.spec.cronExpression : null,
        timezone: d.spec.type === 'CRON' ? d.spec.timezone : 'UTC',
        intervalSeconds: d.spec.type === 'INTERVAL' ? d.spec.intervalSeconds : null,
        intervalMode: 'FIXED_RATE' as const,
        anchorAt: d.spec.type === 'INTERVAL' ? (d.spec.anchorAt ?? null) : null,
        endAt: d.spec.endAt ?? null,
        misfirePolicy: d.misfirePolicy ?? 'FIRE_NOW',
        misfireMaxCatchUp: d.misfireMaxCatchUp ?? 100,
        nextFireAt: d.firstFire,
        createdAt: created,
      })),
    }),
    db.jobPayload.createMany({ data: defs.map((d) => ({ jobId: d.id, type: 'DUMMY' as const })) }),
  ]);
}

/** A test's view of one type's BullMQ queue under the test's prefix (never writes its meta). */
export function openQueue(redis: Redis, prefix: string, type: JobTypeName): Queue {
  return new Queue(queueName(type), { connection: redis, prefix, skipMetasUpdate: true });
}

/** Every job id in the queue, in whatever state (delayed, waiting, ...). */
export async function queuedJobIds(queue: Queue): Promise<string[]> {
  const jobs = await queue.getJobs(
    ['delayed', 'wait', 'paused', 'prioritized', 'active', 'completed', 'failed'],
    0,
    -1,
  );
  return jobs.map((j) => j.id ?? '');
}

/** A Redis connection suitable for BullMQ. */
export function testRedis(): Redis {
  return createRedis(process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379');
}

/** Deletes every key under `prefix` (SCAN, not KEYS, so a shared Redis is not blocked). */
export async function deletePrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
}

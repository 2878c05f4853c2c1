import { newId, queueName, type JobTypeName } from '@chronos/core';
import type { Db } from '@chronos/db';
import { createTestDatabase, type TestDatabase } from '@chronos/db/testing';
import { closeQueues, createQueues, createRedis, type QueueSet } from '@chronos/queue';
import type { Redis } from 'ioredis';
import { firstFireAt, type EngineDeps, type ScheduleRow } from '../src/index.ts';

export interface Harness extends EngineDeps {
  tdb: TestDatabase;
  ownerId: string;
  close(): Promise<void>;
}

/** A migrated database of its own, queues under a prefix of its own, one owner. */
export async function harness(label: string): Promise<Harness> {
  const tdb = await createTestDatabase(label);
  const redis: Redis = createRedis('redis://127.0.0.1:6379');
  const prefix = `test-${label}-${newId()}`;
  const queues: QueueSet = createQueues({ connection: redis, prefix, types: ['DUMMY', 'HTTP'] });
  const ownerId = newId();
  await tdb.db.user.create({
    data: { id: ownerId, email: `${ownerId.toLowerCase()}@example.test`, passwordHash: 'x' },
  });
  return {
    tdb,
    db: tdb.db,
    redis,
    prefix,
    queues,
    ownerId,
    async close() {
      for (const q of queues.values()) await q.obliterate({ force: true }).catch(() => {});
      await closeQueues(queues);
      redis.disconnect();
      await tdb.drop();
    },
  };
}

export type ScheduleInput = Partial<{
  scheduleType: 'ONCE' | 'CRON' | 'INTERVAL';
  runAt: Date;
  cronExpression: string;
  intervalSeconds: number;
  intervalMode: 'FIXED_RATE' | 'FIXED_DELAY';
  anchorAt: Date;
  timezone: string;
  misfirePolicy: 'FIRE_NOW' | 'IGNORE' | 'RESCHEDULE';
  misfireThresholdSeconds: number;
  misfireMaxCatchUp: number;
  resumePolicy: 'SKIP_MISSED' | 'RUN_ONCE' | 'REPLAY';
  jitterSeconds: number;
  startAt: Date;
  endAt: Date;
}>;

/** Creates a job with a schedule whose next_fire_at is the first slot after `now` (or `nextFireAt`). */
export async function createJob(
  h: { db: Db; ownerId: string },
  schedule: ScheduleInput,
  opts: { type?: JobTypeName; now?: Date; nextFireAt?: Date | null } = {},
): Promise<string> {
  const id = newId();
  const type = opts.type ?? 'DUMMY';
  const data = { scheduleType: 'INTERVAL' as const, intervalSeconds: 60, ...schedule };
  const created = new Date();
  const row: ScheduleRow = {
    schedule_type: data.scheduleType,
    run_at: data.runAt ?? null,
    cron_expression: data.cronExpression ?? null,
    interval_seconds: data.intervalSeconds ?? null,
    interval_mode: data.intervalMode ?? 'FIXED_RATE',
    anchor_at: data.anchorAt ?? null,
    timezone: data.timezone ?? 'UTC',
    dst_gap_policy: 'SHIFT',
    dst_repeat_policy: 'FIRST',
    start_at: data.startAt ?? null,
    end_at: data.endAt ?? null,
    created_at: created,
    next_fire_at: null,
  };
  const next = opts.nextFireAt !== undefined ? opts.nextFireAt : firstFireAt(row, opts.now ?? new Date());
  await h.db.job.create({
    data: {
      id,
      ownerId: h.ownerId,
      name: `job-${id}`,
      type,
      schedule: { create: { ...data, createdAt: created, nextFireAt: next } },
      payload: { create: {} },
    },
  });
  return id;
}

export function bullKey(h: { prefix: string }, type: JobTypeName, key: string): string {
  return `${h.prefix}:${queueName(type)}:${key}`;
}

/** Polls `check` until it returns a value that is not undefined, or fails after `ms`. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  ms = 10_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

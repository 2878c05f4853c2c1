import { fireTimesBetween, newId, nextFireTimes, slotKey } from '@chronos/core';
import { createTestDatabase, type TestDatabase } from '@chronos/db/testing';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createOwner,
  dbNow,
  deletePrefix,
  eventually,
  insertJobs,
  killAll,
  openQueue,
  queuedJobIds,
  sleep,
  spawnScheduler,
  testRedis,
  type JobDef,
  type SchedulerProcess,
} from './helpers.ts';

const HORIZON_SECONDS = 3;
/** Jobs whose schedules end at END_MS, so a slow run on a loaded machine does not grow the ledger
 * (and BullMQ's events stream, trimmed at 10 000 entries) without bound. */
const JOBS = 200;
const END_MS = 30_000;
/** 1 s jobs that never end: whenever the restarted scheduler comes up, there is work to claim. */
const ENDLESS = 8;
/** The slots compared against the ledger: [first slot, first slot + WINDOW_MS]. */
const WINDOW_MS = 12_000;

let tdb: TestDatabase;
let redis: Redis;
let queue: Queue;
let prefix: string;
let ownerId: string;

beforeAll(async () => {
  tdb = await createTestDatabase('scheduler-ha');
  redis = testRedis();
  prefix = `test-ha-${newId()}`;
  queue = openQueue(redis, prefix, 'DUMMY');
  ownerId = await createOwner(tdb.db);
});
afterEach(async () => {
  await killAll();
});
afterAll(async () => {
  await killAll();
  await queue?.close();
  if (redis) await deletePrefix(redis, prefix);
  redis?.disconnect();
  await tdb?.drop();
});

function schedulerEnv(): Record<string, string> {
  return {
    DATABASE_URL: tdb.url,
    REDIS_PREFIX: prefix,
    SCHEDULER_TICK_MS: '200',
    SCHEDULER_HORIZON_SECONDS: String(HORIZON_SECONDS),
    // Small claims so the three schedulers really interleave on the same rows.
    SCHEDULER_BATCH_SIZE: '25',
    SCHEDULER_RECONCILE_MS: '1000',
    // A slot planned late on a loaded machine is still on time: every slot here must be QUEUED.
    MISFIRE_THRESHOLD_SECONDS: '60',
  };
}

const CRONS = [
  '*/1 * * * * ?',
  '*/2 * * * * ?',
  '0/3 * * * * ?',
  '1/4 * * * * ?',
  '0/5 * * * * ?',
  // 0, 7, ..., 56, then 0 again: an irregular gap at every minute boundary.
  '0/7 * * * * ?',
];

/** Second-level crons and 1–5 s fixed-rate intervals (with sub-second phases), all from `first`. */
function jobDefs(first: Date): JobDef[] {
  const endAt = new Date(first.getTime() + END_MS);
  const specs = Array.from({ length: JOBS + ENDLESS }, (_, i): JobDef['spec'] => {
    const j = Math.floor(i / 2);
    if (i >= JOBS)
      return { type: 'INTERVAL', intervalSeconds: 1, intervalMode: 'FIXED_RATE', anchorAt: first };
    return i % 2 === 0
      ? {
          type: 'CRON',
          cronExpression: CRONS[j % CRONS.length] as string,
          timezone: i % 3 === 0 ? 'UTC' : 'Asia/Kolkata',
          endAt,
        }
      : {
          type: 'INTERVAL',
          intervalSeconds: 1 + (j % 5),
          intervalMode: 'FIXED_RATE',
          anchorAt: new Date(first.getTime() + (j % 3) * 1000 + (j % 4) * 250),
          endAt,
        };
  });
  return specs.map((spec) => {
    const firstFire = nextFireTimes(spec, new Date(first.getTime() - 1), 1)[0];
    if (!firstFire) throw new Error('schedule without a slot');
    return { id: newId(), spec, firstFire };
  });
}

/** Resolves once no schedule has a slot at or before `t` left to plan. */
async function plannedThrough(t: Date, ms = 90_000): Promise<void> {
  await eventually(
    async () => {
      const [r] = await tdb.db.$queryRaw<{ n: number }[]>`
        SELECT count(*)::int AS n FROM job_schedules WHERE next_fire_at <= ${t}`;
      return r?.n === 0 ? true : undefined;
    },
    ms,
    `every schedule to be planned through ${t.toISOString()}`,
  );
}

/**
 * Waits (best effort, up to `ms`) until the scheduler has a transaction open, i.e. holds claimed
 * schedules, so that a kill right after cuts a claim off. Returns whether it saw one.
 */
async function openTransaction(instanceId: string, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const [r] = await tdb.db.$queryRaw<{ n: number }[]>`
      SELECT count(*)::int AS n FROM pg_stat_activity
       WHERE application_name = ${`chronos-scheduler-${instanceId}`} AND xact_start IS NOT NULL`;
    if ((r?.n ?? 0) > 0) return true;
  }
  return false;
}

async function queuedKeys(): Promise<string[]> {
  const rows = await tdb.db.jobRun.findMany({
    where: { status: 'QUEUED' },
    select: { idempotencyKey: true },
  });
  return rows.map((r) => r.idempotencyKey);
}

/** BullMQ's events stream of the queue: how many times each job id was created ("added"). */
async function creations(): Promise<{ added: Map<string, number>; duplicated: number; trimmed: boolean }> {
  const key = `${prefix}:${queue.name}:events`;
  const entries = await redis.xrange(key, '-', '+');
  const added = new Map<string, number>();
  let duplicated = 0;
  for (const [, fields] of entries) {
    const f = new Map<string, string>();
    for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i] as string, fields[i + 1] as string);
    const jobId = f.get('jobId') ?? '';
    if (f.get('event') === 'added') added.set(jobId, (added.get(jobId) ?? 0) + 1);
    if (f.get('event') === 'duplicated') duplicated++;
  }
  const info = (await redis.xinfo('STREAM', key)) as unknown[];
  const entriesAdded = Number(info[info.indexOf('entries-added') + 1]);
  return { added, duplicated, trimmed: entriesAdded !== entries.length };
}

describe('high availability', () => {
  it('three schedulers over the same schedules, one killed with SIGKILL and restarted: every slot in the window exactly once', async ({
    annotate,
  }) => {
    const db = tdb.db;
    const env = schedulerEnv();
    const procs: SchedulerProcess[] = ['ha-a', 'ha-b', 'ha-c'].map((id) => spawnScheduler(id, env));
    await Promise.all(procs.map((p) => p.ready));
    const testStart = await dbNow(db);

    const first = new Date(Math.ceil(testStart.getTime() / 1000) * 1000 + 2000);
    const windowEnd = new Date(first.getTime() + WINDOW_MS);
    const defs = jobDefs(first);
    await insertJobs(db, ownerId, defs);

    // Mid-run: every schedule planned a few seconds in, the three schedulers busy.
    await plannedThrough(new Date(first.getTime() + 5000));
    const beforeKill = new Map(
      (await queue.getJobs(['delayed', 'wait', 'paused', 'prioritized'], 0, -1)).map((j) => [
        j.id ?? '',
        j.timestamp,
      ]),
    );
    expect(beforeKill.size).toBeGreaterThan(JOBS);

    const victim = procs[1] as SchedulerProcess;
    const midClaim = await openTransaction(victim.instanceId, 10_000);
    await victim.kill();
    const killedAt = await dbNow(db);
    // The point is that time passes while it is down: the other two carry on alone.
    await sleep(1500);
    const restarted = spawnScheduler('ha-b', env);
    await restarted.ready;
    const survivors = [procs[0], procs[2], restarted] as SchedulerProcess[];

    // The restarted instance takes part again (the killed one can no longer write anything).
    await eventually(
      async () =>
        (await db.jobSchedule.count({ where: { lastPlannedBy: 'ha-b', lastPlannedAt: { gt: killedAt } } })) >
        0
          ? true
          : undefined,
      60_000,
      'the restarted scheduler to plan',
      () => restarted.output(),
    );
    await plannedThrough(windowEnd);
    // A kill between commit and enqueue leaves recorded slots without a BullMQ job until the
    // reconciler of a live scheduler re-adds them.
    await eventually(
      async () => {
        const inQueue = new Set(await queuedJobIds(queue));
        return (await queuedKeys()).every((k) => inQueue.has(k)) ? true : undefined;
      },
      60_000,
      'every QUEUED slot to have its BullMQ job',
    );
    expect(await Promise.all(survivors.map((p) => p.stop()))).toEqual([0, 0, 0]);
    // A claim under way when SIGTERM arrives still commits: the bound is taken after the exits.
    const stoppedAt = await dbNow(db);

    // --- The ledger: per job, exactly its nominal slots from the first to the last recorded one.
    const schedules = await db.jobSchedule.findMany();
    const runs = await db.jobRun.findMany({ orderBy: [{ jobId: 'asc' }, { scheduledTime: 'asc' }] });
    const runsOf = new Map<string, typeof runs>();
    for (const r of runs) runsOf.set(r.jobId, [...(runsOf.get(r.jobId) ?? []), r]);
    const scheduleOf = new Map(schedules.map((s) => [s.jobId, s]));
    const problems: string[] = [];
    let expectedTotal = 0;
    let inWindow = 0;
    for (const d of defs) {
      const schedule = scheduleOf.get(d.id);
      const rows = runsOf.get(d.id) ?? [];
      const last = schedule?.lastFireAt;
      if (!schedule || !last) {
        problems.push(`${d.id}: never planned`);
        continue;
      }
      const window = fireTimesBetween(d.spec, new Date(first.getTime() - 1), windowEnd, 10_000).times;
      const expected = fireTimesBetween(d.spec, new Date(first.getTime() - 1), last, 10_000).times;
      expectedTotal += expected.length;
      inWindow += window.length;
      const keys = rows.map((r) => r.idempotencyKey);
      const want = expected.map((t) => slotKey(d.id, t));
      const have = new Set(keys);
      const missing = window.map((t) => slotKey(d.id, t)).filter((k) => !have.has(k));
      if (missing.length > 0) problems.push(`${d.id}: window slots missing: ${missing.join(', ')}`);
      if (keys.join() !== want.join())
        problems.push(
          `${d.id} (${JSON.stringify(d.spec)}): ledger ${keys.join(', ')} ≠ expected ${want.join(', ')}`,
        );
      const next = nextFireTimes(d.spec, last, 1)[0];
      if (schedule.nextFireAt?.getTime() !== next?.getTime())
        problems.push(`${d.id}: next_fire_at ${schedule.nextFireAt?.toISOString()} ≠ ${next?.toISOString()}`);
      if (!['ha-a', 'ha-b', 'ha-c'].includes(schedule.lastPlannedBy ?? ''))
        problems.push(`${d.id}: last_planned_by ${schedule.lastPlannedBy}`);
      const plannedAt = schedule.lastPlannedAt?.getTime() ?? 0;
      if (plannedAt < testStart.getTime() || plannedAt > stoppedAt.getTime())
        problems.push(`${d.id}: last_planned_at ${schedule.lastPlannedAt?.toISOString()} outside the test`);
    }
    expect(problems).toEqual([]);
    // No row for anything else, and no key twice.
    expect(runs).toHaveLength(expectedTotal);
    expect(new Set(runs.map((r) => r.idempotencyKey)).size).toBe(runs.length);

    // Every row is an on-time scheduled slot, recorded within the horizon before it.
    const odd = runs.filter(
      (r) =>
        r.status !== 'QUEUED' ||
        r.attempt !== 1 ||
        r.trigger !== 'SCHEDULED' ||
        r.reason !== null ||
        r.definitionVersion !== 1 ||
        r.dueAt?.getTime() !== r.scheduledTime.getTime() ||
        r.scheduledTime.getTime() > r.createdAt.getTime() + HORIZON_SECONDS * 1000,
    );
    expect(
      odd.map(
        (r) =>
          `${r.idempotencyKey} ${r.status} attempt ${r.attempt} ${r.trigger} v${r.definitionVersion} ` +
          `due ${r.dueAt?.toISOString()} recorded ${r.createdAt.toISOString()} (${r.reason})`,
      ),
    ).toEqual([]);
    // enqueued_at is written after the enqueue: only the one claim the SIGKILL cut off may lack it.
    const unmarked = new Set(runs.filter((r) => r.enqueuedAt === null).map((r) => r.createdAt.getTime()));
    expect(unmarked.size).toBeLessThanOrEqual(1);

    // --- BullMQ: exactly one job per QUEUED row, carrying that row.
    const ids = await queuedJobIds(queue);
    expect(new Set(ids).size).toBe(ids.length);
    expect(new Set(ids)).toEqual(new Set(runs.map((r) => r.idempotencyKey)));
    const counts = await queue.getJobCounts();
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(runs.length);
    const jobs = new Map(
      (await queue.getJobs(['delayed', 'wait', 'paused', 'prioritized'], 0, -1)).map((j) => [j.id, j]),
    );
    const mismatched = runs.filter((r) => {
      const job = jobs.get(r.idempotencyKey);
      return (
        job?.data.runId !== r.id ||
        job.data.idempotencyKey !== r.idempotencyKey ||
        job.data.scheduledTime !== r.scheduledTime.toISOString()
      );
    });
    expect(mismatched.map((r) => r.idempotencyKey)).toEqual([]);

    // --- No slot was enqueued twice: jobs enqueued before the kill are the same jobs now, and
    // BullMQ's event stream shows each key created exactly once.
    const changed = [...beforeKill].filter(([id, ts]) => jobs.get(id)?.timestamp !== ts).map(([id]) => id);
    expect(changed).toEqual([]);
    const { added, duplicated, trimmed } = await creations();
    expect(trimmed, 'the events stream was trimmed: fewer slots are needed for this check').toBe(false);
    expect([...added].filter(([, n]) => n !== 1)).toEqual([]);
    expect(new Set(added.keys())).toEqual(new Set(ids));

    await annotate(
      `${runs.length} slots (${inWindow} in the window), ${beforeKill.size} enqueued before the kill, ` +
        `killed ${midClaim ? 'inside' : 'outside'} a transaction, ` +
        `${duplicated} add(s) of an existing key ignored by BullMQ, ` +
        `${runs.filter((r) => r.enqueuedAt === null).length} row(s) without enqueued_at`,
    );
  });
});

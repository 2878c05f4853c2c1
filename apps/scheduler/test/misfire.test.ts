import { newId, slotKey } from '@chronos/core';
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
} from './helpers.ts';

const THRESHOLD_MS = 2000;
const MAX_CATCH_UP = 3;
/** Longer than horizon (1 s) + threshold (2 s) + the catch-up cap (3 slots) + a margin. */
const OUTAGE_MS = 7000;
const POLICIES = ['FIRE_NOW', 'IGNORE', 'RESCHEDULE'] as const;
type Policy = (typeof POLICIES)[number];

interface Row {
  id: string;
  idempotencyKey: string;
  status: string;
  trigger: string;
  attempt: number;
  reason: string | null;
  scheduledTime: Date;
  dueAt: Date | null;
  createdAt: Date;
}

let tdb: TestDatabase;
let redis: Redis;
let queue: Queue;
let prefix: string;
let anchor: Date;
/** Database clock just before the second scheduler process was started. */
let restartAt: Date;
const jobOf = new Map<Policy, string>();
const rowsOf = new Map<Policy, Row[]>();
let bullIds: string[] = [];

/**
 * The outage, once for the three jobs: one scheduler plans a few seconds of 1 s slots, is stopped
 * (SIGTERM) for longer than the misfire threshold, and started again until it has caught up.
 */
beforeAll(async () => {
  tdb = await createTestDatabase('scheduler-misfire');
  redis = testRedis();
  prefix = `test-misfire-${newId()}`;
  queue = openQueue(redis, prefix, 'DUMMY');
  const db = tdb.db;
  const ownerId = await createOwner(db);
  const env = {
    DATABASE_URL: tdb.url,
    REDIS_PREFIX: prefix,
    SCHEDULER_TICK_MS: '200',
    // A short horizon: the outage must leave slots nobody planned in advance.
    SCHEDULER_HORIZON_SECONDS: '1',
    MISFIRE_THRESHOLD_SECONDS: String(THRESHOLD_MS / 1000),
  };

  const before = spawnScheduler('misfire-before', env);
  await before.ready;
  anchor = new Date(Math.ceil((await dbNow(db)).getTime() / 1000) * 1000 + 1000);
  const defs: JobDef[] = POLICIES.map((policy) => ({
    id: newId(),
    spec: { type: 'INTERVAL', intervalSeconds: 1, intervalMode: 'FIXED_RATE', anchorAt: anchor },
    firstFire: anchor,
    misfirePolicy: policy,
    misfireMaxCatchUp: MAX_CATCH_UP,
  }));
  for (const [i, policy] of POLICIES.entries()) jobOf.set(policy, (defs[i] as JobDef).id);
  await insertJobs(db, ownerId, defs);
  await eventually(
    async () =>
      (await db.jobSchedule.count({ where: { lastFireAt: { gte: new Date(anchor.getTime() + 2000) } } })) ===
      defs.length
        ? true
        : undefined,
    60_000,
    'three seconds of slots planned before the outage',
    () => before.output(),
  );
  expect(await before.stop()).toBe(0);

  // The outage: the point is that wall-clock time passes with no scheduler running.
  await sleep(OUTAGE_MS);

  restartAt = await dbNow(db);
  const after = spawnScheduler('misfire-after', env);
  await after.ready;
  const readyAt = await dbNow(db);
  // Caught up: every schedule planned by the new process past the moment it was ready.
  await eventually(
    async () =>
      (await db.jobSchedule.count({
        where: { lastPlannedBy: 'misfire-after', lastFireAt: { gt: readyAt } },
      })) === defs.length
        ? true
        : undefined,
    60_000,
    'the restarted scheduler to catch up',
    () => after.output(),
  );
  expect(await after.stop()).toBe(0);

  for (const policy of POLICIES)
    rowsOf.set(
      policy,
      await db.jobRun.findMany({
        where: { jobId: jobOf.get(policy) as string },
        orderBy: { scheduledTime: 'asc' },
      }),
    );
  bullIds = await queuedJobIds(queue);
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

/** One row in a failure message: slot, fate, and its times relative to the slot. */
function show(r: Row): string {
  const rel = (d: Date | null) => (d === null ? 'null' : `${d.getTime() - r.scheduledTime.getTime()} ms`);
  return `${r.scheduledTime.toISOString()} ${r.status} due ${rel(r.dueAt)} recorded ${rel(r.createdAt)} (${r.reason})`;
}

/** The rows of one job split by what the outage did to them. */
function phases(policy: Policy) {
  const rows = rowsOf.get(policy) ?? [];
  const planned = rows.filter((r) => r.createdAt < restartAt);
  const lastPlanned = planned.at(-1)?.scheduledTime.getTime() ?? 0;
  // Slots that fell into the outage: nobody planned them before it.
  const outage = rows.filter((r) => r.scheduledTime.getTime() > lastPlanned);
  // The first claim after the restart sees every missed slot at once. Its rows' created_at is that
  // transaction's now(), stored rounded to the ms: the planner's `now` is it or 1 ms before it.
  const catchUpAt = Math.min(...outage.map((r) => r.createdAt.getTime()));
  const late = rows.filter((r) => /misfire/.test(r.reason ?? ''));
  return { rows, planned, outage, late, catchUpAt };
}

describe('the scheduler stopped for longer than the misfire threshold', () => {
  it('records every slot from the first to the last planned one exactly once, consecutive seconds', () => {
    for (const policy of POLICIES) {
      const { rows, planned, outage } = phases(policy);
      const jobId = jobOf.get(policy) as string;
      expect(rows.length, policy).toBeGreaterThan(10);
      expect(rows.map((r) => r.scheduledTime.getTime())).toEqual(
        rows.map((_, i) => anchor.getTime() + i * 1000),
      );
      expect(rows.map((r) => r.idempotencyKey)).toEqual(rows.map((r) => slotKey(jobId, r.scheduledTime)));
      expect(rows.every((r) => r.attempt === 1 && r.trigger === 'SCHEDULED')).toBe(true);
      // Before the stop: planned ahead, on time, queued.
      expect(planned.length, policy).toBeGreaterThanOrEqual(3);
      expect(planned.filter((r) => r.status !== 'QUEUED' || r.reason !== null).map(show)).toEqual([]);
      expect(outage.every((r) => r.createdAt >= restartAt)).toBe(true);
    }
  });

  it('says why: exactly the missed slots older than the threshold carry a misfire reason', () => {
    for (const policy of POLICIES) {
      const { rows, outage, late, catchUpAt } = phases(policy);
      const age = (r: Row) => catchUpAt - r.scheduledTime.getTime();
      // The outage really left slots older than the threshold, more than the catch-up cap, and the
      // first claim after the restart decided them all, on the database clock.
      expect(late.length, `${policy}: late slots`).toBeGreaterThan(MAX_CATCH_UP);
      expect(late.map(show), policy).toEqual(outage.slice(0, late.length).map(show));
      expect(
        late.filter((r) => r.createdAt.getTime() !== catchUpAt || age(r) <= THRESHOLD_MS).map(show),
      ).toEqual([]);
      const onTime = rows.slice(rows.indexOf(late.at(-1) as Row) + 1);
      expect(onTime.filter((r) => age(r) > THRESHOLD_MS + 1).map(show), policy).toEqual([]);
      // On-time slots (before and after the outage) run at their slot; late ones that run, at once.
      expect(
        [...rows.slice(0, rows.indexOf(late[0] as Row)), ...onTime]
          .filter(
            (r) =>
              r.status !== 'QUEUED' || r.reason !== null || r.dueAt?.getTime() !== r.scheduledTime.getTime(),
          )
          .map(show),
        policy,
      ).toEqual([]);
      expect(
        late
          .filter((r) => r.status === 'QUEUED' && Math.abs((r.dueAt?.getTime() ?? 0) - catchUpAt) > 1)
          .map(show),
      ).toEqual([]);
    }
  });

  it('FIRE_NOW: the missed slots collapse into one run of the latest; the others are SKIPPED_MISFIRE', () => {
    const { late } = phases('FIRE_NOW');
    expect(
      late.map((r) => r.status),
      late.map(show).join('\n'),
    ).toEqual([...late.slice(1).map(() => 'SKIPPED_MISFIRE'), 'QUEUED']);
    for (const r of late.slice(0, -1)) expect(r.reason).toMatch(/misfire.*collapsed.*FIRE_NOW/);
    expect(late.at(-1)?.reason).toMatch(/misfire.*FIRE_NOW/);
  });

  it('IGNORE: no missed slot runs; every one is SKIPPED_MISFIRE', () => {
    const { late } = phases('IGNORE');
    expect(
      late.map((r) => r.status),
      late.map(show).join('\n'),
    ).toEqual(late.map(() => 'SKIPPED_MISFIRE'));
    for (const r of late) expect(r.reason).toMatch(/misfire.*IGNORE/);
  });

  it(`RESCHEDULE: the oldest ${MAX_CATCH_UP} missed slots run now; the rest are SKIPPED_MISFIRE`, () => {
    const { late } = phases('RESCHEDULE');
    expect(
      late.map((r) => r.status),
      late.map(show).join('\n'),
    ).toEqual([
      ...late.slice(0, MAX_CATCH_UP).map(() => 'QUEUED'),
      ...late.slice(MAX_CATCH_UP).map(() => 'SKIPPED_MISFIRE'),
    ]);
    for (const r of late.slice(0, MAX_CATCH_UP)) expect(r.reason).toMatch(/misfire.*RESCHEDULE/);
    for (const r of late.slice(MAX_CATCH_UP)) expect(r.reason).toMatch(/misfire.*catch-up cap/);
  });

  it('BullMQ holds exactly the QUEUED slots, none of the skipped ones', () => {
    const all = POLICIES.flatMap((p) => rowsOf.get(p) ?? []);
    const queued = all.filter((r) => r.status === 'QUEUED').map((r) => r.idempotencyKey);
    expect(new Set(bullIds).size).toBe(bullIds.length);
    expect(new Set(bullIds)).toEqual(new Set(queued));
    expect(all.some((r) => r.status === 'SKIPPED_MISFIRE')).toBe(true);
  });
});

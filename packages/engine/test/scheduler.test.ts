import { slotKey } from '@chronos/core';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createScheduler, publishChange, recordSlots, type Scheduler } from '../src/index.ts';
import { bullKey, createJob, eventually, harness, type Harness } from './fixtures.ts';

let h: Harness;
const log = pino({ level: 'silent' });
const running: Scheduler[] = [];

beforeAll(async () => {
  h = await harness('engine-sched');
});
afterEach(async () => {
  while (running.length) await running.pop()?.stop();
  // Every test starts from an empty ledger and empty queues.
  await h.db.job.deleteMany();
  for (const q of h.queues.values()) await q.obliterate({ force: true });
});
afterAll(async () => {
  await h?.close();
});

function scheduler(over: Partial<Parameters<typeof createScheduler>[0]> = {}) {
  return createScheduler({
    db: h.db,
    queues: h.queues,
    redis: h.redis,
    prefix: h.prefix,
    log,
    instanceId: 'test',
    ...over,
  });
}

async function ledger(jobId: string) {
  return h.db.jobRun.findMany({ where: { jobId }, orderBy: { scheduledTime: 'asc' } });
}

describe('a scheduler tick', () => {
  it('records every slot inside the horizon once and adds one delayed BullMQ job per slot, keyed by it', async () => {
    // The first slot a few seconds ahead: still delayed when its state is read, on a loaded machine too.
    const anchor = new Date(Math.ceil(Date.now() / 1000) * 1000 + 5000);
    const jobId = await createJob(h, { intervalSeconds: 10, anchorAt: anchor }, { nextFireAt: anchor });
    const s = scheduler();
    const first = await s.tick();
    expect(first.claimed).toBe(1);
    const rows = await ledger(jobId);
    expect(rows.length).toBeGreaterThanOrEqual(6);
    expect(rows.every((r) => r.status === 'QUEUED' && r.trigger === 'SCHEDULED' && r.attempt === 1)).toBe(
      true,
    );
    expect(rows.map((r) => r.idempotencyKey)).toEqual(rows.map((r) => slotKey(jobId, r.scheduledTime)));
    expect(rows.every((r) => r.enqueuedAt !== null)).toBe(true);

    const queue = h.queues.get('DUMMY')!;
    for (const r of rows) {
      const job = await queue.getJob(r.idempotencyKey);
      expect(job?.data).toMatchObject({ runId: r.id, jobId, idempotencyKey: r.idempotencyKey });
      expect(job?.name).toBe(`job-${jobId}`); // named after its Chronos job (Bull Board lists it so)
      expect(await job?.getState()).toBe('delayed');
    }
    const schedule = await h.db.jobSchedule.findUniqueOrThrow({ where: { jobId } });
    expect(schedule.lastFireAt).toEqual(rows.at(-1)?.scheduledTime);
    expect(schedule.nextFireAt!.getTime()).toBe(rows.at(-1)!.scheduledTime.getTime() + 10_000);
    expect((await h.db.job.findUniqueOrThrow({ where: { id: jobId } })).status).toBe('SCHEDULED');

    // Nothing new is due yet: a second tick claims nothing and records nothing.
    expect((await s.tick()).claimed).toBe(0);
    expect(await ledger(jobId)).toHaveLength(rows.length);
  });

  it('with three schedulers claiming at once, records every slot exactly once', async () => {
    const anchor = new Date(Math.ceil(Date.now() / 1000) * 1000);
    const ids = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        createJob(h, { intervalSeconds: 5 + (i % 7), anchorAt: anchor }, { nextFireAt: anchor }),
      ),
    );
    const [a, b, c] = [scheduler({ batchSize: 7 }), scheduler({ batchSize: 7 }), scheduler({ batchSize: 7 })];
    await Promise.all([a.tick(), b.tick(), c.tick(), a.tick(), b.tick()]);
    const rows = await h.db.jobRun.findMany({ where: { jobId: { in: ids } } });
    const keys = rows.map((r) => r.idempotencyKey);
    expect(new Set(keys).size).toBe(keys.length);
    // Each job has every one of its slots from the anchor, none missing.
    for (const [i, id] of ids.entries()) {
      const times = rows
        .filter((r) => r.jobId === id)
        .map((r) => r.scheduledTime.getTime())
        .sort((x, y) => x - y);
      expect(times[0]).toBe(anchor.getTime());
      for (let k = 1; k < times.length; k++) expect(times[k]! - times[k - 1]!).toBe((5 + (i % 7)) * 1000);
    }
  });

  it('stops when asked even while far behind, without claiming everything that is due first', async () => {
    const due = new Date(Date.now() - 1000);
    const ids = await Promise.all(
      Array.from({ length: 300 }, () =>
        createJob(h, { intervalSeconds: 3600, anchorAt: due }, { nextFireAt: due }),
      ),
    );
    let claims = 0;
    const s = scheduler({ batchSize: 1, onSkew: () => claims++ });
    await s.start();
    await eventually(async () => (claims > 0 ? true : undefined));
    await s.stop();
    const planned = await h.db.jobSchedule.count({
      where: { jobId: { in: ids }, lastFireAt: { not: null } },
    });
    expect(planned).toBeGreaterThan(0);
    expect(planned).toBeLessThan(300);
  });

  it('measures the database clock skew', async () => {
    const seen: number[] = [];
    const s = scheduler({ onSkew: (ms) => seen.push(ms) });
    await s.tick();
    expect(seen).toHaveLength(1);
    expect(Math.abs(seen[0]!)).toBeLessThan(1000);
    expect(s.clockSkewMs).toBe(seen[0]);
  });

  it('disables a schedule that cannot be computed instead of failing the tick for everyone', async () => {
    const good = await createJob(h, { intervalSeconds: 30 }, { nextFireAt: new Date() });
    const bad = await createJob(
      h,
      { scheduleType: 'CRON', cronExpression: 'not a cron' },
      { nextFireAt: new Date() },
    );
    await scheduler().tick();
    expect((await ledger(good)).length).toBeGreaterThan(0);
    expect(await ledger(bad)).toHaveLength(0);
    expect((await h.db.jobSchedule.findUniqueOrThrow({ where: { jobId: bad } })).nextFireAt).toBeNull();
  });
});

describe('promotion at the due time', () => {
  // Without a worker BullMQ never promotes a delayed job itself: only the scheduler's timer can.
  it('moves an enqueued slot from delayed to waiting at its time, with no worker around to do it', async () => {
    const due = new Date(Date.now() + 400);
    const jobId = await createJob(h, { scheduleType: 'ONCE', runAt: due }, { nextFireAt: due });
    await scheduler().tick();
    const key = slotKey(jobId, due);
    const job = await h.queues.get('DUMMY')!.getJob(key);
    expect(await job?.getState()).toBe('delayed');
    const state = await eventually(
      async () => {
        const st = await job?.getState();
        return st === 'waiting' ? st : undefined;
      },
      5000,
      'the slot to be promoted',
    );
    expect(state).toBe('waiting');
    expect(Date.now()).toBeGreaterThanOrEqual(due.getTime());
  });
});

describe('the reconciler', () => {
  it('re-adds recorded slots whose BullMQ job is missing (crash between commit and enqueue)', async () => {
    const jobId = await createJob(h, { intervalSeconds: 60 });
    const due = new Date(Date.now() + 30_000);
    // Recorded in the ledger, never enqueued.
    await h.db.$transaction((tx) =>
      recordSlots(tx, [
        {
          jobId,
          key: slotKey(jobId, due),
          status: 'QUEUED',
          trigger: 'SCHEDULED',
          scheduledTime: due,
          dueAt: due,
          reason: null,
          definitionVersion: 1,
        },
      ]),
    );
    const s = scheduler();
    expect(await s.reconcile()).toBe(1);
    const job = await h.queues.get('DUMMY')!.getJob(slotKey(jobId, due));
    expect(await job?.getState()).toBe('delayed');
    expect(job?.name).toBe(`job-${jobId}`);
    // Present now: nothing more to re-add.
    expect(await s.reconcile()).toBe(0);
  });

  it('re-adds QUEUED slots only: a finished run whose BullMQ job failed (or is gone) is never queued again', async () => {
    const jobId = await createJob(h, { intervalSeconds: 60 });
    const due = new Date(Date.now() + 30_000);
    const key = slotKey(jobId, due);
    const [row] = await h.db.$transaction((tx) =>
      recordSlots(tx, [
        {
          jobId,
          key,
          status: 'QUEUED',
          trigger: 'SCHEDULED',
          scheduledTime: due,
          dueAt: due,
          reason: null,
          definitionVersion: 1,
        },
      ]),
    );
    const s = scheduler();
    expect(await s.reconcile()).toBe(1);
    // The run ran and failed; its BullMQ job ended failed and was later removed (removeOnFail): the
    // ledger says FAILURE, so a missing BullMQ job is no reason to queue the run again.
    await h.db.jobRun.update({ where: { id: row!.id }, data: { status: 'FAILURE', errorMessage: 'boom' } });
    const bull = await h.queues.get('DUMMY')!.getJob(key);
    await bull!.remove();
    expect(await s.reconcile()).toBe(0);
    expect(await h.queues.get('DUMMY')!.getJob(key)).toBeUndefined();
  });

  it('restores every queued slot after Redis lost the queue (FLUSHALL of our keys)', async () => {
    const anchor = new Date(Date.now() + 2000);
    const jobId = await createJob(h, { intervalSeconds: 10, anchorAt: anchor }, { nextFireAt: anchor });
    const s = scheduler();
    await s.tick();
    const rows = await ledger(jobId);
    const keys = await h.redis.keys(`${h.prefix}:*`);
    await h.redis.del(...keys);
    expect(await h.redis.exists(bullKey(h, 'DUMMY', rows[0]!.idempotencyKey))).toBe(0);
    expect(await s.reconcile()).toBe(rows.length);
    for (const r of rows) expect(await h.redis.exists(bullKey(h, 'DUMMY', r.idempotencyKey))).toBe(1);
  });
});

describe('changes', () => {
  it('take effect at once: a published change wakes a scheduler whose tick is 30 s away', async () => {
    let ticks = 0;
    const s = scheduler({ tickMs: 30_000, onSkew: () => ticks++ });
    running.push(s);
    await s.start();
    // The first tick runs at start; the job is created after it, so only the change can plan it.
    await eventually(async () => (ticks > 0 ? true : undefined));
    const jobId = await createJob(h, { intervalSeconds: 60 }, { nextFireAt: new Date(Date.now() + 5000) });
    await publishChange(h.redis, h.prefix, jobId);
    const rows = await eventually(
      async () => {
        const r = await ledger(jobId);
        return r.length > 0 ? r : undefined;
      },
      5000,
      'the changed job to be planned',
    );
    expect(rows[0]?.status).toBe('QUEUED');
  });
});

describe('misfires: the scheduler was down for ten minutes', () => {
  const tenMinutesAgo = () => new Date(Math.floor(Date.now() / 60_000) * 60_000 - 10 * 60_000);

  for (const [policy, expectQueuedLate] of [
    ['FIRE_NOW', 1],
    ['IGNORE', 0],
    ['RESCHEDULE', 3],
  ] as const) {
    it(`${policy}: every missed slot has a row; ${expectQueuedLate} of them run now`, async () => {
      const since = tenMinutesAgo();
      const jobId = await createJob(
        h,
        { intervalSeconds: 60, anchorAt: since, misfirePolicy: policy, misfireMaxCatchUp: 3 },
        { nextFireAt: since },
      );
      await scheduler().tick();
      const rows = await ledger(jobId);
      const late = rows.filter((r) => r.scheduledTime.getTime() < Date.now() - 60_000);
      expect(late.length).toBeGreaterThanOrEqual(9);
      // Consecutive minutes, none missing.
      for (let k = 1; k < rows.length; k++)
        expect(rows[k]!.scheduledTime.getTime() - rows[k - 1]!.scheduledTime.getTime()).toBe(60_000);
      expect(late.filter((r) => r.status === 'QUEUED')).toHaveLength(expectQueuedLate);
      expect(late.filter((r) => r.status === 'SKIPPED_MISFIRE')).toHaveLength(late.length - expectQueuedLate);
      for (const r of late.filter((x) => x.status === 'QUEUED'))
        expect(await h.queues.get('DUMMY')!.getJob(r.idempotencyKey)).toBeDefined();
      for (const r of late.filter((x) => x.status === 'SKIPPED_MISFIRE')) {
        expect(r.reason).toMatch(/misfire/);
        expect(await h.queues.get('DUMMY')!.getJob(r.idempotencyKey)).toBeUndefined();
      }
      if (policy === 'FIRE_NOW') expect(late.find((r) => r.status === 'QUEUED')).toBe(late.at(-1));
      if (policy === 'RESCHEDULE')
        expect(late.filter((r) => r.status === 'QUEUED').map((r) => r.scheduledTime)).toEqual(
          late.slice(0, 3).map((r) => r.scheduledTime),
        );
    });
  }
});

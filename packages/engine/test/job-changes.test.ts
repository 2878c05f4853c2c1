import { ConflictError, slotKey } from '@chronos/core';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  PAUSED_BEFORE_START,
  backfillJob,
  bullJobId,
  createScheduler,
  deleteJob,
  finishRun,
  pauseJob,
  recordSlots,
  replanJob,
  resumeJob,
  startRun,
  triggerRun,
} from '../src/index.ts';
import { createJob, harness, type Harness } from './fixtures.ts';

let h: Harness;
beforeAll(async () => {
  h = await harness('engine-changes');
});
afterEach(async () => {
  await h.db.job.deleteMany();
  for (const q of h.queues.values()) await q.obliterate({ force: true });
});
afterAll(async () => {
  await h?.close();
});

const tick = () =>
  createScheduler({
    db: h.db,
    queues: h.queues,
    redis: h.redis,
    prefix: h.prefix,
    log: pino({ level: 'silent' }),
    instanceId: 't',
  }).tick();
const ledger = (jobId: string) =>
  h.db.jobRun.findMany({ where: { jobId }, orderBy: { scheduledTime: 'asc' } });
const inQueue = async (key: string) => (await h.queues.get('DUMMY')!.getJob(key)) !== undefined;
const wholeSecond = (offsetMs: number) => new Date(Math.ceil((Date.now() + offsetMs) / 1000) * 1000);

describe('pausing a job', () => {
  it('removes its enqueued future slots from Redis, records them SKIPPED_PAUSED and stops planning', async () => {
    const anchor = wholeSecond(5000);
    const jobId = await createJob(h, { intervalSeconds: 10, anchorAt: anchor }, { nextFireAt: anchor });
    await tick();
    const before = await ledger(jobId);
    expect(before.length).toBeGreaterThan(3);

    const out = await pauseJob(h, jobId);
    expect(out?.removed.sort()).toEqual(before.map((r) => r.idempotencyKey).sort());
    const after = await ledger(jobId);
    expect(after.every((r) => r.status === 'SKIPPED_PAUSED' && r.reason === 'job paused')).toBe(true);
    for (const r of after) expect(await inQueue(r.idempotencyKey)).toBe(false);
    expect((await h.db.job.findUniqueOrThrow({ where: { id: jobId } })).status).toBe('PAUSED');
    expect((await h.db.jobSchedule.findUniqueOrThrow({ where: { jobId } })).nextFireAt).toBeNull();
    expect((await tick()).claimed).toBe(0);
  });

  it('records every waiting run outside the schedule SKIPPED_PAUSED and removes it from Redis; resume leaves them skipped', async () => {
    // Slots every 10 s on a grid anchored a minute ago: the next ones are planned, past ones backfilled.
    const next = wholeSecond(5000);
    const anchor = new Date(next.getTime() - 60_000);
    const jobId = await createJob(h, { intervalSeconds: 10, anchorAt: anchor }, { nextFireAt: next });
    await h.db.job.update({ where: { id: jobId }, data: { allowWebhook: true } });
    await h.db.retryPolicy.create({
      data: { jobId, maxAttempts: 3, backoffSeconds: 60, retryOn: ['HTTP_5XX'] },
    });
    await tick();
    const slots = await ledger(jobId);

    const manual = await triggerRun(h, { jobId, trigger: 'MANUAL' });
    const webhook = await triggerRun(h, { jobId, trigger: 'WEBHOOK' });
    expect(
      await backfillJob(h, jobId, { from: anchor, to: new Date(anchor.getTime() + 10_000) }),
    ).toMatchObject({
      enqueued: 2,
    });
    // A failed attempt whose retry waits for its backoff.
    const failedAt = new Date(anchor.getTime() + 20_000);
    const [failed] = await h.db.$transaction((tx) =>
      recordSlots(tx, [
        {
          jobId,
          key: slotKey(jobId, failedAt),
          status: 'QUEUED',
          trigger: 'SCHEDULED',
          scheduledTime: failedAt,
          dueAt: failedAt,
          reason: null,
          definitionVersion: 1,
        },
      ]),
    );
    const started = await startRun(h.db, { runId: failed!.id, workerId: 'w', misfireThresholdSeconds: 3600 });
    if (started.action !== 'RUN') throw new Error(`not started: ${JSON.stringify(started)}`);
    const { retry } = await finishRun(
      h.db,
      { runId: failed!.id, lockToken: started.lockToken, status: 'FAILURE', errorCode: 'HTTP_5XX' },
      { queues: h.queues },
    );
    const waiting = await h.db.jobRun.findMany({
      where: { jobId, status: 'QUEUED', trigger: { not: 'SCHEDULED' } },
    });
    expect(waiting.map((r) => r.trigger).sort()).toEqual([
      'BACKFILL',
      'BACKFILL',
      'MANUAL',
      'RETRY',
      'WEBHOOK',
    ]);
    expect(waiting.map((r) => r.id)).toEqual(
      expect.arrayContaining([manual.runId, webhook.runId, retry!.runId]),
    );
    const bullId = (r: { idempotencyKey: string; attempt: number }) => bullJobId(r.idempotencyKey, r.attempt);
    for (const r of waiting) expect(await inQueue(bullId(r))).toBe(true);

    const out = await pauseJob(h, jobId);
    expect(out?.removed.sort()).toEqual(slots.map((r) => r.idempotencyKey).sort());
    expect(out?.skippedRuns.sort()).toEqual(waiting.map((r) => r.id).sort());
    for (const r of waiting) {
      expect(await h.db.jobRun.findUniqueOrThrow({ where: { id: r.id } })).toMatchObject({
        status: 'SKIPPED_PAUSED',
        reason: PAUSED_BEFORE_START,
        startTime: null,
      });
      expect(await inQueue(bullId(r))).toBe(false);
    }

    // The schedule's slots come back by the resume policy; runs outside it stay skipped.
    await resumeJob(h, jobId);
    for (const r of slots)
      expect((await h.db.jobRun.findUniqueOrThrow({ where: { id: r.id } })).status).toBe('QUEUED');
    for (const r of waiting) {
      expect((await h.db.jobRun.findUniqueOrThrow({ where: { id: r.id } })).status).toBe('SKIPPED_PAUSED');
      expect(await inQueue(bullId(r))).toBe(false);
    }
  });

  it('a backfill of a paused job is refused, as a trigger is, and records nothing', async () => {
    const jobId = await createJob(
      h,
      { scheduleType: 'CRON', cronExpression: '0 * * * *' },
      { nextFireAt: null },
    );
    await pauseJob(h, jobId);
    const range = { from: new Date('2026-01-01T00:00:00Z'), to: new Date('2026-01-01T05:00:00Z') };
    await expect(backfillJob(h, jobId, range)).rejects.toThrow(ConflictError);
    await expect(triggerRun(h, { jobId, trigger: 'MANUAL' })).rejects.toThrow(ConflictError);
    expect(await ledger(jobId)).toHaveLength(0);
  });
});

describe('resuming a job', () => {
  /** A job paused 10 minutes ago, one slot a minute: 10 slots came due during the pause. */
  async function pausedTenMinutes(resumePolicy: 'SKIP_MISSED' | 'RUN_ONCE' | 'REPLAY') {
    // Slots at -9.5 min, -8.5 min … -0.5 min: ten of them, half a minute from either edge.
    const anchor = new Date(Date.now() - 570_000);
    const jobId = await createJob(
      h,
      { intervalSeconds: 60, anchorAt: anchor, resumePolicy, misfireMaxCatchUp: 4 },
      { nextFireAt: null },
    );
    await h.db.job.update({
      where: { id: jobId },
      data: { status: 'PAUSED', pausedAt: new Date(anchor.getTime() - 1) },
    });
    return jobId;
  }

  it('SKIP_MISSED records every slot missed during the pause as SKIPPED_PAUSED and plans the next', async () => {
    const jobId = await pausedTenMinutes('SKIP_MISSED');
    const out = await resumeJob(h, jobId);
    expect(out?.missed).toBe(10);
    expect(out?.replayed).toBe(0);
    const rows = await ledger(jobId);
    expect(rows).toHaveLength(10);
    expect(rows.every((r) => r.status === 'SKIPPED_PAUSED')).toBe(true);
    expect(out?.nextFireAt!.getTime()).toBe(rows.at(-1)!.scheduledTime.getTime() + 60_000);
    expect((await h.db.job.findUniqueOrThrow({ where: { id: jobId } })).status).toBe('SCHEDULED');
  });

  it('RUN_ONCE runs the latest missed slot now and skips the others', async () => {
    const jobId = await pausedTenMinutes('RUN_ONCE');
    await resumeJob(h, jobId);
    const rows = await ledger(jobId);
    expect(rows.filter((r) => r.status === 'QUEUED').map((r) => r.scheduledTime)).toEqual([
      rows.at(-1)!.scheduledTime,
    ]);
    expect(await inQueue(rows.at(-1)!.idempotencyKey)).toBe(true);
    expect(rows.filter((r) => r.status === 'SKIPPED_PAUSED')).toHaveLength(9);
  });

  it('REPLAY runs the missed slots oldest first up to the cap', async () => {
    const jobId = await pausedTenMinutes('REPLAY');
    const out = await resumeJob(h, jobId);
    expect(out?.replayed).toBe(4);
    const rows = await ledger(jobId);
    expect(rows.filter((r) => r.status === 'QUEUED').map((r) => r.scheduledTime)).toEqual(
      rows.slice(0, 4).map((r) => r.scheduledTime),
    );
    for (const r of rows.slice(0, 4)) expect(await inQueue(r.idempotencyKey)).toBe(true);
  });

  it('slots the pause skipped that are still ahead run as planned again', async () => {
    const anchor = wholeSecond(20_000);
    const jobId = await createJob(h, { intervalSeconds: 10, anchorAt: anchor }, { nextFireAt: anchor });
    await tick();
    const planned = await ledger(jobId);
    await pauseJob(h, jobId);
    await resumeJob(h, jobId);
    const rows = await ledger(jobId);
    expect(rows.map((r) => r.idempotencyKey)).toEqual(planned.map((r) => r.idempotencyKey));
    expect(rows.every((r) => r.status === 'QUEUED')).toBe(true);
    for (const r of rows) expect(await inQueue(r.idempotencyKey)).toBe(true);
    // Planning continues after the last recorded slot: no slot twice.
    await tick();
    const keys = (await ledger(jobId)).map((r) => r.idempotencyKey);
    expect(new Set(keys).size).toBe(keys.length);
  });
});

describe('pausing and resuming a ONCE job', () => {
  it('plans its run again when it is still ahead and the pause came before the slot was recorded', async () => {
    const runAt = wholeSecond(3_600_000);
    const jobId = await createJob(h, { scheduleType: 'ONCE', runAt, intervalSeconds: undefined });
    expect((await h.db.jobSchedule.findUniqueOrThrow({ where: { jobId } })).nextFireAt?.getTime()).toBe(
      runAt.getTime(),
    );
    await pauseJob(h, jobId);
    expect(await ledger(jobId)).toHaveLength(0);
    const out = await resumeJob(h, jobId);
    expect(out?.nextFireAt?.getTime()).toBe(runAt.getTime());
    expect((await h.db.jobSchedule.findUniqueOrThrow({ where: { jobId } })).nextFireAt?.getTime()).toBe(
      runAt.getTime(),
    );
  });
});

describe('re-planning after a change', () => {
  it('slots that no longer apply leave Redis and say why; slots that still apply stay', async () => {
    const anchor = wholeSecond(5000);
    const jobId = await createJob(h, { intervalSeconds: 10, anchorAt: anchor }, { nextFireAt: anchor });
    await tick();
    const before = await ledger(jobId);
    // Every 20 s from the same anchor: every other slot still applies.
    await h.db.jobSchedule.update({ where: { jobId }, data: { intervalSeconds: 20 } });
    await h.db.job.update({ where: { id: jobId }, data: { version: 2 } });
    const out = await replanJob(h, jobId);
    const after = await ledger(jobId);
    const dropped = after.filter((r) => r.status === 'SKIPPED');
    expect(dropped.length).toBe(Math.floor(before.length / 2));
    expect(dropped.every((r) => r.reason === 'schedule changed (definition v2)')).toBe(true);
    expect(out?.removed.sort()).toEqual(dropped.map((r) => r.idempotencyKey).sort());
    for (const r of dropped) expect(await inQueue(r.idempotencyKey)).toBe(false);
    for (const r of after.filter((x) => x.status === 'QUEUED')) {
      expect((r.scheduledTime.getTime() - anchor.getTime()) % 20_000).toBe(0);
      expect(await inQueue(r.idempotencyKey)).toBe(true);
    }
    // The next tick plans the new cadence without duplicating what is queued.
    await tick();
    const keys = (await ledger(jobId)).map((r) => r.idempotencyKey);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('a slot skipped by a change that applies again after another change is queued again', async () => {
    const anchor = wholeSecond(5000);
    const jobId = await createJob(h, { intervalSeconds: 10, anchorAt: anchor }, { nextFireAt: anchor });
    await tick();
    await h.db.jobSchedule.update({ where: { jobId }, data: { intervalSeconds: 20 } });
    await replanJob(h, jobId);
    await h.db.jobSchedule.update({ where: { jobId }, data: { intervalSeconds: 10 } });
    await replanJob(h, jobId);
    await tick();
    const rows = await ledger(jobId);
    const second = rows.find((r) => r.scheduledTime.getTime() === anchor.getTime() + 10_000);
    expect(second?.status).toBe('QUEUED');
    expect(await inQueue(second!.idempotencyKey)).toBe(true);
  });
});

describe('deleting a job', () => {
  it('removes its queued slots from Redis', async () => {
    const anchor = wholeSecond(5000);
    const jobId = await createJob(h, { intervalSeconds: 10, anchorAt: anchor }, { nextFireAt: anchor });
    await tick();
    const keys = (await ledger(jobId)).map((r) => r.idempotencyKey);
    expect(await deleteJob(h, jobId)).toBe(true);
    for (const k of keys) expect(await inQueue(k)).toBe(false);
    expect(await h.db.jobRun.count({ where: { jobId } })).toBe(0);
    expect(await deleteJob(h, jobId)).toBe(false);
  });

  it("hands the caller's check the version it deletes, locked: a check that fails deletes nothing", async () => {
    const jobId = await createJob(h, { intervalSeconds: 60 });
    await h.db.job.update({ where: { id: jobId }, data: { version: 2 } });
    const seen: number[] = [];
    const stale = deleteJob(h, jobId, {
      withinTransaction: async (_tx, { version }) => {
        seen.push(version);
        if (version !== 1) throw new Error('If-Match 1 is stale');
      },
    });
    await expect(stale).rejects.toThrow('If-Match 1 is stale');
    expect(seen).toEqual([2]);
    expect(await h.db.job.count({ where: { id: jobId } })).toBe(1);
    expect(
      await deleteJob(h, jobId, { withinTransaction: async (_tx, { version }) => void seen.push(version) }),
    ).toBe(true);
    expect(await h.db.job.count({ where: { id: jobId } })).toBe(0);
  });
});

describe('backfill', () => {
  it('enqueues every slot of a past range once, with the scheduled slots’ keys', async () => {
    const jobId = await createJob(
      h,
      { scheduleType: 'CRON', cronExpression: '0 * * * *' },
      { nextFireAt: null },
    );
    const from = new Date('2026-01-01T00:00:00Z');
    const to = new Date('2026-01-01T05:00:00Z');
    const first = await backfillJob(h, jobId, { from, to });
    expect(first).toEqual({ enqueued: 6, deduplicated: 0, truncated: false });
    const rows = await ledger(jobId);
    expect(rows.map((r) => r.idempotencyKey)).toEqual(
      [0, 1, 2, 3, 4, 5].map((hr) => slotKey(jobId, new Date(from.getTime() + hr * 3_600_000))),
    );
    expect(rows.every((r) => r.trigger === 'BACKFILL' && r.status === 'QUEUED')).toBe(true);
    for (const r of rows) expect(await inQueue(r.idempotencyKey)).toBe(true);

    // Again, overlapping: nothing is duplicated.
    const again = await backfillJob(h, jobId, {
      from: new Date('2026-01-01T03:00:00Z'),
      to: new Date('2026-01-01T07:00:00Z'),
    });
    expect(again).toEqual({ enqueued: 2, deduplicated: 3, truncated: false });
    expect(await ledger(jobId)).toHaveLength(8);
  });

  it('runs a slot that was skipped, and is bounded', async () => {
    const jobId = await createJob(
      h,
      { scheduleType: 'CRON', cronExpression: '* * * * *' },
      { nextFireAt: null },
    );
    const t = new Date('2026-02-01T10:00:00Z');
    await h.db.jobRun.create({
      data: {
        id: '01JSKIPPEDSLOT000000000000',
        jobId,
        idempotencyKey: slotKey(jobId, t),
        status: 'SKIPPED_MISFIRE',
        scheduledTime: t,
      },
    });
    const out = await backfillJob(h, jobId, { from: t, to: new Date('2026-02-01T12:00:00Z') }, 10);
    expect(out).toEqual({ enqueued: 10, deduplicated: 0, truncated: true });
    const row = await h.db.jobRun.findUniqueOrThrow({ where: { id: '01JSKIPPEDSLOT000000000000' } });
    expect(row.status).toBe('QUEUED');
    expect(row.trigger).toBe('BACKFILL');
    expect(row.reason).toMatch(/^was SKIPPED_MISFIRE/);
  });
});

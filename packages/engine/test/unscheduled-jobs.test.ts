// Jobs that run only when triggered: no schedule, no job_schedules row, never claimed by a
// scheduler; a schedule can be added later (and removed again).
import { ValidationError } from '@chronos/core';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  backfillJob,
  createJob,
  createScheduler,
  pauseJob,
  resumeJob,
  triggerRun,
  updateJob,
  updateSchedule,
} from '../src/index.ts';
import { harness, type Harness } from './fixtures.ts';

let h: Harness;
beforeAll(async () => {
  h = await harness('engine-unscheduled');
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

const runsOf = (jobId: string, trigger?: 'SCHEDULED' | 'MANUAL') =>
  h.db.jobRun.findMany({ where: { jobId, ...(trigger ? { trigger } : {}) } });

async function triggeredOnly(name: string) {
  return createJob(h, { ownerId: h.ownerId, name, type: 'DUMMY', allowWebhook: true });
}

describe('a job without a schedule', () => {
  it('is stored without a schedule row, waiting (PENDING), with no fire time', async () => {
    const { id, nextFireAt, job } = await triggeredOnly('on-demand');
    expect(nextFireAt).toBeNull();
    expect(job.schedule).toBeNull();
    expect(job.status).toBe('PENDING');
    expect(await h.db.jobSchedule.count({ where: { jobId: id } })).toBe(0);
  });

  it('is never planned by the scheduler, while a scheduled job beside it is', async () => {
    const { id } = await triggeredOnly('never-planned');
    const scheduled = await createJob(h, {
      ownerId: h.ownerId,
      name: 'every-ten-seconds',
      type: 'DUMMY',
      schedule: { type: 'INTERVAL', intervalSeconds: 10 },
    });
    await tick();
    await tick();
    expect((await runsOf(scheduled.id, 'SCHEDULED')).length).toBeGreaterThan(0);
    expect(await runsOf(id)).toEqual([]);
    expect((await h.db.job.findUniqueOrThrow({ where: { id } })).status).toBe('PENDING');
  });

  it('runs when triggered: a MANUAL run is recorded and queued', async () => {
    const { id } = await triggeredOnly('triggered');
    const out = await triggerRun(h, { jobId: id, trigger: 'MANUAL', reason: 'test' });
    const [run] = await runsOf(id);
    expect(run).toMatchObject({ id: out.runId, trigger: 'MANUAL', status: 'QUEUED' });
    const bull = await h.queues.get('DUMMY')?.getJob(run!.idempotencyKey);
    expect(bull?.data).toMatchObject({ runId: out.runId, jobId: id });
  });

  it('pauses and resumes (back to PENDING: nothing was missed); a backfill has no slots to take', async () => {
    const { id } = await triggeredOnly('paused');
    expect(await pauseJob(h, id)).toEqual({ removed: [], skippedRuns: [] });
    expect((await h.db.job.findUniqueOrThrow({ where: { id } })).status).toBe('PAUSED');
    expect(await resumeJob(h, id)).toEqual({ missed: 0, replayed: 0, nextFireAt: null });
    expect((await h.db.job.findUniqueOrThrow({ where: { id } })).status).toBe('PENDING');
    const err = await backfillJob(h, id, { from: new Date(Date.now() - 3_600_000), to: new Date() }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).issues.map((i) => i.path)).toEqual(['schedule']);
  });

  it('is planned once a change adds a schedule, and stops when the schedule is removed', async () => {
    const { id } = await triggeredOnly('added-later');
    const added = await updateJob(h, id, { schedule: { type: 'INTERVAL', intervalSeconds: 10 } });
    expect(added?.job.status).toBe('SCHEDULED');
    expect(added?.job.schedule?.nextFireAt).toBeInstanceOf(Date);
    expect(added?.job.version).toBe(2);
    await tick();
    const planned = await runsOf(id, 'SCHEDULED');
    expect(planned.length).toBeGreaterThan(0);

    const removed = await updateJob(h, id, { schedule: null });
    expect(removed?.job.schedule).toBeNull();
    expect(removed?.job.status).toBe('PENDING');
    expect(removed?.job.version).toBe(3);
    expect(await h.db.jobSchedule.count({ where: { jobId: id } })).toBe(0);
    // Slots still ahead no longer apply: skipped in the ledger, gone from Redis.
    const after = await runsOf(id, 'SCHEDULED');
    const ahead = after.filter((r) => r.scheduledTime > new Date() && r.startTime === null);
    expect(ahead.length).toBeGreaterThan(0);
    for (const r of ahead) {
      expect(r.status).toBe('SKIPPED');
      expect(r.reason).toMatch(/^schedule removed/);
      expect(await h.queues.get('DUMMY')?.getJob(r.idempotencyKey)).toBeUndefined();
    }
    const count = after.length;
    await tick();
    expect(await runsOf(id, 'SCHEDULED')).toHaveLength(count);
  });

  it('gets a schedule from updateSchedule too, planned at once', async () => {
    const { id } = await triggeredOnly('update-schedule');
    const out = await updateSchedule(h, id, { type: 'INTERVAL', intervalSeconds: 10 });
    expect(out?.nextFireAt).toBeInstanceOf(Date);
    expect(await h.db.jobSchedule.count({ where: { jobId: id } })).toBe(1);
  });
});

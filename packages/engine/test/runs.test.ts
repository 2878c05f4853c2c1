import { newId, slotKey } from '@chronos/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { finishRun, recordSlots, startRun } from '../src/index.ts';
import { createJob, harness, type Harness } from './fixtures.ts';

let h: Harness;
beforeAll(async () => {
  h = await harness('engine-runs');
});
afterEach(async () => {
  await h.db.job.deleteMany();
});
afterAll(async () => {
  await h?.close();
});

/** Records one QUEUED slot of `jobId` at `time` (due then) and returns its run id. */
async function slot(jobId: string, time: Date, dueAt = time): Promise<string> {
  const [row] = await h.db.$transaction((tx) =>
    recordSlots(tx, [
      {
        jobId,
        key: slotKey(jobId, time),
        status: 'QUEUED',
        trigger: 'SCHEDULED',
        scheduledTime: time,
        dueAt,
        reason: null,
        definitionVersion: 1,
      },
    ]),
  );
  return row!.id;
}
const start = (runId: string, workerId = 'w1') =>
  startRun(h.db, { runId, workerId, misfireThresholdSeconds: 60 });
const run = (id: string) => h.db.jobRun.findUniqueOrThrow({ where: { id } });
const ago = (s: number) => new Date(Date.now() - s * 1000);

describe('starting a run', () => {
  it('moves a QUEUED slot to RUNNING under the worker with a lock token, and the job with it', async () => {
    const jobId = await createJob(h, { intervalSeconds: 60 });
    const id = await slot(jobId, ago(1));
    const d = await start(id, 'worker-7');
    expect(d.action).toBe('RUN');
    const r = await run(id);
    expect(r.status).toBe('RUNNING');
    expect(r.workerId).toBe('worker-7');
    expect(r.startTime).not.toBeNull();
    expect(r.lockToken).toBe(d.action === 'RUN' ? d.lockToken : null);
    expect((await h.db.job.findUniqueOrThrow({ where: { id: jobId } })).status).toBe('RUNNING');
  });

  it('never starts a run twice (duplicate delivery), and says so', async () => {
    const jobId = await createJob(h, { intervalSeconds: 60 });
    const id = await slot(jobId, ago(1));
    expect((await start(id)).action).toBe('RUN');
    expect(await start(id, 'w2')).toEqual({ action: 'GONE', reason: 'run is RUNNING, not QUEUED' });
    expect(await start(newId())).toEqual({ action: 'GONE', reason: 'run not found (job deleted)' });
  });

  it('skips a slot whose job was paused while it waited', async () => {
    const jobId = await createJob(h, { intervalSeconds: 60 });
    const id = await slot(jobId, ago(1));
    await h.db.job.update({ where: { id: jobId }, data: { status: 'PAUSED' } });
    expect(await start(id)).toMatchObject({ action: 'SKIPPED', status: 'SKIPPED_PAUSED' });
    expect((await run(id)).reason).toBe('job paused while the run waited');
  });
});

describe('a job changed while its slot waited', () => {
  /** The last whole minute: a slot of `* * * * *`, due a second ago. */
  const lastMinute = () => new Date(Math.floor(Date.now() / 60_000) * 60_000 - 60_000);
  const everyMinute = { scheduleType: 'CRON' as const, cronExpression: '* * * * *' };

  it('skips the slot, saying why, when the schedule as it is now does not have it', async () => {
    const jobId = await createJob(h, everyMinute);
    const id = await slot(jobId, lastMinute(), ago(1));
    await h.db.job.update({
      where: { id: jobId },
      data: { version: 2, schedule: { update: { cronExpression: '0 0 1 1 *' } } },
    });
    expect(await start(id)).toMatchObject({ action: 'SKIPPED', status: 'SKIPPED' });
    expect((await run(id)).reason).toBe(
      'job changed while the run waited (version 1 → 2): the slot is not in its schedule any more',
    );
  });

  it('runs the slot when the change kept it (a new payload, the same schedule), under the new version', async () => {
    const jobId = await createJob(h, everyMinute);
    const id = await slot(jobId, lastMinute(), ago(1));
    await h.db.job.update({ where: { id: jobId }, data: { version: 2 } });
    expect(await start(id)).toMatchObject({ action: 'RUN', definitionVersion: 2 });
  });
});

describe('misfire while waiting for a free worker', () => {
  it('IGNORE skips a slot that waited longer than the threshold', async () => {
    const jobId = await createJob(h, { intervalSeconds: 60, misfirePolicy: 'IGNORE' });
    const id = await slot(jobId, ago(120));
    expect(await start(id)).toMatchObject({ action: 'SKIPPED', status: 'SKIPPED_MISFIRE' });
    expect((await run(id)).reason).toMatch(/waiting for a worker.*IGNORE/);
  });

  it('a ONCE job whose only slot is skipped waits for triggers (PENDING), not SCHEDULED', async () => {
    const t = ago(120);
    const jobId = await createJob(
      h,
      { scheduleType: 'ONCE', runAt: t, misfirePolicy: 'IGNORE' },
      { nextFireAt: null },
    );
    await h.db.job.update({ where: { id: jobId }, data: { status: 'SCHEDULED' } });
    const id = await slot(jobId, t);
    expect(await start(id)).toMatchObject({ action: 'SKIPPED', status: 'SKIPPED_MISFIRE' });
    expect((await h.db.job.findUniqueOrThrow({ where: { id: jobId } })).status).toBe('PENDING');
  });

  it('FIRE_NOW runs only the latest of the late slots', async () => {
    const jobId = await createJob(h, { intervalSeconds: 60, misfirePolicy: 'FIRE_NOW' });
    const older = await slot(jobId, ago(180));
    const newer = await slot(jobId, ago(120));
    expect(await start(older)).toMatchObject({ action: 'SKIPPED', status: 'SKIPPED_MISFIRE' });
    expect((await start(newer)).action).toBe('RUN');
  });

  it('RESCHEDULE runs every late slot', async () => {
    const jobId = await createJob(h, { intervalSeconds: 60, misfirePolicy: 'RESCHEDULE' });
    await h.db.job.update({ where: { id: jobId }, data: { overlapPolicy: 'ALLOW_ALL' } });
    const a = await slot(jobId, ago(180));
    const b = await slot(jobId, ago(120));
    expect((await start(a)).action).toBe('RUN');
    expect((await start(b)).action).toBe('RUN');
  });
});

describe('overlap: a slot comes due while a run of the job is active', () => {
  async function busyJob(policy: 'SKIP' | 'BUFFER_ONE' | 'BUFFER_ALL' | 'CANCEL_OTHER' | 'ALLOW_ALL') {
    const jobId = await createJob(h, { intervalSeconds: 60 });
    await h.db.job.update({ where: { id: jobId }, data: { overlapPolicy: policy } });
    const first = await slot(jobId, ago(30));
    const d = await start(first);
    if (d.action !== 'RUN') throw new Error('first run did not start');
    return { jobId, first, token: d.lockToken };
  }

  it('SKIP (the default) skips the new slot', async () => {
    const { jobId, first } = await busyJob('SKIP');
    const next = await slot(jobId, ago(1));
    expect(await start(next)).toMatchObject({ action: 'SKIPPED', status: 'SKIPPED_OVERLAP' });
    expect((await run(next)).reason).toContain(first);
  });

  it('BUFFER_ONE keeps one slot waiting and skips further ones; the buffered one runs when the first ends', async () => {
    const { jobId, first, token } = await busyJob('BUFFER_ONE');
    const second = await slot(jobId, ago(2));
    const third = await slot(jobId, ago(1));
    expect((await start(second)).action).toBe('DEFER');
    expect(await start(third)).toMatchObject({ action: 'SKIPPED', status: 'SKIPPED_OVERLAP' });
    expect((await start(second)).action).toBe('DEFER');
    await finishRun(h.db, { runId: first, lockToken: token, status: 'SUCCESS' });
    expect((await start(second)).action).toBe('RUN');
  });

  it('BUFFER_ALL keeps every slot waiting, in order', async () => {
    const { jobId, first, token } = await busyJob('BUFFER_ALL');
    const second = await slot(jobId, ago(2));
    const third = await slot(jobId, ago(1));
    expect((await start(second)).action).toBe('DEFER');
    expect((await start(third)).action).toBe('DEFER');
    await finishRun(h.db, { runId: first, lockToken: token, status: 'SUCCESS' });
    const d2 = await start(second);
    expect(d2.action).toBe('RUN');
    expect((await start(third)).action).toBe('DEFER');
  });

  it('CANCEL_OTHER asks for the active run to be cancelled and waits for it', async () => {
    const { jobId, first, token } = await busyJob('CANCEL_OTHER');
    const next = await slot(jobId, ago(1));
    expect(await start(next)).toMatchObject({ action: 'DEFER', cancel: [first] });
    await finishRun(h.db, { runId: first, lockToken: token, status: 'CANCELLED' });
    expect((await start(next)).action).toBe('RUN');
  });

  it('ALLOW_ALL runs both', async () => {
    const { jobId } = await busyJob('ALLOW_ALL');
    expect((await start(await slot(jobId, ago(1)))).action).toBe('RUN');
  });
});

describe('finishing a run', () => {
  it('records the outcome, the end and the duration, and puts the job back to SCHEDULED', async () => {
    const jobId = await createJob(h, { intervalSeconds: 60 });
    const id = await slot(jobId, ago(1));
    const d = await start(id);
    if (d.action !== 'RUN') throw new Error('not started');
    expect(
      await finishRun(h.db, {
        runId: id,
        lockToken: d.lockToken,
        status: 'FAILURE',
        errorMessage: 'boom',
        exitCode: 3,
      }),
    ).toMatchObject({ accepted: true, dlqEventId: expect.any(String) });
    const r = await run(id);
    expect(r.status).toBe('FAILURE');
    expect(r.errorMessage).toBe('boom');
    expect(r.exitCode).toBe(3);
    expect(r.endTime).not.toBeNull();
    expect(r.durationMs).toBeGreaterThanOrEqual(0);
    expect((await h.db.job.findUniqueOrThrow({ where: { id: jobId } })).status).toBe('SCHEDULED');
  });

  it('refuses a finish without the current lock token: a stale worker never overwrites the record', async () => {
    const jobId = await createJob(h, { intervalSeconds: 60 });
    const id = await slot(jobId, ago(1));
    const d = await start(id);
    if (d.action !== 'RUN') throw new Error('not started');
    expect(await finishRun(h.db, { runId: id, lockToken: 'stale', status: 'SUCCESS' })).toEqual({
      accepted: false,
    });
    expect((await run(id)).status).toBe('RUNNING');
    await finishRun(h.db, { runId: id, lockToken: d.lockToken, status: 'SUCCESS' });
    expect(await finishRun(h.db, { runId: id, lockToken: d.lockToken, status: 'FAILURE' })).toEqual({
      accepted: false,
    });
    expect((await run(id)).status).toBe('SUCCESS');
  });

  it('a ONCE job ends SUCCEEDED or FAILED with its run', async () => {
    const t = ago(1);
    const jobId = await createJob(h, { scheduleType: 'ONCE', runAt: t }, { nextFireAt: null });
    const id = await slot(jobId, t);
    const d = await start(id);
    if (d.action !== 'RUN') throw new Error('not started');
    await finishRun(h.db, { runId: id, lockToken: d.lockToken, status: 'SUCCESS' });
    expect((await h.db.job.findUniqueOrThrow({ where: { id: jobId } })).status).toBe('SUCCEEDED');
  });

  it('a fixed-delay schedule plans its next slot from the finish', async () => {
    const jobId = await createJob(
      h,
      { intervalSeconds: 30, intervalMode: 'FIXED_DELAY', anchorAt: ago(1) },
      { nextFireAt: null },
    );
    const id = await slot(jobId, ago(1));
    const d = await start(id);
    if (d.action !== 'RUN') throw new Error('not started');
    await finishRun(h.db, { runId: id, lockToken: d.lockToken, status: 'SUCCESS' });
    const r = await run(id);
    const s = await h.db.jobSchedule.findUniqueOrThrow({ where: { jobId } });
    expect(s.nextFireAt!.getTime()).toBe(r.endTime!.getTime() + 30_000);
  });
});

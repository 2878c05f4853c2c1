import { ValidationError } from '@chronos/core';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { StaleVersionError, createJob, createScheduler, updateJob, updateSchedule } from '../src/index.ts';
import { harness, type Harness } from './fixtures.ts';

let h: Harness;
beforeAll(async () => {
  h = await harness('engine-jobs');
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

describe('creating a job', () => {
  it('stores it with its first slot planned and the deployment default time zone', async () => {
    const { id, nextFireAt } = await createJob(
      h,
      {
        ownerId: h.ownerId,
        name: 'nightly',
        type: 'DUMMY',
        schedule: { type: 'CRON', cronExpression: '0 2 * * *' },
      },
      { defaultTimezone: 'Asia/Ho_Chi_Minh' },
    );
    const job = await h.db.job.findUniqueOrThrow({
      where: { id },
      include: { schedule: true, payload: true },
    });
    expect(job.status).toBe('SCHEDULED');
    expect(job.schedule?.timezone).toBe('Asia/Ho_Chi_Minh');
    // 02:00 in Ho Chi Minh City (UTC+7) is 19:00 UTC.
    expect(nextFireAt?.toISOString()).toMatch(/T19:00:00\.000Z$/);
    expect(job.schedule?.nextFireAt).toEqual(nextFireAt);
    expect(job.payload?.type).toBe('DUMMY');
  });

  it('refuses a bad schedule with the field at fault and writes nothing', async () => {
    const attempt = createJob(h, {
      ownerId: h.ownerId,
      name: 'bad',
      type: 'DUMMY',
      schedule: { type: 'CRON', cronExpression: '61 * * * *', timezone: 'Mars/Base' },
    });
    const err = await attempt.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    const paths = (err as ValidationError).issues.map((i) => i.path).sort();
    expect(paths).toEqual(['schedule.cronExpression', 'schedule.timezone']);
    expect(
      (err as ValidationError).issues.find((i) => i.path === 'schedule.cronExpression')?.message,
    ).toMatch(/position 0.*minute/);
    expect(await h.db.job.count()).toBe(0);
  });

  it('refuses a bad payload with the field path, before anything is written', async () => {
    const err = await createJob(h, {
      ownerId: h.ownerId,
      name: 'bad-http',
      type: 'HTTP',
      schedule: { type: 'INTERVAL', intervalSeconds: 60 },
      payload: { httpUrl: 'not a url', httpMethod: 'FETCH' },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).issues.map((i) => i.path).sort()).toEqual([
      'payload.httpMethod',
      'payload.httpUrl',
    ]);
    expect(await h.db.job.count()).toBe(0);
  });

  it('refuses SCRIPT jobs where the deployment disabled them', async () => {
    await expect(
      createJob(
        h,
        {
          ownerId: h.ownerId,
          name: 's',
          type: 'SCRIPT',
          schedule: { type: 'INTERVAL', intervalSeconds: 60 },
        },
        { scriptEnabled: false },
      ),
    ).rejects.toThrow(/SCRIPT jobs are disabled/);
    expect(await h.db.job.count()).toBe(0);
  });

  it('an interval counts from its creation unless an anchor is given', async () => {
    const before = Date.now();
    const { nextFireAt } = await createJob(h, {
      ownerId: h.ownerId,
      name: 'every-30s',
      type: 'DUMMY',
      schedule: { type: 'INTERVAL', intervalSeconds: 30 },
    });
    expect(nextFireAt!.getTime()).toBeGreaterThan(before);
    expect(nextFireAt!.getTime()).toBeLessThanOrEqual(Date.now() + 30_000);
  });
});

describe('changing a schedule', () => {
  it('bumps the definition version and replaces the planned slots', async () => {
    const anchor = new Date(Math.ceil(Date.now() / 1000) * 1000 + 5000);
    const { id } = await createJob(h, {
      ownerId: h.ownerId,
      name: 'changing',
      type: 'DUMMY',
      schedule: { type: 'INTERVAL', intervalSeconds: 10, anchorAt: anchor },
    });
    await tick();
    const planned = await h.db.jobRun.count({ where: { jobId: id, status: 'QUEUED' } });
    expect(planned).toBeGreaterThan(3);
    const out = await updateSchedule(h, id, { type: 'CRON', cronExpression: '0 0 1 1 *' });
    expect(out?.removed).toHaveLength(planned);
    expect((await h.db.job.findUniqueOrThrow({ where: { id } })).version).toBe(2);
    expect(await h.db.jobRun.count({ where: { jobId: id, status: 'QUEUED' } })).toBe(0);
    expect(out?.nextFireAt?.toISOString()).toMatch(/-01-01T00:00:00\.000Z$/);
  });

  it('refuses a bad change and keeps the old schedule', async () => {
    const { id } = await createJob(h, {
      ownerId: h.ownerId,
      name: 'keep',
      type: 'DUMMY',
      schedule: { type: 'INTERVAL', intervalSeconds: 10 },
    });
    await expect(updateSchedule(h, id, { type: 'INTERVAL', intervalSeconds: 0 })).rejects.toThrow(
      ValidationError,
    );
    expect((await h.db.jobSchedule.findUniqueOrThrow({ where: { jobId: id } })).intervalSeconds).toBe(10);
  });
});

const httpJob = (name: string) =>
  createJob(h, {
    ownerId: h.ownerId,
    name,
    type: 'HTTP',
    schedule: { type: 'CRON', cronExpression: '0 2 * * *' },
    payload: { httpUrl: 'https://example.test/a', httpMethod: 'POST', httpHeaders: { A: '1' } },
    retryPolicy: { maxAttempts: 3, retryOn: ['HTTP_5XX'] },
  });

describe('creating a job with its triggers and alerting', () => {
  it('stores them, and a job the schedule may not fire plans no slot', async () => {
    const { id, nextFireAt } = await createJob(h, {
      ownerId: h.ownerId,
      name: 'manual-only',
      type: 'DUMMY',
      schedule: { type: 'CRON', cronExpression: '0 2 * * *' },
      alertThreshold: 7,
      allowScheduled: false,
      allowWebhook: true,
      notificationSettings: { onSuccess: true },
    });
    expect(nextFireAt).toBeNull();
    const job = await h.db.job.findUniqueOrThrow({ where: { id }, include: { schedule: true } });
    expect(job).toMatchObject({
      status: 'PENDING',
      alertThreshold: 7,
      allowScheduled: false,
      allowManual: true,
      allowWebhook: true,
      notificationSettings: { onSuccess: true },
    });
    expect(job.schedule?.nextFireAt).toBeNull();
  });
});

describe('updating a job', () => {
  it('changes job, payload, retry policy and schedule with one version bump, and re-plans', async () => {
    const anchor = new Date(Math.ceil(Date.now() / 1000) * 1000 + 5000);
    const { id } = await createJob(h, {
      ownerId: h.ownerId,
      name: 'every-10s',
      type: 'HTTP',
      schedule: { type: 'INTERVAL', intervalSeconds: 10, anchorAt: anchor },
      payload: { httpUrl: 'https://example.test/a' },
    });
    await tick();
    const planned = await h.db.jobRun.count({ where: { jobId: id, status: 'QUEUED' } });
    expect(planned).toBeGreaterThan(1);

    const out = await updateJob(h, id, {
      name: 'yearly',
      priority: 'HIGH',
      schedule: { type: 'CRON', cronExpression: '0 0 1 1 *' },
      payload: { httpUrl: 'https://example.test/b', httpMethod: 'PUT' },
      retryPolicy: { maxAttempts: 2 },
      notificationSettings: null,
    });
    expect(out?.replan?.removed).toHaveLength(planned);
    expect(out?.job).toMatchObject({
      name: 'yearly',
      priority: 'HIGH',
      version: 2,
      payload: { httpUrl: 'https://example.test/b', httpMethod: 'PUT', httpFollowRedirects: true },
      retryPolicy: {
        maxAttempts: 2,
        backoffStrategy: 'FIXED',
        backoffSeconds: 60,
        retryOn: [],
        jitter: true,
      },
      schedule: { scheduleType: 'CRON', cronExpression: '0 0 1 1 *' },
    });
    expect(out?.job.schedule?.nextFireAt?.toISOString()).toMatch(/-01-01T00:00:00\.000Z$/);
    const stored = await h.db.jobSchedule.findUniqueOrThrow({ where: { jobId: id } });
    expect(stored.nextFireAt).toEqual(out?.job.schedule?.nextFireAt);
    expect(await h.db.jobRun.count({ where: { jobId: id, status: 'QUEUED' } })).toBe(0);
    for (const key of out?.replan?.removed ?? [])
      expect(await h.queues.get('HTTP')?.getJob(key)).toBeUndefined();
  });

  it('replaces the payload whole: fields left out are cleared', async () => {
    const { id } = await httpJob('replace-payload');
    const out = await updateJob(h, id, { payload: { httpUrl: 'https://example.test/c' } });
    expect(out?.job.payload).toMatchObject({
      httpUrl: 'https://example.test/c',
      httpMethod: 'GET',
      httpHeaders: null,
    });
    expect(out?.replan).toBeNull();
    expect(await h.db.jobPayload.count({ where: { jobId: id } })).toBe(1);
  });

  it('removes the retry policy with null', async () => {
    const { id } = await httpJob('no-retry');
    await updateJob(h, id, { retryPolicy: null });
    expect(await h.db.retryPolicy.count({ where: { jobId: id } })).toBe(0);
  });

  it('refuses a bad change with the field path of every issue and writes nothing', async () => {
    const { id } = await httpJob('kept');
    const err = await updateJob(h, id, {
      name: 'renamed',
      payload: { httpUrl: 'not a url' },
      schedule: { type: 'CRON', cronExpression: '0 2 * *' },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).issues.map((i) => i.path)).toEqual([
      'schedule.cronExpression',
      'payload.httpUrl',
    ]);
    expect(await h.db.job.findUniqueOrThrow({ where: { id } })).toMatchObject({ name: 'kept', version: 1 });
  });

  it('refuses a change against a stale version, and rolls back when the caller’s step fails', async () => {
    const { id } = await httpJob('optimistic');
    await updateJob(h, id, { priority: 'LOW' }, { expectedVersion: 1 });
    const stale = await updateJob(h, id, { priority: 'HIGH' }, { expectedVersion: 1 }).catch(
      (e: unknown) => e,
    );
    expect(stale).toBeInstanceOf(StaleVersionError);
    expect(stale).toMatchObject({ expectedVersion: 1, currentVersion: 2 });
    await expect(
      updateJob(
        h,
        id,
        { priority: 'HIGH' },
        {
          withinTransaction: async () => {
            throw new Error('audit failed');
          },
        },
      ),
    ).rejects.toThrow('audit failed');
    expect(await h.db.job.findUniqueOrThrow({ where: { id } })).toMatchObject({
      priority: 'LOW',
      version: 2,
    });
  });

  it('brings an ended job back with a new schedule, and stops planning when scheduled triggers are off', async () => {
    const { id } = await httpJob('revived');
    await h.db.job.update({ where: { id }, data: { status: 'SUCCEEDED' } });
    const revived = await updateJob(h, id, { schedule: { type: 'CRON', cronExpression: '0 3 * * *' } });
    expect(revived?.job.status).toBe('SCHEDULED');
    expect(revived?.job.schedule?.nextFireAt).not.toBeNull();
    const off = await updateJob(h, id, { allowScheduled: false });
    expect(off?.replan?.nextFireAt).toBeNull();
    expect(off?.job.status).toBe('PENDING');
    expect((await h.db.jobSchedule.findUniqueOrThrow({ where: { jobId: id } })).nextFireAt).toBeNull();
  });

  it('answers null for a job that does not exist', async () => {
    expect(await updateJob(h, '01ARZ3NDEKTSV4RRFFQ69G5FAV', { name: 'x' })).toBeNull();
  });
});

describe('a one-shot in the past', () => {
  /** The clock of these tests: a fixed now, so the threshold's edge is exact. */
  const now = new Date('2030-06-01T12:00:00.000Z');
  const clock = () => now;
  const at = (offsetMs: number) => new Date(now.getTime() + offsetMs);
  const once = (name: string, runAt: Date, schedule: { misfireThresholdSeconds?: number } = {}) =>
    createJob(
      h,
      { ownerId: h.ownerId, name, type: 'DUMMY', schedule: { type: 'ONCE', runAt, ...schedule } },
      { clock },
    );
  const refusal = async (attempt: Promise<unknown>) => {
    const err = await attempt.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    return (err as ValidationError).issues;
  };

  it('is refused on creation, naming schedule.runAt and the way to run it now; nothing is written', async () => {
    const issues = await refusal(once('long-ago', new Date('2020-01-01T00:00:00Z')));
    expect(issues.map((i) => i.path)).toEqual(['schedule.runAt']);
    expect(issues[0]?.message).toMatch(
      /^is 2020-01-01T00:00:00\.000Z, more than the misfire threshold \(60 s\)/,
    );
    expect(issues[0]?.message).toMatch(/To run the job now, trigger it/);
    expect(await h.db.job.count()).toBe(0);
  });

  it('is accepted up to the misfire threshold before now: the schedule’s own, else the deployment’s', async () => {
    expect((await once('at-the-edge', at(-60_000))).nextFireAt).toEqual(at(-60_000));
    expect((await refusal(once('past-the-edge', at(-60_001)))).map((i) => i.path)).toEqual([
      'schedule.runAt',
    ]);
    await once('own-threshold', at(-600_000), { misfireThresholdSeconds: 600 });
    expect(await refusal(once('own-threshold-0', at(-1), { misfireThresholdSeconds: 0 }))).toHaveLength(1);
    const deployment = (runAt: Date) =>
      createJob(
        h,
        {
          ownerId: h.ownerId,
          name: `deployment-${runAt.getTime()}`,
          type: 'DUMMY',
          schedule: { type: 'ONCE', runAt },
        },
        { clock, misfireThresholdSeconds: 3600 },
      );
    await deployment(at(-3_600_000));
    await expect(deployment(at(-3_600_001))).rejects.toThrow(ValidationError);
  });

  it('is reported with the other issues of the definition in one answer', async () => {
    const issues = await refusal(
      createJob(
        h,
        {
          ownerId: h.ownerId,
          name: 'both',
          type: 'HTTP',
          schedule: { type: 'ONCE', runAt: new Date('2020-01-01T00:00:00Z') },
          payload: { httpUrl: 'not a url' },
        },
        { clock },
      ),
    );
    expect(issues.map((i) => i.path).sort()).toEqual(['payload.httpUrl', 'schedule.runAt']);
  });

  it('a job whose one-shot has fired can still be changed with its schedule as is; a new time in the past is refused', async () => {
    const runAt = at(1000);
    const { id } = await once('fired', runAt);
    await h.db.job.update({ where: { id }, data: { status: 'SUCCEEDED' } });
    const later = () => at(3_600_000);

    const renamed = await updateJob(h, id, { name: 'fired-renamed' }, { clock: later });
    expect(renamed?.job).toMatchObject({ name: 'fired-renamed', version: 2 });
    // A whole definition sent back (PUT) holds the schedule as it is.
    const same = await updateJob(
      h,
      id,
      { name: 'fired-again', schedule: { type: 'ONCE', runAt, misfireThresholdSeconds: 30 } },
      { clock: later },
    );
    expect(same?.job).toMatchObject({ name: 'fired-again', version: 3, status: 'SUCCEEDED' });
    // Kept, the old time is not planned again: the one-shot has had its turn.
    expect(same?.job.schedule?.nextFireAt).toBeNull();

    const moved = await refusal(
      updateJob(h, id, { schedule: { type: 'ONCE', runAt: at(2000) } }, { clock: later }),
    );
    expect(moved.map((i) => i.path)).toEqual(['schedule.runAt']);
    await expect(updateSchedule(h, id, { type: 'ONCE', runAt: at(2000) }, { clock: later })).rejects.toThrow(
      /schedule\.runAt .*To run the job now, trigger it/,
    );
    expect(await h.db.job.findUniqueOrThrow({ where: { id } })).toMatchObject({ version: 3 });

    const ahead = await updateJob(
      h,
      id,
      { schedule: { type: 'ONCE', runAt: at(7_200_000) } },
      { clock: later },
    );
    expect(ahead?.job.schedule?.runAt).toEqual(at(7_200_000));
  });

  it('an edit never plans a kept one-shot whose time is long past; one still waiting to be recorded stays planned', async () => {
    const runAt = at(1000);
    const later = () => at(3_600_000);
    const manualOnly = await createJob(
      h,
      {
        ownerId: h.ownerId,
        name: 'manual-only',
        type: 'DUMMY',
        allowScheduled: false,
        schedule: { type: 'ONCE', runAt },
      },
      { clock },
    );
    const allowed = await updateJob(
      h,
      manualOnly.id,
      { allowScheduled: true, schedule: { type: 'ONCE', runAt } },
      { clock: later },
    );
    expect(allowed?.job).toMatchObject({ status: 'PENDING', allowScheduled: true });
    expect(allowed?.job.schedule?.nextFireAt).toBeNull();

    // Planned, its time passed while no scheduler recorded it (the gate's misfire policy decides).
    const waiting = await once('waiting', runAt);
    const renamed = await updateJob(
      h,
      waiting.id,
      { name: 'waiting-renamed', schedule: { type: 'ONCE', runAt } },
      { clock: later },
    );
    expect(renamed?.job).toMatchObject({ status: 'SCHEDULED' });
    expect(renamed?.job.schedule?.nextFireAt).toEqual(runAt);
  });

  it('a job that was not ONCE is checked when it becomes one', async () => {
    const { id } = await httpJob('cron-to-once');
    const issues = await refusal(
      updateJob(h, id, { schedule: { type: 'ONCE', runAt: new Date('2020-01-01T00:00:00Z') } }),
    );
    expect(issues.map((i) => i.path)).toEqual(['schedule.runAt']);
  });
});

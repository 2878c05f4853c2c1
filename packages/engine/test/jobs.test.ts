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

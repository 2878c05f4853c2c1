import { ValidationError } from '@chronos/core';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createJob, createScheduler, updateSchedule } from '../src/index.ts';
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

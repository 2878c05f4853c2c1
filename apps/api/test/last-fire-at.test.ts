import { createScheduler } from '@chronos/engine';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dummyJob } from './jobs-fixtures.ts';
import { startTestApi, type TestApi } from './harness.ts';

let t: TestApi;
let token: string;

beforeAll(async () => {
  t = await startTestApi('last-fire-at');
  token = (await t.user(['USER'])).token;
});

afterAll(async () => {
  await t?.stop();
});

/** The database's clock, the one the scheduler plans by. */
async function dbNow(): Promise<Date> {
  const [row] = await t.db.$queryRaw<{ now: Date }[]>`SELECT now() AS now`;
  return row?.now as Date;
}

describe('lastFireAt', () => {
  it('is never in the future, though a tick records every slot inside its horizon ahead of time', async () => {
    const created = await t.call('post', '/jobs', {
      token,
      body: dummyJob('every-5s', {
        schedule: {
          type: 'INTERVAL',
          intervalSeconds: 5,
        },
      }),
    });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    // The scheduler was away for ten seconds (well inside the misfire threshold): two slots are due.
    await t.db
      .$executeRaw`UPDATE job_schedules SET next_fire_at = now() - interval '10 seconds' WHERE job_id = ${id}`;
    const scheduler = createScheduler({
      db: t.db,
      queues: t.deps.queues,
      redis: t.deps.redis,
      prefix: t.prefix,
      log: pino({ level: 'silent' }),
      instanceId: 'last-fire-at',
      horizonSeconds: 60,
    });
    await scheduler.tick();

    // The engine's planning state runs ahead of the clock …
    const schedule = await t.db.jobSchedule.findUniqueOrThrow({ where: { jobId: id } });
    const before = await dbNow();
    expect(schedule.lastFireAt?.getTime()).toBeGreaterThan(before.getTime());
    // … what the API shows is the latest slot whose time has come.
    const [latest] = await t.db.$queryRaw<{ at: Date | null }[]>`
      SELECT max(scheduled_time) AS at FROM job_runs
       WHERE job_id = ${id} AND trigger = 'SCHEDULED' AND scheduled_time <= now()`;
    expect(latest?.at).toBeInstanceOf(Date);
    const one = await t.call('get', `/jobs/${id}`, { token });
    const list = await t.call('get', '/jobs', { token });
    const after = await dbNow();
    const listed = (list.body.items as { id: string; lastFireAt: string | null }[]).find((j) => j.id === id);
    for (const shown of [one.body.lastFireAt as string, listed?.lastFireAt]) {
      expect(shown).toEqual(expect.any(String));
      expect(new Date(shown as string).getTime()).toBeLessThanOrEqual(after.getTime());
      expect(new Date(shown as string).getTime()).toBeGreaterThanOrEqual((latest?.at as Date).getTime());
    }
  });
});

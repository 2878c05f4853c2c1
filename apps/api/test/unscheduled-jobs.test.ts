// A job defined without `schedule` runs only when triggered: no fire time, no schedule row; a PUT
// or PATCH can add a schedule later (it is then planned) and remove it again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from './harness.ts';

let t: TestApi;
let alice: { id: string; token: string };

beforeAll(async () => {
  t = await startTestApi('unscheduled-jobs');
  [alice] = await Promise.all([t.user(['USER'])]);
});

afterAll(async () => {
  await t?.stop();
});

const onDemand = (name: string) => ({
  name,
  type: 'DUMMY',
  payload: { metadata: { sleepMs: 0 } },
  triggers: { manual: true, webhook: true },
});

async function create(body: unknown) {
  const res = await t.call('post', '/jobs', { token: alice.token, body });
  expect(res.status, res.text).toBe(201);
  return res.body;
}

describe('a job without a schedule', () => {
  it('is created (201) with no schedule and no fire time, waiting for triggers', async () => {
    const job = await create(onDemand('on-demand'));
    expect(job).toMatchObject({ schedule: null, nextFireAt: null, lastFireAt: null, status: 'PENDING' });
    expect(await t.db.jobSchedule.count({ where: { jobId: job.id } })).toBe(0);
    const preview = await t.call('get', `/jobs/${job.id}/schedule/preview`, { token: alice.token });
    expect(preview.status, preview.text).toBe(200);
    expect(preview.body).toEqual({ fireTimes: [] });
    // `schedule: null` says the same.
    const explicit = await create({ ...onDemand('on-demand-null'), schedule: null });
    expect(explicit).toMatchObject({ schedule: null, nextFireAt: null, status: 'PENDING' });
    // Lists show it, sorted by next fire time (none last) and filtered by one.
    for (const sort of ['nextFireAt', '-nextFireAt']) {
      const list = await t.call('get', `/jobs?sort=${sort}`, { token: alice.token });
      expect(list.status, list.text).toBe(200);
      expect(list.body.items.map((j: { id: string }) => j.id)).toEqual(expect.arrayContaining([job.id]));
    }
    const due = await t.call('get', `/jobs?nextRunFrom=2000-01-01T00:00:00Z`, { token: alice.token });
    expect(due.status, due.text).toBe(200);
    expect(due.body.items.map((j: { id: string }) => j.id)).not.toContain(job.id);
  });

  it('runs when triggered: POST /jobs/:id/trigger queues a MANUAL run', async () => {
    const job = await create(onDemand('triggered'));
    const res = await t.call('post', `/jobs/${job.id}/trigger`, {
      token: alice.token,
      body: { parameters: { orderId: 7 } },
    });
    expect(res.status, res.text).toBe(202);
    const [run] = await t.db.jobRun.findMany({ where: { jobId: job.id } });
    expect(run).toMatchObject({ id: res.body.runId, trigger: 'MANUAL', status: 'QUEUED' });
    const bull = await t.deps.queues.get('DUMMY')?.getJob(run!.idempotencyKey);
    expect(bull?.data).toMatchObject({ runId: res.body.runId, jobId: job.id });
  });

  it('pauses and resumes; a backfill is a 400 (no slots to take)', async () => {
    const job = await create(onDemand('paused'));
    const pause = await t.call('post', `/jobs/${job.id}/pause`, { token: alice.token });
    expect(pause.status, pause.text).toBe(200);
    expect(pause.body).toMatchObject({ status: 'PAUSED', nextFireAt: null });
    const resume = await t.call('post', `/jobs/${job.id}/resume`, { token: alice.token });
    expect(resume.status, resume.text).toBe(200);
    expect(resume.body).toMatchObject({ status: 'PENDING', nextFireAt: null });
    const backfill = await t.call('post', `/jobs/${job.id}/backfill`, {
      token: alice.token,
      body: { from: '2026-01-01T00:00:00Z', to: '2026-01-02T00:00:00Z' },
    });
    expect(backfill.status, backfill.text).toBe(400);
    expect(backfill.body.errors.map((e: { path: string }) => e.path)).toEqual(['schedule']);
  });

  it('gets a fire time when a PUT adds a schedule, and loses it when a PATCH removes it', async () => {
    const job = await create(onDemand('scheduled-later'));
    const put = await t.call('put', `/jobs/${job.id}`, {
      token: alice.token,
      body: { ...onDemand('scheduled-later'), schedule: { type: 'INTERVAL', intervalSeconds: 300 } },
    });
    expect(put.status, put.text).toBe(200);
    expect(put.body).toMatchObject({ status: 'SCHEDULED', version: 2, schedule: { type: 'INTERVAL' } });
    expect(put.body.nextFireAt).toEqual(expect.any(String));
    const row = await t.db.jobSchedule.findUniqueOrThrow({ where: { jobId: job.id } });
    expect(row.nextFireAt?.toISOString()).toBe(put.body.nextFireAt);

    const removed = await t.call('patch', `/jobs/${job.id}`, {
      token: alice.token,
      body: { schedule: null },
    });
    expect(removed.status, removed.text).toBe(200);
    expect(removed.body).toMatchObject({ schedule: null, nextFireAt: null, status: 'PENDING', version: 3 });
    expect(await t.db.jobSchedule.count({ where: { jobId: job.id } })).toBe(0);

    const patched = await t.call('patch', `/jobs/${job.id}`, {
      token: alice.token,
      body: { schedule: { type: 'CRON', cronExpression: '0 2 * * *' } },
    });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.body).toMatchObject({ status: 'SCHEDULED', schedule: { type: 'CRON' } });
    expect(patched.body.nextFireAt).toMatch(/T02:00:00\.000Z$/);

    // A PUT without a schedule replaces the definition whole: the job runs only when triggered again.
    const putWithout = await t.call('put', `/jobs/${job.id}`, {
      token: alice.token,
      body: onDemand('scheduled-later'),
    });
    expect(putWithout.status, putWithout.text).toBe(200);
    expect(putWithout.body).toMatchObject({ schedule: null, nextFireAt: null, status: 'PENDING' });
  });

  it('a PATCH of some schedule fields on a job without one needs schedule.type', async () => {
    const job = await create(onDemand('partial'));
    const res = await t.call('patch', `/jobs/${job.id}`, {
      token: alice.token,
      body: { schedule: { cronExpression: '0 2 * * *' } },
    });
    expect(res.status, res.text).toBe(400);
    expect(res.body.errors.map((e: { path: string }) => e.path)).toEqual(['schedule.type']);
  });
});

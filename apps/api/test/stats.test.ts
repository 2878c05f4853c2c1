import { newId } from '@chronos/core';
import type { JobType, RunStatus } from '@chronos/db';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from './harness.ts';
import { customRole, expectFieldErrors, expectNoSecrets, expectPageCapped } from './admin-helpers.ts';

let t: TestApi;
let admin: string;
type User = Awaited<ReturnType<TestApi['user']>>;
let alice: User;
let bob: User;
const jobs = { aliceHttp: newId(), aliceDummy: newId(), bobHttp: newId() };

const D1 = '2026-03-01';
const D2 = '2026-03-02';

async function job(id: string, ownerId: string, type: JobType) {
  await t.db.job.create({ data: { id, ownerId, name: `job-${id}`, type } });
}

/** A finished run of `jobId` whose slot is at 10:00 UTC on `day`, lasting `ms`. */
function run(jobId: string, day: string, status: RunStatus, ms: number | null) {
  const slot = new Date(`${day}T10:00:00Z`);
  const finished = ms !== null;
  return {
    id: newId(),
    jobId,
    idempotencyKey: `${jobId}-${newId()}`,
    status,
    scheduledTime: slot,
    startTime: slot,
    endTime: finished ? new Date(slot.getTime() + ms) : null,
    durationMs: ms,
  };
}

beforeAll(async () => {
  t = await startTestApi('stats');
  admin = await t.adminToken();
  [alice, bob] = [await t.user(['USER']), await t.user(['USER'])];
  await job(jobs.aliceHttp, alice.id, 'HTTP');
  await job(jobs.aliceDummy, alice.id, 'DUMMY');
  await job(jobs.bobHttp, bob.id, 'HTTP');
  await t.db.jobRun.createMany({
    data: [
      run(jobs.aliceHttp, D1, 'SUCCESS', 100),
      run(jobs.aliceHttp, D1, 'SUCCESS', 300),
      run(jobs.aliceHttp, D1, 'FAILURE', 50),
      run(jobs.aliceHttp, D2, 'SUCCESS', 200),
      run(jobs.aliceHttp, D2, 'RUNNING', null),
      run(jobs.aliceDummy, D2, 'TIMEOUT', 1000),
      run(jobs.bobHttp, D1, 'SUCCESS', 500),
    ],
  });
});

afterAll(async () => {
  await t?.stop();
});

describe('GET /stats/jobs', () => {
  it('summarises each job: finished runs, average duration, last run', async () => {
    const res = await t.call('get', `/stats/jobs?type=HTTP&ownerId=${alice.id}`, { token: admin });
    expect(res.status, res.text).toBe(200);
    expect(res.body.items).toEqual([
      expect.objectContaining({
        id: jobs.aliceHttp,
        type: 'HTTP',
        status: 'PENDING',
        ownerId: alice.id,
        ownerEmail: alice.email,
        totalRuns: 4,
        avgDurationMs: 162.5,
        lastRunTime: `${D2}T10:00:00.200Z`,
        nextFireAt: null,
      }),
    ]);
    expectNoSecrets(res);
  });

  it('shows a non-admin only its own jobs, whatever ownerId it asks for', async () => {
    const own = await t.call('get', '/stats/jobs', { token: alice.token });
    expect(own.body.items.map((j: { id: string }) => j.id).sort()).toEqual(
      [jobs.aliceHttp, jobs.aliceDummy].sort(),
    );
    const asked = await t.call('get', `/stats/jobs?ownerId=${bob.id}`, { token: alice.token });
    expect(asked.body.items.map((j: { ownerId: string }) => j.ownerId)).toEqual([alice.id, alice.id]);
    const all = await t.call('get', '/stats/jobs', { token: admin });
    expect(all.body.items.map((j: { id: string }) => j.id)).toContain(jobs.bobHttp);
  });

  it('caps the page at 200', async () => {
    const owner = await t.user(['USER']);
    await t.db.job.createMany({
      data: Array.from({ length: 205 }, (_, i) => ({
        id: newId(),
        ownerId: owner.id,
        name: `bulk-${i}`,
        type: 'DUMMY' as const,
      })),
    });
    await expectPageCapped(t, owner.token, '/stats/jobs');
  });

  it('answers 400 for a bad filter, 401 anonymously, 403 without job:read', async () => {
    expectFieldErrors(await t.call('get', '/stats/jobs?type=FTP&status=DONE', { token: admin }), [
      'type',
      'status',
    ]);
    expect((await t.call('get', '/stats/jobs')).status).toBe(401);
    const auditor = await t.user([await customRole(t, ['audit:read'])]);
    expect((await t.call('get', '/stats/jobs', { token: auditor.token })).status).toBe(403);
  });
});

/** An expected execution_stats row; `ms` is [min, avg, max] duration. */
const row = (date: string, jobType: JobType, outcome: RunStatus, executionCount: number, ms: number[]) => ({
  date,
  jobType,
  outcome,
  executionCount,
  minDurationMs: ms[0],
  avgDurationMs: ms[1],
  maxDurationMs: ms[2],
});

describe('GET /stats/executions', () => {
  const stats = (query: string, token = admin) => t.call('get', `/stats/executions?${query}`, { token });

  it('gives administrators every job’s finished runs per day, type and outcome', async () => {
    const res = await stats(`from=${D1}&to=${D2}`);
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({
      from: D1,
      to: D2,
      items: [
        row(D1, 'HTTP', 'SUCCESS', 3, [100, 300, 500]),
        row(D1, 'HTTP', 'FAILURE', 1, [50, 50, 50]),
        row(D2, 'HTTP', 'SUCCESS', 1, [200, 200, 200]),
        row(D2, 'DUMMY', 'TIMEOUT', 1, [1000, 1000, 1000]),
      ],
    });
  });

  it('gives a non-admin the same figures over its own jobs only', async () => {
    const res = await stats(`from=${D1}&to=${D2}`, alice.token);
    expect(res.status, res.text).toBe(200);
    expect(res.body.items).toEqual([
      row(D1, 'HTTP', 'SUCCESS', 2, [100, 200, 300]),
      row(D1, 'HTTP', 'FAILURE', 1, [50, 50, 50]),
      row(D2, 'HTTP', 'SUCCESS', 1, [200, 200, 200]),
      row(D2, 'DUMMY', 'TIMEOUT', 1, [1000, 1000, 1000]),
    ]);
    const bobs = await stats(`from=${D1}&to=${D2}`, bob.token);
    expect(bobs.body.items).toEqual([
      expect.objectContaining({ date: D1, executionCount: 1, avgDurationMs: 500 }),
    ]);
  });

  it('narrows to one day and one type, for admins and owners alike', async () => {
    for (const token of [admin, alice.token]) {
      const day = await stats(`from=${D2}&to=${D2}&jobType=DUMMY`, token);
      expect(day.body.items).toEqual([
        expect.objectContaining({ date: D2, jobType: 'DUMMY', outcome: 'TIMEOUT' }),
      ]);
    }
  });

  it('defaults to the last 30 days up to today', async () => {
    const today = () => new Date().toISOString().slice(0, 10);
    const before = today();
    const res = await stats('');
    expect(res.status).toBe(200);
    expect([before, today()]).toContain(res.body.to);
    expect((Date.parse(res.body.to) - Date.parse(res.body.from)) / 86_400_000).toBe(29);
  });

  it('answers 400 for a bad date, an inverted range and a range over 366 days', async () => {
    expectFieldErrors(await stats('from=2026-13-01'), ['from']);
    expectFieldErrors(await stats('jobType=FTP'), ['jobType']);
    expectFieldErrors(await stats(`from=${D2}&to=${D1}`), ['to']);
    expectFieldErrors(await stats('from=2025-01-01&to=2026-01-02'), ['from']);
    expect((await stats('from=2025-01-01&to=2026-01-01')).status).toBe(200);
  });

  it('answers 401 anonymously and 403 without execution:read', async () => {
    expect((await t.call('get', '/stats/executions')).status).toBe(401);
    const auditor = await t.user([await customRole(t, ['audit:read', 'job:read'])]);
    expect((await stats('', auditor.token)).status).toBe(403);
  });
});

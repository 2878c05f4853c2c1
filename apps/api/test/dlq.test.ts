import { newId } from '@chronos/core';
import { bullJobId } from '@chronos/engine';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_REPLAY_ALL } from '../src/routes/dlq.ts';
import { startTestApi, type TestApi } from './harness.ts';
import { ownedJob } from './owned-job.ts';
import { expectRefusals, makeDlqEvent, userWithoutPermissions } from './runs-fixtures.ts';

type User = Awaited<ReturnType<TestApi['user']>>;

let t: TestApi;
/** Owns jobs and may manage the DLQ (OPERATOR: non-admin, so the ownership rule applies). */
let olga: User;
/** Another operator. */
let oscar: User;
/** USER: reads, but lacks dlq:manage. */
let ursula: User;
let nobody: User;
let admin: string;
let olgaJob: string;

beforeAll(async () => {
  t = await startTestApi('dlq');
  [olga, oscar, ursula, nobody] = await Promise.all([
    t.user(['OPERATOR']),
    t.user(['OPERATOR']),
    t.user(['USER']),
    userWithoutPermissions(t),
  ]);
  admin = await t.adminToken();
  olgaJob = await ownedJob(t, olga.id);
});

afterAll(async () => {
  await t?.stop();
});

/** 401, 403 for `forbidden`, 404 for oscar and for an unknown entry id in place of `id` (olga's). */
const refusals = (method: string, path: string, id: string, forbidden: string, body?: unknown) =>
  expectRefusals(t, method, path, id, { owner: olga.token, other: oscar.token, forbidden }, body);

describe('GET /dlq', () => {
  let job: string;
  let ids: string[];

  beforeAll(async () => {
    job = await ownedJob(t, olga.id);
    const a = await makeDlqEvent(t, job, { failureReason: 'Timeout after 30 s' });
    const b = await makeDlqEvent(t, job, { failureReason: 'HTTP 503 from upstream', status: 'RESOLVED' });
    const c = await makeDlqEvent(t, job, { failureReason: 'connection TIMEOUT' });
    ids = [a.id, b.id, c.id];
    await makeDlqEvent(t, await ownedJob(t, oscar.id), { failureReason: 'Timeout of oscar' });
  });

  const list = async (q: string, token = olga.token) => {
    const res = await t.call('get', `/dlq?jobId=${job}&${q}`, { token });
    expect(res.status).toBe(200);
    return res.body.items.map((e: { id: string }) => e.id);
  };

  it('lists the caller’s entries newest first, with the job’s name', async () => {
    const res = await t.call('get', `/dlq?jobId=${job}`, { token: olga.token });
    expect(res.body.items.map((e: { id: string }) => e.id)).toEqual([...ids].reverse());
    const jobRow = await t.db.job.findUniqueOrThrow({ where: { id: job } });
    expect(res.body.items[0]).toMatchObject({
      jobId: job,
      jobName: jobRow.name,
      failureReason: 'connection TIMEOUT',
      status: 'PENDING',
      replayCount: 0,
      resolvedAt: null,
      runId: expect.any(String),
    });
  });

  it('filters by status, job and reason (contains, any case)', async () => {
    expect(await list('status=RESOLVED')).toEqual([ids[1]]);
    expect(await list('reason=timeout')).toEqual([ids[2], ids[0]]);
    expect(await list('reason=timeout&status=PENDING')).toEqual([ids[2], ids[0]]);
  });

  it('shows a non-admin only the entries of their own jobs, an admin all', async () => {
    const mine = await t.call('get', '/dlq?reason=timeout', { token: olga.token });
    expect(mine.body.items.map((e: { failureReason: string }) => e.failureReason)).not.toContain(
      'Timeout of oscar',
    );
    expect(await list('', oscar.token)).toEqual([]);
    const all = await t.call('get', '/dlq?reason=timeout', { token: admin });
    expect(all.body.items.map((e: { failureReason: string }) => e.failureReason)).toContain(
      'Timeout of oscar',
    );
  });

  it('pages with the cursor and caps the page size at 200', async () => {
    const many = await ownedJob(t, olga.id);
    await t.db.dlqEvent.createMany({
      data: Array.from({ length: 203 }, () => ({ id: newId(), jobId: many, failureReason: 'bulk' })),
    });
    const first = await t.call('get', `/dlq?jobId=${many}&limit=999`, { token: olga.token });
    expect(first.body.items).toHaveLength(200);
    const second = await t.call('get', `/dlq?jobId=${many}&cursor=${first.body.nextCursor}`, {
      token: olga.token,
    });
    expect(second.body.items).toHaveLength(3);
    expect(second.body.nextCursor).toBeNull();
  });

  it('answers 400 naming the field, 401 without a token and 403 without execution:read', async () => {
    const bad = await t.call('get', '/dlq?status=DONE', { token: olga.token });
    expect(bad.status).toBe(400);
    expect(bad.body.errors.map((e: { path: string }) => e.path)).toEqual(['status']);
    expect((await t.call('get', '/dlq')).status).toBe(401);
    expect((await t.call('get', '/dlq', { token: nobody.token })).status).toBe(403);
  });
});

describe('GET /dlq/:id', () => {
  it('answers the entry with the runs that replayed it', async () => {
    const ev = await makeDlqEvent(t, olgaJob);
    const replay = await t.call('post', `/dlq/${ev.id}/replay`, { token: olga.token });
    const res = await t.call('get', `/dlq/${ev.id}`, { token: olga.token });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: ev.id, status: 'PENDING', replayCount: 1 });
    expect(res.body.replays).toEqual([
      { id: replay.body.runId, status: 'QUEUED', createdAt: expect.stringMatching(/Z$/) },
    ]);
  });

  it('is refused without a token, without execution:read, and for another owner (404)', async () => {
    const ev = await makeDlqEvent(t, olgaJob);
    await refusals('get', `/dlq/${ev.id}`, ev.id, nobody.token);
  });
});

describe('POST /dlq/:id/replay', () => {
  it('queues a REPLAY run linked to the entry, which stays PENDING', async () => {
    const ev = await makeDlqEvent(t, olgaJob);
    const res = await t.call('post', `/dlq/${ev.id}/replay`, { token: olga.token, body: { jobId: 'x' } });
    expect(res.status).toBe(202);
    const run = await t.db.jobRun.findUniqueOrThrow({ where: { id: res.body.runId } });
    expect(run).toMatchObject({ jobId: olgaJob, trigger: 'REPLAY', status: 'QUEUED', dlqEventId: ev.id });
    expect(await t.deps.queues.get('DUMMY')!.getJob(bullJobId(run.idempotencyKey))).toBeDefined();
    const after = await t.db.dlqEvent.findUniqueOrThrow({ where: { id: ev.id } });
    expect(after).toMatchObject({ status: 'PENDING', replayCount: 1 });
    const audit = await t.db.auditEvent.findFirst({ where: { entityType: 'dlq', entityId: ev.id } });
    expect(audit).toMatchObject({ action: 'REPLAYED', userId: olga.id });
  });

  it('answers 409 for an entry that is no longer PENDING', async () => {
    const ev = await makeDlqEvent(t, olgaJob, { status: 'IGNORED' });
    const res = await t.call('post', `/dlq/${ev.id}/replay`, { token: olga.token });
    expect(res.status).toBe(409);
    expect(await t.db.jobRun.count({ where: { dlqEventId: ev.id } })).toBe(0);
  });

  it('answers 409 while the job is paused (it would start nothing), and replay-all passes the entry by', async () => {
    const job = await ownedJob(t, olga.id);
    const ev = await makeDlqEvent(t, job);
    expect((await t.call('post', `/jobs/${job}/pause`, { token: olga.token })).status).toBe(200);
    const res = await t.call('post', `/dlq/${ev.id}/replay`, { token: olga.token });
    expect(res.status).toBe(409);
    expect(res.body.detail).toMatch(/paused; resume it first/);
    const all = await t.call('post', '/dlq/replay-all', { token: olga.token, body: { jobId: job } });
    expect(all.body).toEqual({ replayed: [], count: 0, truncated: false });
    expect(await t.db.jobRun.count({ where: { dlqEventId: ev.id } })).toBe(0);
  });

  it('is refused without a token, without dlq:manage (USER), and for another owner (404)', async () => {
    const ev = await makeDlqEvent(t, olgaJob);
    await refusals('post', `/dlq/${ev.id}/replay`, ev.id, ursula.token);
    expect(await t.db.jobRun.count({ where: { dlqEventId: ev.id } })).toBe(0);
  });
});

describe.each([
  ['resolve', 'RESOLVED'],
  ['ignore', 'IGNORED'],
] as const)('POST /dlq/:id/%s', (verb, status) => {
  it(`marks the entry ${status} with the notes and the caller’s e-mail; mass assignment is refused`, async () => {
    const ev = await makeDlqEvent(t, olgaJob);
    const refused = await t.call('post', `/dlq/${ev.id}/${verb}`, {
      token: olga.token,
      body: { notes: 'fixed the upstream', resolvedBy: 'someone@else', status: 'PENDING', replayCount: 9 },
    });
    expect(refused.status, refused.text).toBe(400);
    expect(refused.body.errors.map((e: { path: string }) => e.path).sort()).toEqual([
      'replayCount',
      'resolvedBy',
      'status',
    ]);
    expect(await t.db.dlqEvent.findUniqueOrThrow({ where: { id: ev.id } })).toMatchObject({
      status: 'PENDING',
      resolvedBy: null,
    });
    const res = await t.call('post', `/dlq/${ev.id}/${verb}`, {
      token: olga.token,
      body: { notes: 'fixed the upstream' },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      id: ev.id,
      status,
      resolutionNotes: 'fixed the upstream',
      resolvedBy: olga.email,
      replayCount: 0,
      resolvedAt: expect.stringMatching(/Z$/),
    });
    const audit = await t.db.auditEvent.findFirst({ where: { entityType: 'dlq', entityId: ev.id } });
    expect(audit).toMatchObject({ action: status, userId: olga.id });
  });

  it('accepts no notes, and answers 409 the second time', async () => {
    const ev = await makeDlqEvent(t, olgaJob);
    expect((await t.call('post', `/dlq/${ev.id}/${verb}`, { token: olga.token, body: {} })).status).toBe(200);
    const again = await t.call('post', `/dlq/${ev.id}/${verb}`, { token: olga.token, body: {} });
    expect(again.status).toBe(409);
  });

  it('answers 400 for notes that are not text', async () => {
    const ev = await makeDlqEvent(t, olgaJob);
    const res = await t.call('post', `/dlq/${ev.id}/${verb}`, { token: olga.token, body: { notes: 42 } });
    expect(res.status).toBe(400);
    expect(res.body.errors.map((e: { path: string }) => e.path)).toEqual(['notes']);
  });

  it('is refused without a token, without dlq:manage (USER), and for another owner (404)', async () => {
    const ev = await makeDlqEvent(t, olgaJob);
    await refusals('post', `/dlq/${ev.id}/${verb}`, ev.id, ursula.token, { notes: 'n' });
    expect((await t.db.dlqEvent.findUniqueOrThrow({ where: { id: ev.id } })).status).toBe('PENDING');
  });
});

describe('POST /dlq/replay-all', () => {
  it('replays every matching PENDING entry of the caller’s jobs, oldest first', async () => {
    const job = await ownedJob(t, olga.id);
    const a = await makeDlqEvent(t, job, { failureReason: 'disk full' });
    await makeDlqEvent(t, job, { failureReason: 'disk full', status: 'RESOLVED' });
    const b = await makeDlqEvent(t, job, { failureReason: 'Disk FULL again' });
    await makeDlqEvent(t, job, { failureReason: 'network' });
    const oscars = await makeDlqEvent(t, await ownedJob(t, oscar.id), { failureReason: 'disk full' });

    const res = await t.call('post', '/dlq/replay-all', { token: olga.token, body: { reason: 'disk full' } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ count: 2, truncated: false });
    const runs = await Promise.all(
      res.body.replayed.map((id: string) => t.db.jobRun.findUniqueOrThrow({ where: { id } })),
    );
    expect(runs.map((r) => r.dlqEventId)).toEqual([a.id, b.id]);
    expect(await t.db.jobRun.count({ where: { dlqEventId: oscars.id } })).toBe(0);
  });

  it('skips entries whose replay is still queued or running', async () => {
    const job = await ownedJob(t, olga.id);
    const ev = await makeDlqEvent(t, job);
    expect((await t.call('post', `/dlq/${ev.id}/replay`, { token: olga.token })).status).toBe(202);
    const res = await t.call('post', '/dlq/replay-all', { token: olga.token, body: { jobId: job } });
    expect(res.body).toEqual({ replayed: [], count: 0, truncated: false });
    await t.db.jobRun.updateMany({ where: { dlqEventId: ev.id }, data: { status: 'FAILURE' } });
    const again = await t.call('post', '/dlq/replay-all', { token: olga.token, body: { jobId: job } });
    expect(again.body.count).toBe(1);
  });

  it('limits itself to one job with jobId, and answers an empty result when nothing matches', async () => {
    const job = await ownedJob(t, olga.id);
    const ev = await makeDlqEvent(t, job);
    const res = await t.call('post', '/dlq/replay-all', { token: olga.token, body: { jobId: job } });
    expect(res.body).toMatchObject({ count: 1, truncated: false });
    expect((await t.db.jobRun.findUniqueOrThrow({ where: { id: res.body.replayed[0] } })).dlqEventId).toBe(
      ev.id,
    );
    const none = await t.call('post', '/dlq/replay-all', { token: olga.token, body: { jobId: newId() } });
    expect(none.body).toEqual({ replayed: [], count: 0, truncated: false });
  });

  it(`replays at most ${MAX_REPLAY_ALL} per call and says when more are left`, async () => {
    const job = await ownedJob(t, olga.id);
    await t.db.dlqEvent.createMany({
      data: Array.from({ length: MAX_REPLAY_ALL + 2 }, () => ({
        id: newId(),
        jobId: job,
        failureReason: 'x',
      })),
    });
    const first = await t.call('post', '/dlq/replay-all', {
      token: olga.token,
      body: { jobId: job, limit: 5000 },
    });
    expect(first.body).toMatchObject({ count: MAX_REPLAY_ALL, truncated: true });
    // Entries whose replay is still queued are not replayed twice: the next call takes the rest.
    const rest = await t.call('post', '/dlq/replay-all', { token: olga.token, body: { jobId: job } });
    expect(rest.body).toMatchObject({ count: 2, truncated: false });
    expect(await t.db.dlqEvent.count({ where: { jobId: job, replayCount: 1 } })).toBe(MAX_REPLAY_ALL + 2);
  }, 120_000); // a thousand replays take a while on a busy machine

  it('replays only `limit` entries when asked', async () => {
    const job = await ownedJob(t, olga.id);
    const [a, b] = [await makeDlqEvent(t, job), await makeDlqEvent(t, job), await makeDlqEvent(t, job)];
    const res = await t.call('post', '/dlq/replay-all', {
      token: olga.token,
      body: { jobId: job, limit: 2 },
    });
    expect(res.body).toMatchObject({ count: 2, truncated: true });
    const runs = await t.db.jobRun.findMany({ where: { id: { in: res.body.replayed } } });
    expect(runs.map((r) => r.dlqEventId).sort()).toEqual([a!.id, b!.id].sort());
  });

  it('answers 400 naming the field, 401 without a token and 403 without dlq:manage', async () => {
    const bad = await t.call('post', '/dlq/replay-all', {
      token: olga.token,
      body: { reason: '', limit: 0 },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.errors.map((e: { path: string }) => e.path).sort()).toEqual(['limit', 'reason']);
    expect((await t.call('post', '/dlq/replay-all', { body: {} })).status).toBe(401);
    expect((await t.call('post', '/dlq/replay-all', { token: ursula.token, body: {} })).status).toBe(403);
  });
});

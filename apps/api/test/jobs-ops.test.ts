// Operations on jobs: trigger (idempotent), pause / resume, schedule previews, backfill, occurrences.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withAuditRefused } from './admin-helpers.ts';
import { startTestApi, type TestApi } from './harness.ts';
import { dummyJob } from './jobs-fixtures.ts';

let t: TestApi;
let alice: { id: string; token: string };
let viewer: { id: string; token: string };

beforeAll(async () => {
  t = await startTestApi('jobs-ops');
  [alice, viewer] = await Promise.all([t.user(['USER']), t.user(['VIEWER'])]);
});

afterAll(async () => {
  await t?.stop();
});

async function create(body: unknown): Promise<{ id: string; nextFireAt: string | null }> {
  const res = await t.call('post', '/jobs', { token: alice.token, body });
  expect(res.status, res.text).toBe(201);
  return res.body;
}

const paths = (res: { body: { errors?: { path: string }[] } }) =>
  (res.body.errors ?? []).map((e) => e.path).sort();

describe('POST /jobs/:id/trigger', () => {
  it('queues a MANUAL run; the same Idempotency-Key returns the same run', async () => {
    const job = await create(dummyJob('triggered'));
    const first = await t.call('post', `/jobs/${job.id}/trigger`, {
      token: alice.token,
      headers: { 'idempotency-key': 'order-42' },
      body: { parameters: { orderId: 42 } },
    });
    expect(first.status, first.text).toBe(202);
    expect(first.body).toMatchObject({ status: 'QUEUED', created: true });
    expect(first.headers.get('location')).toBe(`/api/v1/runs/${first.body.runId}`);
    const again = await t.call('post', `/jobs/${job.id}/trigger`, {
      token: alice.token,
      headers: { 'idempotency-key': 'order-42' },
    });
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ runId: first.body.runId, status: 'QUEUED', created: false });

    const rows = await t.db.jobRun.findMany({ where: { jobId: job.id } });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      id: first.body.runId,
      trigger: 'MANUAL',
      status: 'QUEUED',
      definitionVersion: 1,
    });
    expect(rows[0]?.triggerPayload).toEqual({ body: { orderId: 42 } });
    const bull = await t.deps.queues.get('DUMMY')?.getJob(rows[0]?.idempotencyKey ?? '');
    expect(bull?.data).toMatchObject({ runId: first.body.runId, jobId: job.id });
    expect(await t.db.auditEvent.count({ where: { entityId: job.id, action: 'TRIGGERED' } })).toBe(1);
  });

  it('queues a new run per call without a key', async () => {
    const job = await create(dummyJob('twice'));
    const a = await t.call('post', `/jobs/${job.id}/trigger`, { token: alice.token });
    const b = await t.call('post', `/jobs/${job.id}/trigger`, { token: alice.token });
    expect([a.status, b.status]).toEqual([202, 202]);
    expect(a.body.runId).not.toBe(b.body.runId);
  });

  it('answers 409 for a paused job or one without manual triggers, 400 for a bad key, 403 for a VIEWER', async () => {
    const manualOff = await create({ ...dummyJob('no-manual'), triggers: { manual: false } });
    expect((await t.call('post', `/jobs/${manualOff.id}/trigger`, { token: alice.token })).status).toBe(409);
    const paused = await create(dummyJob('paused-trigger'));
    await t.call('post', `/jobs/${paused.id}/pause`, { token: alice.token });
    expect((await t.call('post', `/jobs/${paused.id}/trigger`, { token: alice.token })).status).toBe(409);
    const job = await create(dummyJob('key-checked'));
    const bad = await t.call('post', `/jobs/${job.id}/trigger`, {
      token: alice.token,
      headers: { 'idempotency-key': 'x'.repeat(300) },
    });
    expect(bad.status).toBe(400);
    expect(paths(bad)).toEqual(['Idempotency-Key']);
    expect((await t.call('post', `/jobs/${job.id}/trigger`, { token: viewer.token })).status).toBe(403);
    expect((await t.call('post', `/jobs/${job.id}/trigger`)).status).toBe(401);
    expect(await t.db.jobRun.count({ where: { jobId: { in: [manualOff.id, paused.id, job.id] } } })).toBe(0);
  });
});

describe('pause and resume', () => {
  it('pauses (no next fire) and resumes (planned again) without changing the version', async () => {
    const yearly = { type: 'CRON', cronExpression: '0 0 1 1 *', timezone: 'UTC' };
    const job = await create({ ...dummyJob('pausable'), schedule: yearly });
    expect((await t.call('post', `/jobs/${job.id}/pause`, { token: viewer.token })).status).toBe(403);
    const paused = await t.call('post', `/jobs/${job.id}/pause`, { token: alice.token });
    expect(paused.status).toBe(200);
    expect(paused.body).toMatchObject({ id: job.id, status: 'PAUSED', nextFireAt: null, skippedSlots: 0 });
    const read = await t.call('get', `/jobs/${job.id}`, { token: alice.token });
    expect(read.body).toMatchObject({ status: 'PAUSED', version: 1 });
    expect(read.body.pausedAt).not.toBeNull();

    const resumed = await t.call('post', `/jobs/${job.id}/resume`, {
      token: alice.token,
      body: { policy: 'RUN_ONCE' },
    });
    expect(resumed.status).toBe(200);
    expect(resumed.body).toMatchObject({
      status: 'SCHEDULED',
      missed: 0,
      replayed: 0,
      nextFireAt: job.nextFireAt,
    });
    const bad = await t.call('post', `/jobs/${job.id}/resume`, {
      token: alice.token,
      body: { policy: 'ALL' },
    });
    expect(paths(bad)).toEqual(['policy']);
    const actions = await t.db.auditEvent.findMany({ where: { entityId: job.id }, orderBy: { id: 'asc' } });
    expect(actions.map((a) => a.action)).toEqual(['CREATED', 'PAUSED', 'RESUMED']);
  });

  it('a run triggered before the pause does not start: recorded SKIPPED_PAUSED, off the queue, still skipped after resume', async () => {
    const job = await create(dummyJob('paused-after-trigger'));
    const triggered = await t.call('post', `/jobs/${job.id}/trigger`, { token: alice.token });
    expect(triggered.status).toBe(202);
    const { runId } = triggered.body;
    const queued = await t.db.jobRun.findUniqueOrThrow({ where: { id: runId } });
    const queue = t.deps.queues.get('DUMMY')!;
    expect(await queue.getJob(queued.idempotencyKey)).toBeDefined();

    const paused = await t.call('post', `/jobs/${job.id}/pause`, { token: alice.token });
    expect(paused.body).toMatchObject({ status: 'PAUSED', skippedSlots: 0, skippedRuns: 1 });
    const skipped = await t.call('get', `/runs/${runId}`, { token: alice.token });
    expect(skipped.body).toMatchObject({
      status: 'SKIPPED_PAUSED',
      reason: 'job paused before the run started',
      startTime: null,
    });
    expect(await queue.getJob(queued.idempotencyKey)).toBeUndefined();
    const audit = await t.db.auditEvent.findFirstOrThrow({ where: { entityId: job.id, action: 'PAUSED' } });
    expect(audit.details).toMatchObject({ skippedSlots: 0, skippedRuns: 1 });

    expect((await t.call('post', `/jobs/${job.id}/resume`, { token: alice.token })).status).toBe(200);
    expect((await t.db.jobRun.findUniqueOrThrow({ where: { id: runId } })).status).toBe('SKIPPED_PAUSED');
    expect(await queue.getJob(queued.idempotencyKey)).toBeUndefined();
  });
});

describe('job actions and their audit events', () => {
  it('commits each action with its audit event: when the event cannot be written, the action did not happen', async () => {
    const job = await create(dummyJob('atomic-actions'));
    await withAuditRefused(t, { entityId: job.id }, async () => {
      const pause = await t.call('post', `/jobs/${job.id}/pause`, { token: alice.token });
      expect(pause.status).toBe(500);
      expect((await t.db.job.findUniqueOrThrow({ where: { id: job.id } })).status).toBe('SCHEDULED');
      const trigger = await t.call('post', `/jobs/${job.id}/trigger`, { token: alice.token, body: {} });
      expect(trigger.status).toBe(500);
      expect(await t.db.jobRun.count({ where: { jobId: job.id, trigger: 'MANUAL' } })).toBe(0);
      const del = await t.call('delete', `/jobs/${job.id}`, { token: alice.token });
      expect(del.status).toBe(500);
      expect(await t.db.job.count({ where: { id: job.id } })).toBe(1);
    });
    // With the events allowed, the same calls go through, each with its event.
    expect((await t.call('post', `/jobs/${job.id}/pause`, { token: alice.token })).status).toBe(200);
    expect((await t.call('delete', `/jobs/${job.id}`, { token: alice.token })).status).toBe(204);
    const actions = await t.db.auditEvent.findMany({ where: { entityId: job.id }, orderBy: { id: 'asc' } });
    expect(actions.map((a) => a.action)).toEqual(['CREATED', 'PAUSED', 'DELETED']);
  });
});

describe('schedule previews', () => {
  const berlin = { type: 'CRON', cronExpression: '30 2 * * *', timezone: 'Europe/Berlin' };

  it('previews a saved schedule across a spring-forward day (SHIFT: the skipped 02:30 fires at 03:00)', async () => {
    const job = await create({ ...dummyJob('berlin'), schedule: berlin });
    const res = await t.call('get', `/jobs/${job.id}/schedule/preview?from=2026-03-27T12:00:00Z&count=3`, {
      token: alice.token,
    });
    expect(res.status).toBe(200);
    expect(res.body.fireTimes).toEqual([
      '2026-03-28T01:30:00.000Z',
      '2026-03-29T01:00:00.000Z',
      '2026-03-30T00:30:00.000Z',
    ]);
    const dflt = await t.call('get', `/jobs/${job.id}/schedule/preview`, { token: alice.token });
    expect(dflt.body.fireTimes).toHaveLength(10);
    expect(new Date(dflt.body.fireTimes[0]).getTime()).toBeGreaterThan(Date.now() - 1000);
    for (const q of ['count=0', 'count=101', 'from=tomorrow'])
      expect(
        (await t.call('get', `/jobs/${job.id}/schedule/preview?${q}`, { token: alice.token })).status,
        q,
      ).toBe(400);
  });

  it('tries schedules before saving them, with the DST policies applied', async () => {
    const preview = (body: unknown, token = viewer.token) =>
      t.call('post', '/schedules/preview', { token, body });
    const skip = await preview({
      schedule: { ...berlin, dstGapPolicy: 'SKIP' },
      from: '2026-03-27T12:00:00Z',
      count: 3,
    });
    expect(skip.status, skip.text).toBe(200);
    expect(skip.body.fireTimes).toEqual([
      '2026-03-28T01:30:00.000Z',
      '2026-03-30T00:30:00.000Z',
      '2026-03-31T00:30:00.000Z',
    ]);
    const both = await preview({
      schedule: { ...berlin, dstRepeatPolicy: 'BOTH' },
      from: '2026-10-24T12:00:00Z',
      count: 3,
    });
    expect(both.body.fireTimes).toEqual([
      '2026-10-25T00:30:00.000Z',
      '2026-10-25T01:30:00.000Z',
      '2026-10-26T01:30:00.000Z',
    ]);
    const interval = await preview({
      schedule: { type: 'INTERVAL', intervalSeconds: 90, anchorAt: '2026-01-01T00:00:00Z' },
      from: '2026-01-01T00:00:00Z',
      count: 2,
    });
    expect(interval.body.fireTimes).toEqual(['2026-01-01T00:01:30.000Z', '2026-01-01T00:03:00.000Z']);
    const once = await preview({ schedule: { type: 'ONCE', runAt: '2030-05-01T10:00:00+02:00' } });
    expect(once.body.fireTimes).toEqual(['2030-05-01T08:00:00.000Z']);
  });

  it('refuses a bad schedule with its field path, and needs a sign-in', async () => {
    const bad = await t.call('post', '/schedules/preview', {
      token: alice.token,
      body: { schedule: { type: 'CRON', cronExpression: '* * * *' } },
    });
    expect(bad.status).toBe(400);
    expect(paths(bad)).toEqual(['schedule.cronExpression']);
    const zone = await t.call('post', '/schedules/preview', {
      token: alice.token,
      body: { schedule: { ...berlin, timezone: 'Mars/Olympus' } },
    });
    expect(paths(zone)).toEqual(['schedule.timezone']);
    const count = await t.call('post', '/schedules/preview', {
      token: alice.token,
      body: { schedule: berlin, count: 500 },
    });
    expect(paths(count)).toEqual(['count']);
    expect((await t.call('post', '/schedules/preview', { body: { schedule: berlin } })).status).toBe(401);
  });
});

describe('backfill and occurrences', () => {
  const HOUR = 3_600_000;

  it('queues the slots of a past range once, and the ledger lists them newest first', async () => {
    const job = await create({
      ...dummyJob('hourly'),
      schedule: { type: 'CRON', cronExpression: '0 * * * *', timezone: 'UTC' },
    });
    const hour = Math.floor(Date.now() / HOUR) * HOUR;
    const range = { from: new Date(hour - 4 * HOUR).toISOString(), to: new Date(hour).toISOString() };
    const res = await t.call('post', `/jobs/${job.id}/backfill`, { token: alice.token, body: range });
    expect(res.status, res.text).toBe(202);
    expect(res.body).toEqual({ enqueued: 5, deduplicated: 0, truncated: false });
    const again = await t.call('post', `/jobs/${job.id}/backfill`, { token: alice.token, body: range });
    expect(again.body).toEqual({ enqueued: 0, deduplicated: 5, truncated: false });
    const capped = await t.call('post', `/jobs/${job.id}/backfill`, {
      token: alice.token,
      body: { from: new Date(hour - 10 * HOUR).toISOString(), to: range.from, limit: 2 },
    });
    expect(capped.body).toEqual({ enqueued: 2, deduplicated: 0, truncated: true });

    const ledger = await t.call('get', `/jobs/${job.id}/occurrences?trigger=BACKFILL`, {
      token: alice.token,
    });
    expect(ledger.status).toBe(200);
    const times = ledger.body.items.map((o: { scheduledTime: string }) => o.scheduledTime);
    expect(times.slice(0, 5)).toEqual([0, 1, 2, 3, 4].map((k) => new Date(hour - k * HOUR).toISOString()));
    expect(ledger.body.items[0]).toMatchObject({
      status: 'QUEUED',
      trigger: 'BACKFILL',
      attempt: 1,
      definitionVersion: 1,
    });
    expect(times).toHaveLength(7);

    const ranged = await t.call(
      'get',
      `/jobs/${job.id}/occurrences?from=${new Date(hour - 2 * HOUR).toISOString()}&to=${new Date(hour - HOUR).toISOString()}`,
      { token: alice.token },
    );
    expect(ranged.body.items.map((o: { scheduledTime: string }) => o.scheduledTime)).toEqual([
      new Date(hour - HOUR).toISOString(),
      new Date(hour - 2 * HOUR).toISOString(),
    ]);
    const walked: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: { items: { id: string }[]; nextCursor: string | null } } = await t.call(
        'get',
        `/jobs/${job.id}/occurrences?limit=3${cursor ? `&cursor=${cursor}` : ''}`,
        { token: alice.token },
      );
      walked.push(...page.body.items.map((o) => o.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(new Set(walked).size).toBe(7);
    expect(
      (await t.call('get', `/jobs/${job.id}/occurrences?status=SUCCESS`, { token: alice.token })).body.items,
    ).toEqual([]);
  });

  it('refuses an empty, reversed or too long range, and a VIEWER', async () => {
    const job = await create(dummyJob('no-backfill'));
    const call = (body: unknown, token = alice.token) =>
      t.call('post', `/jobs/${job.id}/backfill`, { token, body });
    expect(paths(await call({ from: '2026-01-02T00:00:00Z', to: '2026-01-01T00:00:00Z' }))).toEqual(['to']);
    expect(paths(await call({ from: '2026-01-01T00:00:00Z', to: '2026-01-01T00:00:00Z' }))).toEqual(['to']);
    expect(paths(await call({ from: '2024-01-01T00:00:00Z', to: '2026-01-01T00:00:00Z' }))).toEqual(['from']);
    expect(paths(await call({ from: '2026-01-01T00:00:00Z' }))).toEqual(['to']);
    expect(
      (await call({ from: '2026-01-01T00:00:00Z', to: '2026-01-02T00:00:00Z' }, viewer.token)).status,
    ).toBe(403);
    expect(await t.db.jobRun.count({ where: { jobId: job.id } })).toBe(0);
  });

  it('answers 409 for a paused job, as a trigger does (its runs would not start)', async () => {
    const job = await create(dummyJob('paused-backfill'));
    await t.call('post', `/jobs/${job.id}/pause`, { token: alice.token });
    const res = await t.call('post', `/jobs/${job.id}/backfill`, {
      token: alice.token,
      body: { from: '2026-01-01T00:00:00Z', to: '2026-01-02T00:00:00Z' },
    });
    expect(res.status).toBe(409);
    expect(res.body.detail).toMatch(/paused; resume it first/);
    expect(await t.db.jobRun.count({ where: { jobId: job.id } })).toBe(0);
  });
});

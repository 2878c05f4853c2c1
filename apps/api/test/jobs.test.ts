// /jobs definitions: create, read, replace, patch, delete; validation, ownership, versions, secrets.
import { jobDefinitionKey } from '@chronos/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withAuditRefused } from './admin-helpers.ts';
import { startTestApi, type TestApi } from './harness.ts';
import { dummyJob, httpJob, inAnHour } from './jobs-fixtures.ts';

let t: TestApi;
let alice: { id: string; token: string };
let bob: { id: string; token: string };
let viewer: { id: string; token: string };

beforeAll(async () => {
  t = await startTestApi('jobs');
  [alice, bob, viewer] = await Promise.all([t.user(['USER']), t.user(['USER']), t.user(['VIEWER'])]);
});

afterAll(async () => {
  await t?.stop();
});

/** Creates a job as `token` and returns its document. */
async function create(token: string, body: unknown) {
  const res = await t.call('post', '/jobs', { token, body });
  expect(res.status, res.text).toBe(201);
  return res.body;
}

const paths = (res: { body: { errors?: { path: string }[] } }) =>
  (res.body.errors ?? []).map((e) => e.path).sort();

describe('POST /jobs', () => {
  it('creates a CRON job with its defaults, version 1, a Location and the first slot planned', async () => {
    const res = await t.call('post', '/jobs', {
      token: alice.token,
      body: dummyJob('nightly', { description: 'runs at two' }),
    });
    expect(res.status, res.text).toBe(201);
    const job = res.body;
    expect(res.headers.get('location')).toBe(`/api/v1/jobs/${job.id}`);
    expect(res.headers.get('etag')).toBe('"1"');
    expect(job).toMatchObject({
      name: 'nightly',
      description: 'runs at two',
      type: 'DUMMY',
      status: 'SCHEDULED',
      priority: 'MEDIUM',
      version: 1,
      ownerId: alice.id,
      overlapPolicy: 'SKIP',
      alertThreshold: 3,
      triggers: { scheduled: true, manual: true, webhook: false },
      schedule: { type: 'CRON', cronExpression: '0 2 * * *', timezone: 'UTC', dstGapPolicy: 'SHIFT' },
      payload: { metadata: { sleepMs: 0 } },
      retryPolicy: null,
    });
    expect(job.nextFireAt).toMatch(/T02:00:00\.000Z$/);
    const row = await t.db.jobSchedule.findUniqueOrThrow({ where: { jobId: job.id } });
    expect(row.nextFireAt?.toISOString()).toBe(job.nextFireAt);
  });

  it('creates ONCE and INTERVAL jobs, with retry policy, triggers and notification settings', async () => {
    const runAt = inAnHour();
    const once = await create(alice.token, {
      ...dummyJob('once'),
      schedule: { type: 'ONCE', runAt },
      priority: 'HIGH',
      timeoutSeconds: 30,
      triggers: { webhook: true },
      notificationSettings: { channels: [{ channel: 'EMAIL', target: 'ops@example.test' }] },
    });
    expect(once).toMatchObject({
      priority: 'HIGH',
      timeoutSeconds: 30,
      nextFireAt: runAt.replace('Z', '').replace(/(\.\d+)?$/, '.000Z'),
      triggers: { scheduled: true, manual: true, webhook: true },
      notificationSettings: {
        onFailure: true,
        onRecovery: true,
        onSuccess: false,
        channels: [{ channel: 'EMAIL', target: 'ops@example.test' }],
      },
      schedule: { type: 'ONCE', runAt: once.nextFireAt },
    });
    const every = await create(alice.token, {
      ...dummyJob('every-minute'),
      schedule: { type: 'INTERVAL', intervalSeconds: 60, intervalMode: 'FIXED_DELAY' },
      retryPolicy: { maxAttempts: 4, backoffStrategy: 'EXPONENTIAL', retryOn: ['TIMEOUT', 'EXIT_CODE:3'] },
      overlapPolicy: 'BUFFER_ONE',
    });
    expect(every).toMatchObject({
      overlapPolicy: 'BUFFER_ONE',
      schedule: { type: 'INTERVAL', intervalSeconds: 60, intervalMode: 'FIXED_DELAY' },
      retryPolicy: {
        maxAttempts: 4,
        backoffStrategy: 'EXPONENTIAL',
        backoffSeconds: 60,
        retryOn: ['TIMEOUT', 'EXIT_CODE:3'],
        jitter: true,
      },
    });
    expect(new Date(every.nextFireAt).getTime()).toBeGreaterThan(Date.now());
  });

  it('a job without scheduled triggers plans no slot', async () => {
    const job = await create(alice.token, { ...dummyJob('manual-only'), triggers: { scheduled: false } });
    expect(job).toMatchObject({ status: 'PENDING', nextFireAt: null, triggers: { scheduled: false } });
  });

  it('refuses bad input with the field path of each problem, writing nothing', async () => {
    const before = await t.db.job.count();
    const cron = await t.call('post', '/jobs', {
      token: alice.token,
      body: { ...dummyJob('bad-cron'), schedule: { type: 'CRON', cronExpression: '61 * * * *' } },
    });
    expect(cron.status).toBe(400);
    expect(cron.headers.get('content-type')).toMatch(/problem\+json/);
    expect(paths(cron)).toEqual(['schedule.cronExpression']);

    const http = await t.call('post', '/jobs', {
      token: alice.token,
      body: { ...httpJob('bad-http'), payload: { httpUrl: 'ftp://nope' } },
    });
    expect(http.status).toBe(400);
    expect(paths(http)).toEqual(['payload.httpUrl']);

    const retry = await t.call('post', '/jobs', {
      token: alice.token,
      body: { ...dummyJob('bad-retry'), retryPolicy: { maxAttempts: 11, retryOn: ['SOMETIMES'] } },
    });
    expect(retry.status).toBe(400);
    expect(paths(retry)).toEqual(['retryPolicy.maxAttempts', 'retryPolicy.retryOn.0']);

    const both = await t.call('post', '/jobs', {
      token: alice.token,
      body: {
        ...httpJob('bad-both'),
        schedule: { type: 'CRON', cronExpression: '* *' },
        payload: { httpUrl: 'ftp://x' },
      },
    });
    expect(paths(both)).toEqual(['payload.httpUrl', 'schedule.cronExpression']);

    const once = await t.call('post', '/jobs', {
      token: alice.token,
      body: { ...dummyJob('bad-once'), schedule: { type: 'ONCE' } },
    });
    expect(paths(once)).toEqual(['schedule.runAt']);

    // A definition without `schedule` is a job that runs only when triggered: only the name is missing.
    const missing = await t.call('post', '/jobs', { token: alice.token, body: { type: 'DUMMY' } });
    expect(paths(missing)).toEqual(['name']);

    // A trigger's values inserted into code: refused with the field, and where they go instead
    // (for a caller who may define SCRIPT jobs at all: an admin).
    const script = await t.call('post', '/jobs', {
      token: await t.adminToken(),
      body: {
        ...dummyJob('bad-script'),
        type: 'SCRIPT',
        payload: { scriptContent: 'echo {{trigger.body.name}}' },
      },
    });
    expect(paths(script)).toEqual(['payload.scriptContent']);
    expect(script.text).toMatch(/scriptEnv/);
    expect(await t.db.job.count()).toBe(before);
  });

  it('refuses job types without an executor in this version with a 400 naming `type` and the type', async () => {
    for (const type of ['MESSAGE_QUEUE', 'EMAIL', 'REPORT', 'DB_TO_KAFKA']) {
      const res = await t.call('post', '/jobs', {
        token: alice.token,
        body: { ...dummyJob(`no-${type}`), type },
      });
      expect(res.status).toBe(400);
      expect(paths(res)).toEqual(['type']);
      expect(res.text).toContain(`${type} jobs cannot be defined in this version`);
    }
  });

  it('answers 409 for a second job of the same name and owner; another owner may use the name', async () => {
    await create(alice.token, dummyJob('unique-name'));
    const again = await t.call('post', '/jobs', { token: alice.token, body: dummyJob('unique-name') });
    expect(again.status).toBe(409);
    await create(bob.token, dummyJob('unique-name'));
  });

  it('needs a token (401) and job:write (403 for a VIEWER)', async () => {
    expect((await t.call('post', '/jobs', { body: dummyJob('anon') })).status).toBe(401);
    const res = await t.call('post', '/jobs', { token: viewer.token, body: dummyJob('viewer') });
    expect(res.status).toBe(403);
    expect((await t.call('get', '/jobs', { token: viewer.token })).status).toBe(200);
  });

  it('ignores ownerId, version, status and ids in a user’s body; an admin may create for someone', async () => {
    const job = await create(alice.token, {
      ...dummyJob('mass-assignment'),
      ownerId: bob.id,
      version: 42,
      status: 'PAUSED',
      id: '01ARZ3NDEKTSV4RRFFQ69G5FAV',
      createdAt: '2000-01-01T00:00:00Z',
    });
    expect(job).toMatchObject({ ownerId: alice.id, version: 1, status: 'SCHEDULED' });
    expect(job.id).not.toBe('01ARZ3NDEKTSV4RRFFQ69G5FAV');

    const admin = await t.adminToken();
    const forBob = await create(admin, { ...dummyJob('made-for-bob'), ownerId: bob.id });
    expect(forBob.ownerId).toBe(bob.id);
    const unknown = await t.call('post', '/jobs', {
      token: admin,
      body: { ...dummyJob('nobody'), ownerId: 'NOPE' },
    });
    expect(paths(unknown)).toEqual(['ownerId']);
  });
});

describe('secrets in payloads', () => {
  it('never shows a literal password, token or URL password; {{var.X}} references are shown', async () => {
    const job = await create(alice.token, httpJob('secret-http'));
    expect(job.payload.httpAuth).toEqual({ type: 'BASIC', username: 'svc', password: '***' });
    expect(job.payload.httpHeaders).toEqual({ 'X-Api-Key': '***', Accept: 'application/json' });
    const db = await create(alice.token, {
      name: 'secret-db',
      type: 'DATABASE',
      schedule: { type: 'CRON', cronExpression: '0 3 * * *' },
      payload: { databaseUrl: 'postgres://app:s3cr3t-pw@db.internal:5432/app', query: 'select 1' },
    });
    expect(db.payload.databaseUrl).toBe('postgres://app:***@db.internal:5432/app');
    const templated = await create(alice.token, httpJob('templated', '{{var.SVC_PASSWORD}}'));
    expect(templated.payload.httpAuth.password).toBe('{{var.SVC_PASSWORD}}');

    const texts = [
      (await t.call('get', `/jobs/${job.id}`, { token: alice.token })).text,
      (await t.call('get', `/jobs/${db.id}`, { token: alice.token })).text,
      JSON.stringify(await t.storage.storage.getJson(jobDefinitionKey(job.id, 1))),
      JSON.stringify(await t.storage.storage.getJson(jobDefinitionKey(db.id, 1))),
      (await t.call('get', '/jobs?limit=200', { token: alice.token })).text,
    ];
    for (const text of texts) {
      expect(text).not.toContain('hunter2-literal');
      expect(text).not.toContain('key-literal-123');
      expect(text).not.toContain('s3cr3t-pw');
    }
    // The stored payload keeps the real value for the worker.
    const stored = await t.db.jobPayload.findUniqueOrThrow({ where: { jobId: job.id } });
    expect(stored.httpAuth).toMatchObject({ password: 'hunter2-literal' });
  });

  it('keeps a stored secret when a change sends back its mask, and takes a new value', async () => {
    const job = await create(alice.token, httpJob('roundtrip'));
    const read = (await t.call('get', `/jobs/${job.id}`, { token: alice.token })).body;
    const put = await t.call('put', `/jobs/${job.id}`, {
      token: alice.token,
      body: { ...read, description: 'edited' },
    });
    expect(put.status, put.text).toBe(200);
    let stored = await t.db.jobPayload.findUniqueOrThrow({ where: { jobId: job.id } });
    expect(stored.httpAuth).toMatchObject({ password: 'hunter2-literal' });
    expect(stored.httpHeaders).toMatchObject({ 'X-Api-Key': 'key-literal-123' });

    const patch = await t.call('patch', `/jobs/${job.id}`, {
      token: alice.token,
      body: { payload: { httpAuth: { type: 'BASIC', username: 'svc', password: 'new-pass-456' } } },
    });
    expect(patch.status, patch.text).toBe(200);
    expect(patch.text).not.toContain('new-pass-456');
    stored = await t.db.jobPayload.findUniqueOrThrow({ where: { jobId: job.id } });
    expect(stored.httpAuth).toMatchObject({ password: 'new-pass-456' });
  });
});

describe('GET /jobs/:id', () => {
  it('answers the full definition with the version as ETag', async () => {
    const job = await create(alice.token, httpJob('readable'));
    const res = await t.call('get', `/jobs/${job.id}`, { token: alice.token });
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBe('"1"');
    expect(res.body).toEqual(job);
    expect(res.body.payload).toMatchObject({
      httpUrl: 'https://example.test/hook',
      httpMethod: 'POST',
      httpFollowRedirects: true,
    });
  });

  it('lets an admin read any job', async () => {
    const job = await create(alice.token, dummyJob('admin-reads'));
    expect((await t.call('get', `/jobs/${job.id}`, { token: await t.adminToken() })).status).toBe(200);
  });
});

describe('another owner’s job is not found, whatever the action', () => {
  it('answers 404 to every job route of the other user, and leaves the job alone', async () => {
    const job = await create(alice.token, dummyJob('alice-only'));
    const calls: [string, string, unknown?][] = [
      ['get', `/jobs/${job.id}`],
      ['put', `/jobs/${job.id}`, dummyJob('taken')],
      ['patch', `/jobs/${job.id}`, { name: 'taken' }],
      ['delete', `/jobs/${job.id}`],
      ['post', `/jobs/${job.id}/pause`],
      ['post', `/jobs/${job.id}/resume`],
      ['post', `/jobs/${job.id}/trigger`],
      ['post', `/jobs/${job.id}/backfill`, { from: '2026-01-01T00:00:00Z', to: '2026-01-02T00:00:00Z' }],
      ['get', `/jobs/${job.id}/schedule/preview`],
      ['get', `/jobs/${job.id}/occurrences`],
      ['get', `/jobs/${job.id}/versions`],
      ['get', `/jobs/${job.id}/versions/1`],
    ];
    for (const [method, path, body] of calls) {
      const res = await t.call(method, path, { token: bob.token, body });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.text).not.toContain('alice-only');
    }
    const after = await t.db.job.findUniqueOrThrow({ where: { id: job.id } });
    expect(after).toMatchObject({ name: 'alice-only', version: 1, status: 'SCHEDULED' });
    expect(await t.db.jobRun.count({ where: { jobId: job.id } })).toBe(0);
  });

  it('answers 404 for a job that does not exist', async () => {
    expect((await t.call('get', '/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV', { token: alice.token })).status).toBe(
      404,
    );
  });
});

describe('PUT /jobs/:id', () => {
  it('replaces the definition, bumps the version by one and re-plans a new schedule', async () => {
    const job = await create(alice.token, { ...dummyJob('replaced'), priority: 'HIGH', timeoutSeconds: 10 });
    const res = await t.call('put', `/jobs/${job.id}`, {
      token: alice.token,
      body: {
        ...dummyJob('replaced-2'),
        schedule: { type: 'CRON', cronExpression: '15 4 * * *', timezone: 'UTC' },
      },
    });
    expect(res.status, res.text).toBe(200);
    expect(res.headers.get('etag')).toBe('"2"');
    // Left-out fields take their defaults: a full replacement.
    expect(res.body).toMatchObject({
      name: 'replaced-2',
      version: 2,
      priority: 'MEDIUM',
      timeoutSeconds: null,
    });
    expect(res.body.nextFireAt).toMatch(/T04:15:00\.000Z$/);
    const row = await t.db.jobSchedule.findUniqueOrThrow({ where: { jobId: job.id } });
    expect(row.nextFireAt?.toISOString()).toBe(res.body.nextFireAt);
  });

  it('refuses to change the type, and validates like POST', async () => {
    const job = await create(alice.token, dummyJob('typed'));
    const type = await t.call('put', `/jobs/${job.id}`, { token: alice.token, body: httpJob('typed') });
    expect(type.status).toBe(400);
    expect(paths(type)).toEqual(['type']);
    const bad = await t.call('put', `/jobs/${job.id}`, {
      token: alice.token,
      body: { ...dummyJob('typed'), schedule: { type: 'INTERVAL', intervalSeconds: 0 } },
    });
    expect(paths(bad)).toEqual(['schedule.intervalSeconds']);
    expect((await t.db.job.findUniqueOrThrow({ where: { id: job.id } })).version).toBe(1);
  });

  it('ignores a user’s ownerId, and answers 409 when renaming onto another job of the owner', async () => {
    await create(alice.token, dummyJob('existing'));
    const job = await create(alice.token, dummyJob('renamed'));
    const res = await t.call('put', `/jobs/${job.id}`, {
      token: alice.token,
      body: { ...dummyJob('renamed'), ownerId: bob.id, version: 99 },
    });
    expect(res.body).toMatchObject({ ownerId: alice.id, version: 2 });
    const clash = await t.call('put', `/jobs/${job.id}`, { token: alice.token, body: dummyJob('existing') });
    expect(clash.status).toBe(409);
  });
});

describe('a ONCE schedule in the past', () => {
  const longAgo = '2020-01-01T00:00:00.000Z';

  it('is refused on creation with 400 naming schedule.runAt and saying to trigger the job instead', async () => {
    const before = await t.db.job.count();
    const res = await t.call('post', '/jobs', {
      token: alice.token,
      body: { ...dummyJob('once-long-ago'), schedule: { type: 'ONCE', runAt: longAgo } },
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/problem\+json/);
    expect(paths(res)).toEqual(['schedule.runAt']);
    expect(res.body.detail).toMatch(/misfire threshold \(60 s\)/);
    expect(res.body.detail).toMatch(/To run the job now, trigger it/);
    expect(await t.db.job.count()).toBe(before);
    // Within the threshold it is a slot a little late, not a mistake.
    const recent = await t.call('post', '/jobs', {
      token: alice.token,
      body: { ...dummyJob('once-just-now'), schedule: { type: 'ONCE', runAt: new Date(Date.now() - 5000) } },
    });
    expect(recent.status, recent.text).toBe(201);
  });

  it('a job whose one-shot has fired stays editable with its schedule as is; a new time long past is refused', async () => {
    const job = await create(alice.token, {
      ...dummyJob('fired-once'),
      schedule: { type: 'ONCE', runAt: inAnHour() },
    });
    // As the engine leaves it once the slot ran: a day later, SUCCEEDED, nothing planned.
    const ranAt = new Date(Date.now() - 86_400_000);
    await t.db.jobSchedule.update({ where: { jobId: job.id }, data: { runAt: ranAt, nextFireAt: null } });
    await t.db.job.update({ where: { id: job.id }, data: { status: 'SUCCEEDED' } });

    const renamed = await t.call('patch', `/jobs/${job.id}`, {
      token: alice.token,
      body: { name: 'fired-renamed' },
    });
    expect(renamed.status, renamed.text).toBe(200);
    const put = await t.call('put', `/jobs/${job.id}`, {
      token: alice.token,
      body: { ...dummyJob('fired-put'), schedule: { type: 'ONCE', runAt: ranAt.toISOString() } },
    });
    expect(put.status, put.text).toBe(200);
    expect(put.body).toMatchObject({ name: 'fired-put', status: 'SUCCEEDED', nextFireAt: null });
    const threshold = await t.call('patch', `/jobs/${job.id}`, {
      token: alice.token,
      body: { schedule: { misfireThresholdSeconds: 30 } },
    });
    expect(threshold.status, threshold.text).toBe(200);
    expect(threshold.body).toMatchObject({ status: 'SUCCEEDED', nextFireAt: null, version: 4 });

    for (const [method, body] of [
      ['patch', { schedule: { runAt: longAgo } }],
      ['put', { ...dummyJob('fired-put'), schedule: { type: 'ONCE', runAt: longAgo } }],
    ] as const) {
      const moved = await t.call(method, `/jobs/${job.id}`, { token: alice.token, body });
      expect(moved.status).toBe(400);
      expect(paths(moved)).toEqual(['schedule.runAt']);
    }
    const later = await t.call('patch', `/jobs/${job.id}`, {
      token: alice.token,
      body: { schedule: { runAt: inAnHour() } },
    });
    expect(later.status, later.text).toBe(200);
    expect(later.body).toMatchObject({ status: 'SCHEDULED', version: 5 });
    expect(later.body.nextFireAt).toBe(later.body.schedule.runAt);
  });

  it('a job becoming ONCE is checked too', async () => {
    const job = await create(alice.token, dummyJob('cron-then-once'));
    const res = await t.call('patch', `/jobs/${job.id}`, {
      token: alice.token,
      body: { schedule: { type: 'ONCE', runAt: longAgo } },
    });
    expect(res.status).toBe(400);
    expect(paths(res)).toEqual(['schedule.runAt']);
    expect((await t.db.job.findUniqueOrThrow({ where: { id: job.id } })).version).toBe(1);
  });
});

describe('PATCH /jobs/:id', () => {
  it('changes only the given fields, merging payload, schedule and retry policy', async () => {
    const job = await create(alice.token, httpJob('patched'));
    const res = await t.call('patch', `/jobs/${job.id}`, {
      token: alice.token,
      body: {
        description: 'now described',
        payload: { httpMethod: 'PUT' },
        schedule: { intervalSeconds: 600 },
        retryPolicy: { maxAttempts: 5 },
        triggers: { webhook: true },
      },
    });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({
      name: 'patched',
      description: 'now described',
      version: 2,
      payload: { httpUrl: 'https://example.test/hook', httpMethod: 'PUT', httpAuth: { password: '***' } },
      schedule: { type: 'INTERVAL', intervalSeconds: 600, anchorAt: job.schedule.anchorAt },
      retryPolicy: { maxAttempts: 5, backoffStrategy: 'EXPONENTIAL', retryOn: ['HTTP_5XX'] },
      triggers: { scheduled: true, manual: true, webhook: true },
    });
  });

  it('makes no new version for an empty change', async () => {
    const job = await create(alice.token, dummyJob('untouched'));
    const res = await t.call('patch', `/jobs/${job.id}`, {
      token: alice.token,
      body: { version: 5, status: 'PAUSED' },
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual(job);
    expect(await t.db.job.findUniqueOrThrow({ where: { id: job.id } })).toMatchObject({
      version: 1,
      status: 'SCHEDULED',
    });
  });

  it('validates the merged payload as a whole, with field paths', async () => {
    const job = await create(alice.token, httpJob('patch-invalid'));
    const res = await t.call('patch', `/jobs/${job.id}`, {
      token: alice.token,
      body: { payload: { httpUrl: 'not a url' }, retryPolicy: { maxAttempts: 0 } },
    });
    expect(res.status).toBe(400);
    expect(paths(res)).toEqual(['retryPolicy.maxAttempts']);
    const payload = await t.call('patch', `/jobs/${job.id}`, {
      token: alice.token,
      body: { payload: { httpUrl: 'not a url' } },
    });
    expect(paths(payload)).toEqual(['payload.httpUrl']);
  });

  it('clears nullable fields with null and replaces a schedule of another type', async () => {
    const job = await create(alice.token, { ...httpJob('clearing'), description: 'x', timeoutSeconds: 5 });
    const res = await t.call('patch', `/jobs/${job.id}`, {
      token: alice.token,
      body: {
        description: null,
        timeoutSeconds: null,
        retryPolicy: null,
        payload: { httpHeaders: null },
        schedule: { type: 'CRON', cronExpression: '0 12 * * 1' },
      },
    });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ description: null, timeoutSeconds: null, retryPolicy: null });
    expect(res.body.payload.httpHeaders).toBeUndefined();
    expect(res.body.schedule).toMatchObject({
      type: 'CRON',
      cronExpression: '0 12 * * 1',
      intervalSeconds: null,
    });
  });
});

describe('versions and If-Match', () => {
  it('stores one document per version and lists them newest first', async () => {
    const job = await create(alice.token, dummyJob('versioned'));
    for (const priority of ['LOW', 'HIGH']) {
      const res = await t.call('patch', `/jobs/${job.id}`, { token: alice.token, body: { priority } });
      expect(res.status).toBe(200);
    }
    const list = await t.call('get', `/jobs/${job.id}/versions`, { token: alice.token });
    expect(list.status).toBe(200);
    expect(list.body.items).toEqual([
      { version: 3, key: jobDefinitionKey(job.id, 3), current: true },
      { version: 2, key: jobDefinitionKey(job.id, 2), current: false },
      { version: 1, key: jobDefinitionKey(job.id, 1), current: false },
    ]);
    const v2 = await t.call('get', `/jobs/${job.id}/versions/2`, { token: alice.token });
    expect(v2.body).toMatchObject({ id: job.id, version: 2, priority: 'LOW' });
    expect(await t.storage.storage.getJson(jobDefinitionKey(job.id, 3))).toMatchObject({
      version: 3,
      priority: 'HIGH',
    });
    const current = await t.call('get', `/jobs/${job.id}`, { token: alice.token });
    expect(await t.storage.storage.getJson(jobDefinitionKey(job.id, 3))).toEqual(current.body);
    expect((await t.call('get', `/jobs/${job.id}/versions/4`, { token: alice.token })).status).toBe(404);
    expect((await t.call('get', `/jobs/${job.id}/versions/0`, { token: alice.token })).status).toBe(400);

    const page = await t.call('get', `/jobs/${job.id}/versions?limit=2`, { token: alice.token });
    expect(page.body.items.map((v: { version: number }) => v.version)).toEqual([3, 2]);
    const next = await t.call('get', `/jobs/${job.id}/versions?limit=2&cursor=${page.body.nextCursor}`, {
      token: alice.token,
    });
    expect(next.body).toEqual({
      items: [{ version: 1, key: jobDefinitionKey(job.id, 1), current: false }],
      nextCursor: null,
    });
  });

  it('audits every change with its version', async () => {
    const job = await create(alice.token, dummyJob('audited'));
    await t.call('patch', `/jobs/${job.id}`, { token: alice.token, body: { priority: 'LOW' } });
    const events = await t.db.auditEvent.findMany({ where: { entityId: job.id }, orderBy: { id: 'asc' } });
    expect(events.map((e) => [e.action, e.userId, (e.details as { version: number }).version])).toEqual([
      ['CREATED', alice.id, 1],
      ['UPDATED', alice.id, 2],
    ]);
  });

  it('creates a job and its CREATED event together: when the event cannot be written, no job is', async () => {
    const name = `unauditable-${Date.now()}`;
    await withAuditRefused(t, { name }, async () => {
      const res = await t.call('post', '/jobs', { token: alice.token, body: dummyJob(name) });
      expect(res.status).toBe(500);
      expect(await t.db.job.count({ where: { name } })).toBe(0);
      // Every other job goes through, with its event.
      const ok = await create(alice.token, dummyJob(`${name}-other`));
      expect(await t.db.auditEvent.count({ where: { entityId: ok.id, action: 'CREATED' } })).toBe(1);
    });
  });

  it('refuses a change against a stale version with 412 and accepts the current one', async () => {
    const job = await create(alice.token, dummyJob('concurrent'));
    const ok = await t.call('patch', `/jobs/${job.id}`, {
      token: alice.token,
      headers: { 'if-match': '"1"' },
      body: { priority: 'LOW' },
    });
    expect(ok.status).toBe(200);
    for (const [method, body] of [
      ['patch', { priority: 'HIGH' }],
      ['put', dummyJob('concurrent')],
      ['delete', undefined],
    ] as const) {
      const stale = await t.call(method, `/jobs/${job.id}`, {
        token: alice.token,
        headers: { 'if-match': '"1"' },
        body,
      });
      expect(stale.status, method).toBe(412);
    }
    expect(
      (
        await t.call('patch', `/jobs/${job.id}`, {
          token: alice.token,
          headers: { 'if-match': 'garbage' },
          body: {},
        })
      ).status,
    ).toBe(412);
    expect((await t.db.job.findUniqueOrThrow({ where: { id: job.id } })).version).toBe(2);
  });
});

describe('DELETE /jobs/:id', () => {
  it('needs job:delete, deletes the job with its ledger and documents, and audits it', async () => {
    const job = await create(alice.token, dummyJob('doomed'));
    await t.call('post', `/jobs/${job.id}/trigger`, { token: alice.token });
    expect((await t.call('delete', `/jobs/${job.id}`, { token: viewer.token })).status).toBe(403);
    const res = await t.call('delete', `/jobs/${job.id}`, {
      token: alice.token,
      headers: { 'if-match': '"1"' },
    });
    expect(res.status).toBe(204);
    expect(await t.db.job.count({ where: { id: job.id } })).toBe(0);
    expect(await t.db.jobRun.count({ where: { jobId: job.id } })).toBe(0);
    expect(await t.storage.storage.list(`jobs/${job.id}/`)).toEqual([]);
    expect((await t.call('get', `/jobs/${job.id}`, { token: alice.token })).status).toBe(404);
    expect((await t.call('delete', `/jobs/${job.id}`, { token: alice.token })).status).toBe(404);
    const event = await t.db.auditEvent.findFirstOrThrow({ where: { entityId: job.id, action: 'DELETED' } });
    expect(event.details).toMatchObject({ name: 'doomed', version: 1 });
  });
});

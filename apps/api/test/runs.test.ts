import { createMasker, newId } from '@chronos/core';
import { bullJobId, buildRunContext, cancelChannel, enqueueRuns } from '@chronos/engine';
import { runContextKey } from '@chronos/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOG_STREAMS_PER_USER, openLogStreams } from '../src/runs/log-stream.ts';
import { startTestApi, type TestApi } from './harness.ts';
import { ownedJob } from './owned-job.ts';
import { addLogs, expectRefusals, makeRun, userWithoutPermissions } from './runs-fixtures.ts';
import { openSse, type SseEvent } from './sse.ts';

type User = Awaited<ReturnType<TestApi['user']>>;

let t: TestApi;
let alice: User;
let bob: User;
let viewer: User;
let nobody: User;
let admin: string;
let aliceJob: string;

beforeAll(async () => {
  t = await startTestApi('runs');
  [alice, bob, viewer, nobody] = await Promise.all([
    t.user(['USER']),
    t.user(['USER']),
    t.user(['VIEWER']),
    userWithoutPermissions(t),
  ]);
  admin = await t.adminToken();
  aliceJob = await ownedJob(t, alice.id);
});

afterAll(async () => {
  await t?.stop();
});

/** 401, 403 for `forbidden`, 404 for bob and for an unknown id in place of `id` (alice's). */
const refusals = (method: string, path: string, id: string, forbidden: string) =>
  expectRefusals(t, method, path, id, { owner: alice.token, other: bob.token, forbidden });

describe('GET /jobs/:id/runs', () => {
  let job: string;
  const at = (h: number) => new Date(Date.UTC(2026, 0, 1, h));

  beforeAll(async () => {
    job = await ownedJob(t, alice.id);
    await makeRun(t, job, { scheduledTime: at(1), status: 'SUCCESS', trigger: 'SCHEDULED' });
    await makeRun(t, job, { scheduledTime: at(3), status: 'FAILURE', trigger: 'MANUAL' });
    await makeRun(t, job, { scheduledTime: at(2), status: 'SUCCESS', trigger: 'MANUAL', lockToken: 'tok-x' });
  });

  it('lists the job’s runs newest slot first, without the fencing token', async () => {
    const res = await t.call('get', `/jobs/${job}/runs`, { token: alice.token });
    expect(res.status).toBe(200);
    expect(res.body.items.map((r: { scheduledTime: string }) => r.scheduledTime)).toEqual([
      at(3).toISOString(),
      at(2).toISOString(),
      at(1).toISOString(),
    ]);
    expect(res.body.nextCursor).toBeNull();
    expect(res.text).not.toContain('lockToken');
    expect(res.text).not.toContain('tok-x');
  });

  it('filters by status, trigger and slot time (from inclusive, to exclusive)', async () => {
    const times = async (q: string) =>
      (await t.call('get', `/jobs/${job}/runs?${q}`, { token: alice.token })).body.items.map(
        (r: { scheduledTime: string }) => new Date(r.scheduledTime).getUTCHours(),
      );
    expect(await times('status=SUCCESS')).toEqual([2, 1]);
    expect(await times('trigger=MANUAL')).toEqual([3, 2]);
    expect(await times(`from=${at(2).toISOString()}&to=${at(3).toISOString()}`)).toEqual([2]);
    expect(await times('status=SUCCESS&trigger=MANUAL')).toEqual([2]);
  });

  it('pages with the cursor and caps the page size at 200', async () => {
    const many = await ownedJob(t, alice.id);
    await t.db.jobRun.createMany({
      data: Array.from({ length: 205 }, (_, i) => ({
        id: newId(),
        jobId: many,
        idempotencyKey: `${many}-${i}`,
        scheduledTime: new Date(Date.UTC(2026, 1, 1) + i * 60_000),
      })),
    });
    const first = await t.call('get', `/jobs/${many}/runs?limit=1000`, { token: alice.token });
    expect(first.body.items).toHaveLength(200);
    const second = await t.call('get', `/jobs/${many}/runs?limit=1000&cursor=${first.body.nextCursor}`, {
      token: alice.token,
    });
    expect(second.body.items).toHaveLength(5);
    expect(second.body.nextCursor).toBeNull();
    const ids = new Set([...first.body.items, ...second.body.items].map((r: { id: string }) => r.id));
    expect(ids.size).toBe(205);
  });

  it('answers 400 naming the field for a bad filter or cursor', async () => {
    const bad = async (q: string) => {
      const res = await t.call('get', `/jobs/${job}/runs?${q}`, { token: alice.token });
      expect(res.status).toBe(400);
      return res.body.errors.map((e: { path: string }) => e.path);
    };
    expect(await bad('status=BOGUS')).toEqual(['status']);
    expect(await bad('trigger=CRON')).toEqual(['trigger']);
    expect(await bad('from=yesterday')).toEqual(['from']);
    expect(await bad(`from=${at(3).toISOString()}&to=${at(1).toISOString()}`)).toEqual(['to']);
    expect(await bad('limit=0')).toEqual(['limit']);
    expect(await bad('cursor=nonsense')).toEqual(['cursor']);
  });

  it('is refused without a token, without execution:read, and for another owner’s job (404)', async () => {
    await refusals('get', `/jobs/${job}/runs`, job, nobody.token);
  });

  it('shows an admin any owner’s runs', async () => {
    const res = await t.call('get', `/jobs/${job}/runs`, { token: admin });
    expect(res.body.items).toHaveLength(3);
  });
});

describe('GET /runs/:id', () => {
  it('answers every run field but the fencing token and the raw trigger input', async () => {
    const retried = await makeRun(t, aliceJob, { status: 'FAILURE' });
    const run = await makeRun(t, aliceJob, {
      status: 'FAILURE',
      attempt: 2,
      trigger: 'RETRY',
      startTime: new Date('2026-03-01T10:00:00Z'),
      endTime: new Date('2026-03-01T10:00:01.500Z'),
      durationMs: 1500,
      exitCode: 3,
      errorMessage: 'it broke',
      errorCode: 'EXIT_CODE:3',
      workerId: 'worker-1',
      lockToken: 'secret-fencing-token',
      definitionVersion: 4,
      output: { rows: 7 },
      triggerPayload: { headers: { authorization: 'Bearer hook-token-value' } },
      retryOfId: retried.id,
    });
    const res = await t.call('get', `/runs/${run.id}`, { token: alice.token });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      id: run.id,
      jobId: aliceJob,
      idempotencyKey: run.idempotencyKey,
      attempt: 2,
      status: 'FAILURE',
      trigger: 'RETRY',
      scheduledTime: run.scheduledTime.toISOString(),
      dueAt: run.dueAt?.toISOString(),
      enqueuedAt: null,
      startTime: '2026-03-01T10:00:00.000Z',
      endTime: '2026-03-01T10:00:01.500Z',
      durationMs: 1500,
      exitCode: 3,
      errorMessage: 'it broke',
      errorCode: 'EXIT_CODE:3',
      reason: null,
      workerId: 'worker-1',
      definitionVersion: 4,
      output: { rows: 7 },
      retryOfId: retried.id,
      dlqEventId: null,
      createdAt: run.createdAt.toISOString(),
      updatedAt: run.updatedAt.toISOString(),
    });
    expect(res.text).not.toContain('secret-fencing-token');
    expect(res.text).not.toContain('hook-token-value');
  });

  it('is refused without a token, without execution:read, and for another owner’s run (404)', async () => {
    const run = await makeRun(t, aliceJob);
    await refusals('get', `/runs/${run.id}`, run.id, nobody.token);
    expect((await t.call('get', `/runs/${run.id}`, { token: viewer.token })).status).toBe(404);
    expect((await t.call('get', `/runs/${run.id}`, { token: admin })).status).toBe(200);
  });
});

describe('GET /runs/:id/logs', () => {
  let runId: string;
  let ids: number[];

  beforeAll(async () => {
    runId = (await makeRun(t, aliceJob, { status: 'SUCCESS' })).id;
    ids = await addLogs(t, runId, [
      { level: 'DEBUG', message: 'one' },
      { level: 'INFO', message: 'two' },
      { level: 'WARN', message: 'three' },
      { level: 'ERROR', message: 'four\nwith a second line' },
      { level: 'TRACE', message: 'five' },
    ]);
  });

  it('answers the lines oldest first, paged by line id', async () => {
    const first = await t.call('get', `/runs/${runId}/logs?limit=3`, { token: alice.token });
    expect(first.status).toBe(200);
    expect(first.body.items.map((l: { message: string }) => l.message)).toEqual(['one', 'two', 'three']);
    expect(first.body.items[0]).toEqual({
      id: ids[0],
      timestamp: expect.stringMatching(/Z$/),
      level: 'DEBUG',
      message: 'one',
      context: null,
    });
    const second = await t.call('get', `/runs/${runId}/logs?limit=3&cursor=${first.body.nextCursor}`, {
      token: alice.token,
    });
    expect(second.body.items.map((l: { id: number }) => l.id)).toEqual(ids.slice(3));
    expect(second.body.nextCursor).toBeNull();
    // A cursor this API never returned (a fractional or negative id) is a 400 naming it, not a 500.
    for (const id of [1.5, -1, 2 ** 53]) {
      const cursor = Buffer.from(JSON.stringify([id])).toString('base64url');
      const bad = await t.call('get', `/runs/${runId}/logs?cursor=${cursor}`, { token: alice.token });
      expect(bad.status, String(id)).toBe(400);
      expect(bad.body.errors.map((e: { path: string }) => e.path)).toEqual(['cursor']);
    }
  });

  it('treats level as a minimum severity', async () => {
    const res = await t.call('get', `/runs/${runId}/logs?level=WARN`, { token: alice.token });
    expect(res.body.items.map((l: { level: string }) => l.level)).toEqual(['WARN', 'ERROR']);
  });

  it('answers 400 for an unknown level or a foreign cursor', async () => {
    const level = await t.call('get', `/runs/${runId}/logs?level=LOUD`, { token: alice.token });
    expect(level.status).toBe(400);
    expect(level.body.errors[0].path).toBe('level');
    const cursor = await t.call('get', `/runs/${runId}/logs?cursor=eyJ4Ijox`, { token: alice.token });
    expect(cursor.status).toBe(400);
    expect(cursor.body.errors[0].path).toBe('cursor');
  });

  it('caps the page size at 200', async () => {
    const run = await makeRun(t, aliceJob);
    await addLogs(
      t,
      run.id,
      Array.from({ length: 201 }, (_, i) => ({ message: `line ${i}` })),
    );
    const res = await t.call('get', `/runs/${run.id}/logs?limit=500`, { token: alice.token });
    expect(res.body.items).toHaveLength(200);
    expect(res.body.nextCursor).not.toBeNull();
  });

  it('is refused without a token, without execution:read, and for another owner’s run (404)', async () => {
    await refusals('get', `/runs/${runId}/logs`, runId, nobody.token);
  });
});

describe('GET /runs/:id/logs/stream', () => {
  const stream = (runId: string, token: string, headers: Record<string, string> = {}, query = '') =>
    openSse(`${t.api}/runs/${runId}/logs/stream${query}`, { authorization: `Bearer ${token}`, ...headers });
  const data = (ev: SseEvent) => JSON.parse(ev.data) as Record<string, unknown>;

  it('sends the stored lines, then live ones, then `end` with the final status', async () => {
    const run = await makeRun(t, aliceJob, { status: 'RUNNING', startTime: new Date() });
    const before = await addLogs(t, run.id, [{ message: 'a' }, { message: 'b' }]);
    const s = await stream(run.id, alice.token);
    try {
      expect(s.response.status).toBe(200);
      expect(s.response.headers.get('content-type')).toMatch(/^text\/event-stream/);
      expect(s.response.headers.get('x-accel-buffering')).toBe('no');
      expect(s.response.headers.get('cache-control')).toMatch(/no-cache/);
      for (const [i, msg] of ['a', 'b'].entries()) {
        const ev = await s.next();
        expect(ev).toMatchObject({ event: 'log', id: String(before[i]) });
        expect(data(ev)).toMatchObject({ id: before[i], message: msg, level: 'INFO' });
      }
      const live = await addLogs(t, run.id, [{ message: 'c' }, { level: 'ERROR', message: 'd' }]);
      for (const [i, msg] of ['c', 'd'].entries()) {
        const ev = await s.next();
        expect(ev.id).toBe(String(live[i]));
        expect(data(ev).message).toBe(msg);
      }
      await t.db.jobRun.update({
        where: { id: run.id },
        data: { status: 'SUCCESS', endTime: new Date(), exitCode: 0 },
      });
      const end = await s.next();
      expect(end.event).toBe('end');
      expect(data(end)).toMatchObject({ status: 'SUCCESS', exitCode: 0 });
      expect(await s.ended()).toBe(true);
    } finally {
      await s.close();
    }
  });

  it('sends a finished run’s whole log and `end` at once', async () => {
    const run = await makeRun(t, aliceJob, { status: 'FAILURE', errorMessage: 'nope', endTime: new Date() });
    const ids = await addLogs(t, run.id, [{ message: 'x' }, { level: 'ERROR', message: 'y' }]);
    const s = await stream(run.id, alice.token);
    try {
      expect((await s.next()).id).toBe(String(ids[0]));
      expect((await s.next()).id).toBe(String(ids[1]));
      const end = await s.next();
      expect(end.event).toBe('end');
      expect(data(end)).toMatchObject({ status: 'FAILURE', errorMessage: 'nope' });
      expect(await s.ended()).toBe(true);
    } finally {
      await s.close();
    }
  });

  it('resumes after Last-Event-ID (or ?lastEventId=) and applies the level filter', async () => {
    const run = await makeRun(t, aliceJob, { status: 'SUCCESS', endTime: new Date() });
    const ids = await addLogs(t, run.id, [
      { message: '1' },
      { message: '2' },
      { level: 'WARN', message: '3' },
      { message: '4' },
    ]);
    const read = async (headers: Record<string, string>, query = '') => {
      const s = await stream(run.id, alice.token, headers, query);
      const events: SseEvent[] = [];
      try {
        for (;;) {
          const ev = await s.next();
          events.push(ev);
          if (ev.event === 'end') break;
        }
      } finally {
        await s.close();
      }
      return events.map((e) => (e.event === 'end' ? 'end' : String(data(e).message)));
    };
    expect(await read({ 'last-event-id': String(ids[1]) })).toEqual(['3', '4', 'end']);
    expect(await read({}, `?lastEventId=${ids[2]}`)).toEqual(['4', 'end']);
    expect(await read({ 'last-event-id': String(ids[0]) }, `?lastEventId=${ids[2]}`)).toEqual([
      '2',
      '3',
      '4',
      'end',
    ]);
    expect(await read({}, '?level=WARN')).toEqual(['3', 'end']);
  });

  it('stops polling when the client disconnects', async () => {
    const run = await makeRun(t, aliceJob, { status: 'RUNNING', startTime: new Date() });
    const [id] = await addLogs(t, run.id, [{ message: 'only' }]);
    const s = await stream(run.id, alice.token);
    expect((await s.next()).id).toBe(String(id));
    expect(openLogStreams()).toBe(1);
    await s.close();
    const deadline = Date.now() + 10_000;
    while (openLogStreams() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(openLogStreams()).toBe(0);
  });

  it(`lets one user hold at most ${LOG_STREAMS_PER_USER} streams open (429 beyond), others unaffected`, async () => {
    const run = await makeRun(t, aliceJob, { status: 'RUNNING', startTime: new Date() });
    const streams = [];
    try {
      for (let i = 0; i < LOG_STREAMS_PER_USER; i++) {
        const s = await stream(run.id, alice.token);
        expect(s.response.status).toBe(200);
        streams.push(s);
      }
      const refused = await t.call('get', `/runs/${run.id}/logs/stream`, { token: alice.token });
      expect(refused.status).toBe(429);
      expect(refused.headers.get('retry-after')).toBeTruthy();
      const other = await stream(run.id, admin);
      expect(other.response.status).toBe(200);
      streams.push(other);
    } finally {
      for (const s of streams) await s.close();
    }
    // Closed streams free their places.
    const deadline = Date.now() + 10_000;
    while (openLogStreams() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const again = await stream(run.id, alice.token);
    expect(again.response.status).toBe(200);
    await again.close();
  });

  it('answers problems (not a stream) for a bad Last-Event-ID, no token, no permission, another owner', async () => {
    const run = await makeRun(t, aliceJob, { status: 'SUCCESS' });
    const bad = await t.call('get', `/runs/${run.id}/logs/stream`, {
      token: alice.token,
      headers: { 'last-event-id': 'abc' },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].path).toBe('Last-Event-ID');
    const badQuery = await t.call('get', `/runs/${run.id}/logs/stream?lastEventId=-1`, {
      token: alice.token,
    });
    expect(badQuery.body.errors[0].path).toBe('lastEventId');
    await refusals('get', `/runs/${run.id}/logs/stream`, run.id, nobody.token);
  });
});

describe('GET /runs/:id/context', () => {
  it('answers 404 while the run has no context document', async () => {
    const run = await makeRun(t, aliceJob);
    const res = await t.call('get', `/runs/${run.id}/context`, { token: alice.token });
    expect(res.status).toBe(404);
  });

  it('answers the stored document, secrets masked by buildRunContext', async () => {
    const secret = 'p4ssw0rd-of-the-database';
    const run = await makeRun(t, aliceJob, {
      status: 'FAILURE',
      startTime: new Date('2026-04-01T00:00:00Z'),
      endTime: new Date('2026-04-01T00:00:02Z'),
      errorMessage: `login as admin:${secret} refused`,
      errorCode: 'AUTH',
      definitionVersion: 1,
    });
    const doc = buildRunContext({
      run,
      inputs: { databaseUrl: `postgres://admin:${secret}@db/x`, query: 'SELECT 1', httpUrl: null },
      output: { echoed: secret },
      masker: createMasker([secret]),
    });
    await t.deps.storage.putJson(runContextKey(run.id), doc);
    const res = await t.call('get', `/runs/${run.id}/context`, { token: alice.token });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      runId: run.id,
      jobId: aliceJob,
      attempt: 1,
      definitionVersion: 1,
      trigger: 'SCHEDULED',
      status: 'FAILURE',
      inputs: { query: 'SELECT 1' },
      error: { code: 'AUTH' },
      startedAt: '2026-04-01T00:00:00.000Z',
      endedAt: '2026-04-01T00:00:02.000Z',
    });
    expect(res.body.inputs).not.toHaveProperty('httpUrl');
    expect(res.text).not.toContain(secret);
    expect((await t.call('get', `/runs/${run.id}/context`, { token: admin })).status).toBe(200);
    await refusals('get', `/runs/${run.id}/context`, run.id, nobody.token);
  });
});

describe('POST /runs/:id/cancel', () => {
  it('cancels a queued run and removes its job from the queue', async () => {
    const due = new Date(Date.now() + 3_600_000);
    const run = await makeRun(t, aliceJob, { scheduledTime: due, dueAt: due });
    const queue = t.deps.queues.get('DUMMY')!;
    await enqueueRuns(
      t.deps.queues,
      [
        {
          type: 'DUMMY',
          runId: run.id,
          jobId: aliceJob,
          jobName: 'alice-job',
          key: run.idempotencyKey,
          scheduledTime: due,
          dueAt: due,
        },
      ],
      Date.now(),
    );
    expect(await queue.getJob(bullJobId(run.idempotencyKey))).toBeDefined();

    const res = await t.call('post', `/runs/${run.id}/cancel`, {
      token: alice.token,
      body: { status: 'SUCCESS' },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ runId: run.id, outcome: 'CANCELLED', run: { status: 'CANCELLED' } });
    expect(res.body.run.reason).toContain(alice.email);
    expect(await queue.getJob(bullJobId(run.idempotencyKey))).toBeUndefined();
    const audit = await t.db.auditEvent.findFirst({ where: { entityType: 'run', entityId: run.id } });
    expect(audit).toMatchObject({ action: 'CANCELLED', userId: alice.id });
  });

  it('asks the worker of a running run to abort it', async () => {
    const run = await makeRun(t, aliceJob, { status: 'RUNNING', startTime: new Date() });
    const sub = t.deps.redis.duplicate({ enableOfflineQueue: true });
    try {
      const heard = new Promise<string>((resolve) => sub.on('message', (_channel, msg) => resolve(msg)));
      await sub.subscribe(cancelChannel(t.prefix));
      const res = await t.call('post', `/runs/${run.id}/cancel`, { token: alice.token });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ outcome: 'CANCEL_REQUESTED', run: { status: 'RUNNING' } });
      expect(await heard).toBe(run.id);
    } finally {
      sub.disconnect();
    }
  });

  it('answers 409 for a finished run', async () => {
    const run = await makeRun(t, aliceJob, { status: 'SUCCESS', endTime: new Date() });
    const res = await t.call('post', `/runs/${run.id}/cancel`, { token: alice.token });
    expect(res.status).toBe(409);
    expect((await t.db.jobRun.findUniqueOrThrow({ where: { id: run.id } })).status).toBe('SUCCESS');
  });

  it('is refused without a token, without execution:stop (VIEWER), and for another owner’s run (404)', async () => {
    const run = await makeRun(t, aliceJob);
    await refusals('post', `/runs/${run.id}/cancel`, run.id, viewer.token);
    expect((await t.db.jobRun.findUniqueOrThrow({ where: { id: run.id } })).status).toBe('QUEUED');
  });
});

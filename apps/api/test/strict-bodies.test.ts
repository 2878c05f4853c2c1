// Request bodies are strict: an unknown field, at any depth, is a 400 naming it by its full path
// (with the field meant, when one is close); nothing is written. A body that is not JSON is a 415.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from './harness.ts';
import { dummyJob, httpJob } from './jobs-fixtures.ts';

let t: TestApi;
let alice: { id: string; token: string };

beforeAll(async () => {
  t = await startTestApi('strict-bodies');
  [alice] = await Promise.all([t.user(['USER'])]);
});

afterAll(async () => {
  await t?.stop();
});

type Problem = {
  status: number;
  title: string;
  detail: string;
  errors?: { path: string; message: string }[];
};

const errorsOf = (res: { body: Problem }) =>
  Object.fromEntries((res.body.errors ?? []).map((e) => [e.path, e.message]));

const auditEvents = () => t.db.auditEvent.count({ where: { userId: alice.id } });

/** What a refused definition must not have left behind: a job of that name, an audit event. */
async function nothingWritten(name: string, eventsBefore: number) {
  expect(await t.db.job.count({ where: { name } })).toBe(0);
  expect(await auditEvents()).toBe(eventsBefore);
}

describe('unknown fields in a job definition', () => {
  it('a misspelt top-level field is a 400 naming it, with the field meant; no job, no audit event', async () => {
    const events0 = await auditEvents();
    const res = await t.call<Problem>('post', '/jobs', {
      token: alice.token,
      body: dummyJob('typo-top', { retryPolcy: { maxAttempts: 3 } }),
    });
    expect(res.status, res.text).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.body.errors).toEqual([
      { path: 'retryPolcy', message: 'is not a known field; did you mean `retryPolicy`?' },
    ]);
    expect(res.body.detail).toContain('retryPolcy');
    await nothingWritten('typo-top', events0);
  });

  it('names unknown fields of retryPolicy, schedule, payload and payload.metadata by their full paths', async () => {
    const events0 = await auditEvents();
    const res = await t.call<Problem>('post', '/jobs', {
      token: alice.token,
      body: {
        name: 'typo-nested',
        type: 'DUMMY',
        schedule: { type: 'CRON', cronExpresion: '0 2 * * *', cronExpression: '0 2 * * *' },
        retryPolicy: { maxAtempts: 3 },
        payload: { cacheTtlSeconds: 60, metadata: { sleepMS: 5 } },
      },
    });
    expect(res.status, res.text).toBe(400);
    expect(errorsOf(res)).toEqual({
      'schedule.cronExpresion': 'is not a known field; did you mean `cronExpression`?',
      'retryPolicy.maxAtempts': 'is not a known field; did you mean `maxAttempts`?',
    });
    // The payload is checked by its type's schema once the body's own fields are known.
    const payload = await t.call<Problem>('post', '/jobs', {
      token: alice.token,
      body: dummyJob('typo-nested', { payload: { cacheTtlSeconds: 60, metadata: { sleepMS: 5 } } }),
    });
    expect(payload.status, payload.text).toBe(400);
    expect(errorsOf(payload)).toEqual({
      'payload.cacheTtlSeconds': 'is not a known field',
      'payload.metadata.sleepMS': 'is not a known field; did you mean `sleepMs`?',
    });
    const auth = await t.call<Problem>('post', '/jobs', {
      token: alice.token,
      body: {
        ...httpJob('typo-nested'),
        payload: { httpUrl: 'https://example.test/', httpAuth: { type: 'BEARER', tokn: 'x', token: 'x' } },
        notificationSettings: { onFailur: true },
        triggers: { manul: true },
      },
    });
    expect(auth.status, auth.text).toBe(400);
    expect(errorsOf(auth)).toEqual({
      'notificationSettings.onFailur': 'is not a known field; did you mean `onFailure`?',
      'triggers.manul': 'is not a known field; did you mean `manual`?',
    });
    await nothingWritten('typo-nested', events0);
  });

  it('refuses unknown fields in a PUT and a PATCH, and leaves the job as it was', async () => {
    const created = await t.call('post', '/jobs', { token: alice.token, body: dummyJob('strict-change') });
    expect(created.status, created.text).toBe(201);
    const id = created.body.id as string;
    const events = await t.db.auditEvent.count({ where: { entityId: id } });
    const put = await t.call<Problem>('put', `/jobs/${id}`, {
      token: alice.token,
      body: dummyJob('strict-change', { priorty: 'HIGH' }),
    });
    expect(put.status, put.text).toBe(400);
    expect(errorsOf(put)).toEqual({ priorty: 'is not a known field; did you mean `priority`?' });
    const patch = await t.call<Problem>('patch', `/jobs/${id}`, {
      token: alice.token,
      body: { payload: { metadata: { sleepMs: 1, logLine: 3 } } },
    });
    expect(patch.status, patch.text).toBe(400);
    expect(errorsOf(patch)).toEqual({
      'payload.metadata.logLine': 'is not a known field; did you mean `logLines`?',
    });
    const patchSchedule = await t.call<Problem>('patch', `/jobs/${id}`, {
      token: alice.token,
      body: { schedule: { timezon: 'Europe/Paris' } },
    });
    expect(patchSchedule.status, patchSchedule.text).toBe(400);
    expect(errorsOf(patchSchedule)).toEqual({
      'schedule.timezon': 'is not a known field; did you mean `timezone`?',
    });
    const row = await t.db.job.findUniqueOrThrow({ where: { id }, include: { payload: true } });
    expect(row).toMatchObject({ version: 1, priority: 'MEDIUM' });
    expect(row.payload?.metadata).toEqual({ sleepMs: 0 });
    expect(await t.db.auditEvent.count({ where: { entityId: id } })).toBe(events);
  });

  it('keeps free-form maps free: headers, query parameters, HTTP metadata, trigger parameters', async () => {
    const res = await t.call('post', '/jobs', {
      token: alice.token,
      body: {
        ...httpJob('free-maps'),
        payload: {
          httpUrl: 'https://example.test/hook',
          httpHeaders: { 'X-Anything-At-All': '1', 'x-other': '2' },
          httpQueryParams: { whatever: 'x', page: 2 },
          metadata: { team: 'billing', any: { nested: true } },
        },
      },
    });
    expect(res.status, res.text).toBe(201);
    expect(res.body.payload).toMatchObject({
      httpQueryParams: { whatever: 'x', page: 2 },
      metadata: { team: 'billing', any: { nested: true } },
    });
    const trigger = await t.call('post', `/jobs/${res.body.id}/trigger`, {
      token: alice.token,
      body: { parameters: { anyName: 1, another: { deep: 'yes' } } },
    });
    expect(trigger.status, trigger.text).toBe(202);
  });
});

describe('unknown fields in other bodies', () => {
  it('a job variable and a sign-in refuse fields they do not know', async () => {
    const job = await t.call('post', '/jobs', { token: alice.token, body: dummyJob('with-variables') });
    expect(job.status, job.text).toBe(201);
    const variable = await t.call<Problem>('post', `/jobs/${job.body.id}/variables`, {
      token: alice.token,
      body: { name: 'REGION', value: 'eu', isSensitiv: false },
    });
    expect(variable.status, variable.text).toBe(400);
    expect(errorsOf(variable)).toEqual({ isSensitiv: 'is not a known field; did you mean `isSensitive`?' });
    expect(await t.db.variable.count({ where: { name: 'REGION' } })).toBe(0);

    const login = await t.call<Problem>('post', '/auth/login', {
      body: { email: 'nobody@example.test', password: 'x', rememberMe: true },
    });
    expect(login.status, login.text).toBe(400);
    expect(errorsOf(login)).toEqual({ rememberMe: 'is not a known field' });
  });
});

describe('a body that is not JSON', () => {
  it('is a 415 when its type is not JSON, naming the type; nothing is written', async () => {
    const events0 = await auditEvents();
    const res = await t.call<Problem>('post', '/jobs', {
      token: alice.token,
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify(dummyJob('not-json')),
    });
    expect(res.status, res.text).toBe(415);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ status: 415, title: 'Unsupported Media Type' });
    expect(res.body.detail).toContain('text/plain');
    expect(res.body.errors).toBeUndefined();
    const form = await t.call<Problem>('post', '/jobs', {
      token: alice.token,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'name=not-json&type=DUMMY',
    });
    expect(form.status, form.text).toBe(415);
    await nothingWritten('not-json', events0);
  });

  it('is a 400 saying so when it is declared JSON but does not parse', async () => {
    const events0 = await auditEvents();
    const res = await t.call<Problem>('post', '/jobs', { token: alice.token, body: '{"name": "broken",' });
    expect(res.status, res.text).toBe(400);
    expect(res.body.title).toBe('Bad Request');
    expect(res.body.detail).toMatch(/^The request body is not valid JSON/);
    await nothingWritten('broken', events0);
  });

  it('a POST without a body is still an empty one', async () => {
    const created = await t.call('post', '/jobs', { token: alice.token, body: dummyJob('bodiless') });
    expect(created.status, created.text).toBe(201);
    const pause = await t.call('post', `/jobs/${created.body.id}/pause`, { token: alice.token });
    expect(pause.status, pause.text).toBe(200);
  });
});

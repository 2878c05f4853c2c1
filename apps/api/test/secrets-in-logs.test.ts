import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signWebhook } from '../src/webhooks/signature.ts';
import { ADMIN, startTestApi, type TestApi } from './harness.ts';
import { ownedJob } from './owned-job.ts';

// Everything the API logs while secrets pass through it: none of them may appear.
let t: TestApi;
let logs = '';

beforeAll(async () => {
  const sink = new PassThrough();
  sink.on('data', (chunk: Buffer) => {
    logs += chunk.toString('utf8');
  });
  t = await startTestApi('secret-logs', {}, { logs: sink });
});

afterAll(async () => {
  await t?.stop();
});

describe('no secret value in any log line', () => {
  it('passwords, tokens, sensitive variables, webhook secrets and payload credentials stay out of the log', async () => {
    const secrets: string[] = [ADMIN.password];
    const admin = await t.adminToken();
    secrets.push(admin);

    // A failed and a successful sign-in, a refresh.
    await t.call('post', '/auth/login', { body: { email: ADMIN.email, password: 'wrong-password-value' } });
    secrets.push('wrong-password-value');
    const pair = await t.call('post', '/auth/login', {
      body: { email: ADMIN.email, password: ADMIN.password },
    });
    secrets.push(pair.body.refreshToken);
    await t.call('post', '/auth/refresh', { body: { refreshToken: pair.body.refreshToken } });

    // A sensitive variable, created and replaced.
    const created = await t.call('post', '/variables', {
      token: admin,
      body: { name: 'API_KEY', value: 'sk-live-0123456789abcdef', isSensitive: true },
    });
    expect(created.status).toBe(201);
    await t.call('put', `/variables/${created.body.id}`, {
      token: admin,
      body: { name: 'API_KEY', value: 'sk-live-rotated-999999', isSensitive: true },
    });
    secrets.push('sk-live-0123456789abcdef', 'sk-live-rotated-999999');

    // A job with a literal Basic password, and one that fails validation with a secret in it.
    const job = await t.call('post', '/jobs', {
      token: admin,
      body: {
        name: 'with-basic-auth',
        type: 'HTTP',
        schedule: { type: 'CRON', cronExpression: '0 3 * * *' },
        payload: {
          httpUrl: 'https://example.test/hook',
          httpMethod: 'POST',
          httpAuth: { type: 'BASIC', username: 'svc', password: 'basic-pass-4242' },
        },
      },
    });
    expect(job.status).toBe(201);
    await t.call('post', '/jobs', {
      token: admin,
      body: {
        name: 'bad',
        type: 'HTTP',
        schedule: { type: 'CRON', cronExpression: 'nope' },
        payload: { httpUrl: 'https://u:url-pass-7777@example.test/' },
      },
    });
    secrets.push('basic-pass-4242', 'url-pass-7777');

    // A webhook: its secret, and a signed delivery.
    const jobId = await ownedJob(t, (await t.call('get', '/auth/me', { token: admin })).body.id);
    const hook = await t.call('post', `/jobs/${jobId}/webhook`, { token: admin, body: {} });
    expect(hook.status).toBe(201);
    secrets.push(hook.body.secret);
    const ts = String(Math.floor(Date.now() / 1000));
    const body = JSON.stringify({ hello: 'world' });
    const delivered = await fetch(`${t.api}/hooks/${hook.body.id}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-chronos-timestamp': ts,
        'x-chronos-signature': signWebhook(hook.body.secret, ts, body),
      },
      body,
    });
    expect(delivered.status).toBe(202);

    expect(logs.length).toBeGreaterThan(0);
    for (const secret of secrets) expect(logs).not.toContain(secret);
  });
});

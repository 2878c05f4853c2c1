import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiServer, type ApiServer } from '../src/server.ts';
import { startTestApi, type TestApi } from './harness.ts';

// Two API replicas on one database and one Redis prefix: the login throttle is shared.
let t: TestApi;
let second: ApiServer;
let secondBase: string;

beforeAll(async () => {
  // A proxy on this host: X-Forwarded-For names the client, so each test can be a client of its own.
  t = await startTestApi('throttle', {
    LOGIN_MAX_FAILURES: '3',
    LOGIN_WINDOW_SECONDS: '300',
    TRUST_PROXY: 'loopback',
  });
  second = createApiServer(t.deps.config, pino({ level: 'silent' }));
  await second.start();
  secondBase = `http://127.0.0.1:${second.port}/api/v1`;
});

afterAll(async () => {
  await second?.stop();
  await t?.stop();
});

async function login(base: string, email: string, password: string, ip?: string) {
  const res = await fetch(`${base}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(ip ? { 'x-forwarded-for': ip } : {}) },
    body: JSON.stringify({ email, password }),
  });
  return {
    status: res.status,
    retryAfter: res.headers.get('retry-after'),
    body: (await res.json()) as Record<string, unknown>,
  };
}

describe('login throttling across two API replicas', () => {
  it('counts failures per account on both replicas and then refuses even the right password with 429', async () => {
    const user = await t.user(['USER']);
    expect((await login(t.api, user.email, 'wrong-1')).status).toBe(401);
    expect((await login(secondBase, user.email, 'wrong-2')).status).toBe(401);
    expect((await login(t.api, user.email, 'wrong-3')).status).toBe(401);
    const blocked = await login(secondBase, user.email, user.password);
    expect(blocked.status).toBe(429);
    expect(Number(blocked.retryAfter)).toBeGreaterThan(0);
    expect(Number(blocked.retryAfter)).toBeLessThanOrEqual(300);
    expect(blocked.body).toMatchObject({ status: 429, title: 'Too Many Requests' });
    // E-mail case does not open a second counter.
    expect((await login(t.api, user.email.toUpperCase(), user.password)).status).toBe(429);
  });

  it('counts attempts sent at once: parallel guesses get no more tries than the limit', async () => {
    const user = await t.user(['USER']);
    const answers = await Promise.all(
      // From a client of its own (this file's other tests fail sign-ins from loopback too).
      Array.from({ length: 10 }, (_, i) =>
        login(i % 2 ? secondBase : t.api, user.email, `guess-${i}`, '203.0.113.20'),
      ),
    );
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s === 401)).toHaveLength(3);
    expect(statuses.filter((s) => s === 429)).toHaveLength(7);
  });

  it('throttles guesses of the current password on a password change too, and audits them', async () => {
    const user = await t.user(['USER']);
    const change = (currentPassword: string) =>
      t.call('post', '/auth/password', {
        token: user.token,
        headers: { 'x-forwarded-for': '203.0.113.21' },
        body: { currentPassword, newPassword: 'a-new-password-1' },
      });
    for (let i = 0; i < 3; i++) expect((await change(`guess-${i}`)).status).toBe(400);
    expect((await change(user.password)).status).toBe(429);
    const failures = await t.db.auditEvent.count({
      where: { entityId: user.id, action: 'PASSWORD_CHANGE_FAILED' },
    });
    expect(failures).toBe(3);
  });

  it('a success before the limit resets the account counter', async () => {
    const user = await t.user(['USER']);
    expect((await login(t.api, user.email, 'wrong-1')).status).toBe(401);
    expect((await login(secondBase, user.email, 'wrong-2')).status).toBe(401);
    expect((await login(t.api, user.email, user.password)).status).toBe(200);
    expect((await login(secondBase, user.email, 'wrong-3')).status).toBe(401);
    expect((await login(t.api, user.email, user.password)).status).toBe(200);
  });

  it('counts failures per client IP across accounts (4× the account limit)', async () => {
    // Requests come from loopback, trusted here (TRUST_PROXY=loopback), so X-Forwarded-For names the client.
    const ip = '203.0.113.7';
    for (let i = 0; i < 12; i++) {
      const res = await login(i % 2 ? secondBase : t.api, `nobody-${i}@example.test`, 'x', ip);
      expect(res.status).toBe(401);
    }
    const user = await t.user(['USER']);
    expect((await login(t.api, user.email, user.password, ip)).status).toBe(429);
    // Another client is not affected.
    expect((await login(t.api, user.email, user.password, '203.0.113.8')).status).toBe(200);
  });
});

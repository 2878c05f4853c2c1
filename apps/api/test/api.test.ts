import { RUNNABLE_JOB_TYPES, queueName } from '@chronos/core';
import bcrypt from 'bcrypt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, startTestApi, type TestApi } from './harness.ts';

let t: TestApi;

beforeAll(async () => {
  t = await startTestApi('api');
});

afterAll(async () => {
  await t?.stop();
});

/** Signs in on the dashboard's form and returns the session's cookies, as one Cookie header (or the failed answer). */
async function dashboardSignIn(email: string, password: string) {
  const res = await fetch(`${t.base}/admin/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ email, password, next: '/admin/queues' }).toString(),
  });
  const cookies = res.headers.getSetCookie().map((c) => c.split(';')[0]);
  return { res, cookie: cookies.length > 0 ? cookies.join('; ') : undefined };
}

describe('the API process', () => {
  it('answers /healthz with 200', async () => {
    const res = await fetch(`${t.base}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('answers an unknown route with a 404 problem document carrying the request id', async () => {
    const res = await fetch(`${t.api}/nope`, { headers: { 'x-request-id': 'req-123' } });
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.headers.get('x-request-id')).toBe('req-123');
    expect(await res.json()).toMatchObject({
      title: 'Not Found',
      status: 404,
      instance: '/api/v1/nope',
      requestId: 'req-123',
    });
  });

  it('answers a method a known path does not have with 405 and Allow, before any authentication', async () => {
    const res = await fetch(`${t.api}/jobs/some-id/pause`, { method: 'DELETE' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await res.json()).toMatchObject({ title: 'Method Not Allowed', status: 405 });
    const jobs = await fetch(`${t.api}/jobs`, { method: 'PUT' });
    expect(jobs.headers.get('allow')).toBe('GET, HEAD, POST');
  });

  it('replaces an unusable X-Request-Id with its own', async () => {
    const res = await fetch(`${t.api}/nope`, { headers: { 'x-request-id': 'bad id with spaces <script>' } });
    const id = res.headers.get('x-request-id') ?? '';
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(((await res.json()) as { requestId: string }).requestId).toBe(id);
  });

  it('created the first admin from CHRONOS_ADMIN_EMAIL / CHRONOS_ADMIN_PASSWORD with the ADMIN role', async () => {
    const users = await t.db.user.findMany({ include: { roles: { include: { role: true } } } });
    expect(users).toHaveLength(1);
    const [admin] = users;
    expect(admin?.email).toBe(ADMIN.email);
    expect(admin?.roles.map((r) => r.role.name)).toEqual(['ADMIN']);
    expect(await bcrypt.compare(ADMIN.password, admin?.passwordHash ?? '')).toBe(true);
    expect(bcrypt.getRounds(admin?.passwordHash ?? '')).toBeGreaterThanOrEqual(10);
  });

  it('seeded the built-in roles with their permissions', async () => {
    const roles = await t.db.role.findMany({ orderBy: { name: 'asc' } });
    expect(roles.map((r) => r.name)).toEqual(['ADMIN', 'OPERATOR', 'USER', 'VIEWER']);
    expect(roles.every((r) => r.isBuiltin)).toBe(true);
    expect(roles.find((r) => r.name === 'ADMIN')?.permissions).toContain('user:manage');
    expect(roles.find((r) => r.name === 'VIEWER')?.permissions).toEqual(['job:read', 'execution:read']);
  });
});

describe('Bull Board at /admin/queues', () => {
  it('sends an anonymous browser to the sign-in page and answers a program 401', async () => {
    const browser = await fetch(`${t.base}/admin/queues`, {
      redirect: 'manual',
      headers: { accept: 'text/html' },
    });
    expect(browser.status).toBe(303);
    expect(browser.headers.get('location')).toBe('/admin/login?next=%2Fadmin%2Fqueues');
    const program = await fetch(`${t.base}/admin/queues/api/queues`, {
      headers: { accept: 'application/json' },
    });
    expect(program.status).toBe(401);
    const page = await fetch(`${t.base}/admin/login`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<form method="post" action="/admin/login">');
  });

  it('refuses a wrong password and an unknown user alike, without a session', async () => {
    const wrong = await dashboardSignIn(ADMIN.email, 'nope');
    const unknown = await dashboardSignIn('ghost@example.test', ADMIN.password);
    expect(wrong.res.status).toBe(401);
    expect(unknown.res.status).toBe(401);
    expect(wrong.cookie).toBeUndefined();
    expect(await wrong.res.text()).toBe(await unknown.res.text());
  });

  it('refuses a signed-in user without the ADMIN role', async () => {
    const viewer = await t.user(['VIEWER']);
    const form = await dashboardSignIn(viewer.email, viewer.password);
    expect(form.res.status).toBe(403);
    expect(form.cookie).toBeUndefined();
    const bearer = await fetch(`${t.base}/admin/queues/api/queues`, {
      headers: { authorization: `Bearer ${viewer.token}` },
    });
    expect(bearer.status).toBe(403);
  });

  it('shows the queue of every job type that runs to an admin signed in from a browser', async () => {
    const { res, cookie } = await dashboardSignIn(ADMIN.email, ADMIN.password);
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/admin/queues');
    expect(res.headers.get('set-cookie')).toMatch(/HttpOnly/i);
    expect(res.headers.get('set-cookie')).toMatch(/SameSite=Strict/i);
    const page = await fetch(`${t.base}/admin/queues`, { headers: { cookie: cookie as string } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<html');
    const api = await fetch(`${t.base}/admin/queues/api/queues`, { headers: { cookie: cookie as string } });
    expect(api.status).toBe(200);
    const body = (await api.json()) as { queues: { name: string }[] };
    expect(body.queues.map((q) => q.name).sort()).toEqual(RUNNABLE_JOB_TYPES.map(queueName).sort());
    // The types without an executor have no (forever empty) queue on show.
    for (const type of ['EMAIL', 'REPORT', 'MESSAGE_QUEUE', 'DB_TO_KAFKA'] as const)
      expect(body.queues.map((q) => q.name)).not.toContain(queueName(type));
    // Read-only: nothing that would change a queue behind the runs' records.
    for (const action of ['empty', 'retry/failed', 'clean/completed', 'promote']) {
      const put = await fetch(`${t.base}/admin/queues/api/queues/${queueName('DUMMY')}/${action}`, {
        method: 'PUT',
        headers: { cookie: cookie as string, 'content-type': 'application/json' },
        body: '{}',
      });
      expect(put.status, action).toBe(405);
    }
  });

  it('signing out ends the session itself: a copy of its cookies no longer opens the dashboard', async () => {
    const { cookie } = await dashboardSignIn(ADMIN.email, ADMIN.password);
    const api = (c: string) =>
      fetch(`${t.base}/admin/queues/api/queues`, { headers: { cookie: c, accept: 'application/json' } });
    expect((await api(cookie as string)).status).toBe(200);
    const out = await fetch(`${t.base}/admin/logout`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: cookie as string },
    });
    expect(out.status).toBe(303);
    expect((await api(cookie as string)).status).toBe(401);
    // The signed session cookie alone (without its session) is no way in either.
    const signedOnly = (cookie as string).split('; ').filter((c) => c.startsWith('chronos_admin='));
    const again = await dashboardSignIn(ADMIN.email, ADMIN.password);
    expect((await api(again.cookie as string)).status).toBe(200);
    expect((await api(signedOnly.join('; '))).status).toBe(401);
  });

  it('does not take an API access token as a dashboard cookie (different audience)', async () => {
    const token = await t.adminToken();
    const res = await fetch(`${t.base}/admin/queues/api/queues`, {
      headers: { cookie: `chronos_admin=${token}`, accept: 'application/json' },
    });
    expect(res.status).toBe(401);
  });

  it('never redirects the sign-in form off-site', async () => {
    const res = await fetch(`${t.base}/admin/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        email: ADMIN.email,
        password: ADMIN.password,
        next: '//evil.example/x',
      }).toString(),
    });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/admin/queues');
  });
});

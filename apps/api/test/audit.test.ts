import { newId } from '@chronos/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from './harness.ts';
import {
  allPages,
  customRole,
  expectFieldErrors,
  expectNoSecrets,
  expectPageCapped,
} from './admin-helpers.ts';

let t: TestApi;
let admin: string;

beforeAll(async () => {
  t = await startTestApi('audit');
  admin = await t.adminToken();
});

afterAll(async () => {
  await t?.stop();
});

interface EventBody {
  id: string;
  entityType: string;
  entityId: string;
  action: string;
  userId: string | null;
  userEmail: string | null;
  ipAddress: string | null;
  userAgent: string | null;
  timestamp: string;
}

const events = (query: string, token = admin) => t.call('get', `/audit-events?${query}`, { token });

describe('GET /audit-events', () => {
  it('shows sign-ins, failed and successful, with client IP and user agent, never the password tried', async () => {
    const user = await t.user(['USER']);
    const wrong = 'hunter2-not-the-password';
    const failed = await t.call('post', '/auth/login', {
      body: { email: user.email, password: wrong },
      headers: { 'user-agent': 'audit-test/1.0' },
    });
    expect(failed.status).toBe(401);
    await t.call('post', '/auth/login', {
      body: { email: user.email, password: user.password },
      headers: { 'user-agent': 'audit-test/2.0' },
    });

    const res = await events(`userId=${user.id}&entityType=auth`);
    expect(res.status).toBe(200);
    const items = res.body.items as EventBody[];
    // Newest first: the harness's sign-in, the failure, then the success.
    expect(items.map((e) => e.action)).toEqual(['LOGIN_SUCCEEDED', 'LOGIN_FAILED', 'LOGIN_SUCCEEDED']);
    expect(items[0]).toMatchObject({ userEmail: user.email, userAgent: 'audit-test/2.0', entityId: user.id });
    expect(items[1]).toMatchObject({ userAgent: 'audit-test/1.0', details: { reason: 'wrong password' } });
    for (const e of items) expect(e.ipAddress).toMatch(/127\.0\.0\.1/);
    expect(res.text).not.toContain(wrong);
    expectNoSecrets(res);

    // An unknown e-mail is audited too, under the e-mail tried.
    await t.call('post', '/auth/login', { body: { email: 'ghost@example.test', password: wrong } });
    const ghost = await events('action=login_failed&entityId=ghost@example.test');
    expect(ghost.body.items).toEqual([
      expect.objectContaining({
        userId: null,
        userEmail: 'ghost@example.test',
        details: { reason: 'unknown user' },
      }),
    ]);
  });

  it('filters by entity, action and a [from, to) time range', async () => {
    const entityId = newId();
    const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s));
    await t.db.auditEvent.createMany({
      data: [1, 2, 3].map((s) => ({
        id: newId(),
        entityType: 'job',
        entityId,
        action: s === 2 ? 'PAUSED' : 'UPDATED',
        timestamp: at(s),
      })),
    });
    const all = await events(`entityType=job&entityId=${entityId}`);
    expect(all.body.items.map((e: EventBody) => e.timestamp)).toEqual(
      [at(3), at(2), at(1)].map((d) => d.toISOString()),
    );
    const paused = await events(`entityId=${entityId}&action=PAUSED`);
    expect(paused.body.items.map((e: EventBody) => e.action)).toEqual(['PAUSED']);
    const range = await events(`entityId=${entityId}&from=${at(2).toISOString()}&to=${at(3).toISOString()}`);
    expect(range.body.items.map((e: EventBody) => e.timestamp)).toEqual([at(2).toISOString()]);
    const zoned = await events(
      `entityId=${entityId}&from=${encodeURIComponent('2026-01-01T01:00:02+01:00')}`,
    );
    expect(zoned.body.items).toHaveLength(2);
  });

  it('records the actor of API changes', async () => {
    const res = await t.call('post', '/roles', {
      token: admin,
      body: { name: `R${newId()}`, permissions: ['job:read'] },
    });
    const trail = await events(`entityType=role&entityId=${res.body.id}`);
    expect(trail.body.items).toEqual([
      expect.objectContaining({
        action: 'CREATED',
        userEmail: 'root@example.test',
        ipAddress: expect.any(String),
      }),
    ]);
  });

  it('pages newest first and caps the page at 200', async () => {
    const entityId = newId();
    await t.db.auditEvent.createMany({
      data: Array.from({ length: 205 }, () => ({
        id: newId(),
        entityType: 'bulk',
        entityId,
        action: 'UPDATED',
      })),
    });
    await expectPageCapped(t, admin, `/audit-events?entityId=${entityId}`);
    const every = await allPages<EventBody>(t, admin, `/audit-events?entityId=${entityId}&limit=100`);
    expect(every).toHaveLength(205);
    const ids = every.map((e) => e.id);
    // Same timestamp: the id (a ULID) breaks the tie, newest first.
    expect(ids).toEqual([...ids].sort().reverse());
  });

  it('answers 400 with the field path for bad dates and an inverted range', async () => {
    expectFieldErrors(await events('from=yesterday'), ['from']);
    expectFieldErrors(await events('from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z'), ['to']);
  });

  it('needs audit:read: 401 anonymously, 403 to a USER and an OPERATOR, 200 to a custom auditor', async () => {
    expect((await t.call('get', '/audit-events')).status).toBe(401);
    for (const role of ['USER', 'OPERATOR']) {
      const user = await t.user([role]);
      expect((await events('', user.token)).status, role).toBe(403);
    }
    const auditor = await t.user([await customRole(t, ['audit:read'])]);
    expect((await events('', auditor.token)).status).toBe(200);
  });
});

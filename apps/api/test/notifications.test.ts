import { newId } from '@chronos/core';
import type { NotificationStatus } from '@chronos/db';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from './harness.ts';
import { allPages, expectFieldErrors, expectNoSecrets, expectPageCapped } from './admin-helpers.ts';

let t: TestApi;

beforeAll(async () => {
  t = await startTestApi('notifications');
});

afterAll(async () => {
  await t?.stop();
});

/** Writes notifications for `userId`, oldest first, one second apart. */
async function notify(userId: string, statuses: NotificationStatus[], jobId: string | null = null) {
  const start = Date.now() - statuses.length * 1000;
  await t.db.notification.createMany({
    data: statuses.map((status, i) => ({
      userId,
      jobId,
      channel: 'EMAIL' as const,
      target: 'owner@example.test',
      templateCode: 'JOB_FAILING',
      payload: { jobName: `job ${i}` },
      status,
      createdAt: new Date(start + i * 1000),
    })),
  });
}

describe('GET /notifications', () => {
  it('returns only the caller’s own, newest first, for administrators too', async () => {
    const [a, b] = [await t.user(['USER']), await t.user(['VIEWER'])];
    await notify(a.id, ['SENT', 'FAILED', 'PENDING']);
    await notify(b.id, ['SENT']);
    const res = await t.call('get', '/notifications', { token: a.token });
    expect(res.status).toBe(200);
    expect(res.body.items.map((n: { status: string }) => n.status)).toEqual(['PENDING', 'FAILED', 'SENT']);
    expect(res.body.items[0]).toMatchObject({
      channel: 'EMAIL',
      templateCode: 'JOB_FAILING',
      payload: { jobName: 'job 2' },
      attempts: 0,
      sentAt: null,
      createdAt: expect.stringMatching(/Z$/),
    });
    expect(res.body.items[0]).not.toHaveProperty('userId');
    expect(res.body.nextCursor).toBeNull();
    expectNoSecrets(res);
    const other = await t.call('get', '/notifications', { token: b.token });
    expect(other.body.items).toHaveLength(1);
    const admin = await t.call('get', '/notifications', { token: await t.adminToken() });
    expect(admin.body.items).toEqual([]);
  });

  it('filters by status and job', async () => {
    const user = await t.user(['USER']);
    const jobId = newId();
    await t.db.job.create({ data: { id: jobId, ownerId: user.id, name: 'noisy', type: 'DUMMY' } });
    await notify(user.id, ['SENT', 'FAILED', 'SENT']);
    await notify(user.id, ['FAILED'], jobId);
    const sent = await t.call('get', '/notifications?status=SENT', { token: user.token });
    expect(sent.body.items.map((n: { status: string }) => n.status)).toEqual(['SENT', 'SENT']);
    const ofJob = await t.call('get', `/notifications?jobId=${jobId}`, { token: user.token });
    expect(ofJob.body.items).toHaveLength(1);
    expect(ofJob.body.items[0]).toMatchObject({ jobId, status: 'FAILED' });
  });

  it('pages with a cursor and caps the page at 200', async () => {
    const user = await t.user(['USER']);
    await notify(
      user.id,
      Array.from({ length: 205 }, () => 'SENT' as const),
    );
    await expectPageCapped(t, user.token, '/notifications');
    const every = await allPages<{ id: number }>(t, user.token, '/notifications?limit=60');
    expect(every).toHaveLength(205);
    expect(new Set(every.map((n) => n.id)).size).toBe(205);
  });

  it('answers 400 for a bad filter or cursor and 401 without a token', async () => {
    const user = await t.user(['USER']);
    expectFieldErrors(await t.call('get', '/notifications?status=LOST', { token: user.token }), ['status']);
    expectFieldErrors(await t.call('get', '/notifications?cursor=bogus', { token: user.token }), ['cursor']);
    // An id beyond the column's 32 bits is no cursor this API returned.
    const tooBig = Buffer.from(JSON.stringify([2 ** 31])).toString('base64url');
    expectFieldErrors(await t.call('get', `/notifications?cursor=${tooBig}`, { token: user.token }), [
      'cursor',
    ]);
    expect((await t.call('get', '/notifications')).status).toBe(401);
  });
});

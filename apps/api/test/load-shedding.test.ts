// API_MAX_IN_FLIGHT on the real API: requests are held by a slow dependency — a transaction of the
// test's own holds a lock on `users`, which every authenticated request reads — so the API is
// saturated exactly as when PostgreSQL is slow.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from './harness.ts';

let t: TestApi;

beforeAll(async () => {
  t = await startTestApi('load-shedding', { API_MAX_IN_FLIGHT: '2' });
});

afterAll(async () => {
  await t?.stop();
});

/** Sessions of the API on this test's database waiting for a lock. */
async function apiRequestsWaitingOnLock(): Promise<number> {
  const [row] = await t.db.$queryRaw<{ n: number }[]>`
    SELECT count(*)::int AS n FROM pg_stat_activity
     WHERE datname = current_database() AND application_name = 'chronos-api' AND wait_event_type = 'Lock'`;
  return row?.n ?? 0;
}

/** Holds an exclusive lock on `users` until `release()`; resolves once it is taken. */
async function lockUsers(): Promise<{ release(): Promise<void> }> {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let taken!: () => void;
  const isTaken = new Promise<void>((r) => (taken = r));
  const tx = t.db.$transaction(
    async (db) => {
      await db.$executeRaw`LOCK TABLE users IN ACCESS EXCLUSIVE MODE`;
      taken();
      await released;
    },
    { timeout: 120_000 },
  );
  await Promise.race([isTaken, tx]);
  return {
    async release() {
      release();
      await tx;
    },
  };
}

describe('with API_MAX_IN_FLIGHT requests in flight', () => {
  it('answers further requests 503 with Retry-After at once, keeps the probes answered, and serves again once they finish', async () => {
    const token = await t.adminToken();
    const lock = await lockUsers();
    let held: Promise<{ status: number }>[] = [];
    try {
      held = [t.call('get', '/jobs', { token }), t.call('get', '/auth/me', { token })];
      await expect.poll(apiRequestsWaitingOnLock, { timeout: 20_000 }).toBe(2);

      const refused = await t.call('get', '/jobs', { token });
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(refused.body).toMatchObject({ status: 503, title: 'Service Unavailable' });
      expect(refused.body.detail).toMatch(/as many requests as it may at once \(2\)/);
      // Not even read: the body of a refused request, a sign-in, the queue dashboard.
      expect(
        (await t.call('post', '/auth/login', { body: { email: 'a@b.test', password: 'x' } })).status,
      ).toBe(503);
      expect((await fetch(`${t.base}/admin/queues`, { redirect: 'manual' })).status).toBe(503);

      const health = await fetch(`${t.base}/healthz`);
      expect(health.status).toBe(200);
      const ready = await fetch(`${t.base}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ status: 'ready' });
      const metrics = await (await fetch(`${t.base}/metrics`)).text();
      expect(metrics).toMatch(/^chronos_http_requests_in_flight 2$/m);
      expect(metrics).toMatch(/^chronos_http_requests_shed_total [1-9]/m);
    } finally {
      await lock.release();
    }
    expect((await Promise.all(held)).map((r) => r.status)).toEqual([200, 200]);
    const again = await t.call('get', '/jobs', { token });
    expect(again.status).toBe(200);
  });
});

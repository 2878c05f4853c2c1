// Fault: PostgreSQL or Redis goes away under a running API. Requests that need it answer 503
// problem+json with Retry-After naming which (not a 500), /readyz says which, the process keeps
// running, and once the server is back the same requests succeed again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../helpers.ts';
import { startApiProcess, type Answer, type ApiProcess } from './api-process.ts';
import { stopAllApps } from './app-process.ts';
import { createFleet, type Fleet } from './fleet.ts';
import { startPostgres, startRedis, type OwnPostgres, type OwnRedis } from './servers.ts';

let pgServer: OwnPostgres;
let redisServer: OwnRedis;
let fleet: Fleet;
let api: ApiProcess;
let token: string;

beforeAll(async () => {
  pgServer = await startPostgres();
  redisServer = await startRedis();
  fleet = await createFleet('api_deps', { postgresUrl: pgServer.url, redisUrl: redisServer.url });
  api = await startApiProcess(fleet);
  token = await api.signIn();
});
afterAll(async () => {
  await stopAllApps();
  await pgServer?.start();
  await fleet?.close();
  await pgServer?.close();
  await redisServer?.close();
});

const listJobs = () => api.request('/api/v1/jobs', { headers: { authorization: `Bearer ${token}` } });
const signIn = (password = 'not the password') =>
  api.request('/api/v1/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'root@example.test', password }),
  });
const readiness = () => api.request('/readyz');

/** A 503 problem with a Retry-After, naming `dependency`, and nothing of the servers' addresses. */
function expectUnavailable(res: Answer, dependency: 'database' | 'redis') {
  expect(res.status, res.text).toBe(503);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
  expect(res.body).toMatchObject({ status: 503, title: 'Service Unavailable', dependency });
  expect(res.body.detail).toMatch(dependency === 'database' ? /database/ : /Redis/);
  for (const secret of [pgServer.url, String(pgServer.port), redisServer.url, String(redisServer.port)])
    expect(res.text).not.toContain(secret);
}

describe('when a dependency of the API goes away and comes back', () => {
  it('PostgreSQL down: 503 naming the database, /readyz says postgres is down; back: 200', async () => {
    expect((await listJobs()).status).toBe(200);
    await pgServer.stop();
    try {
      expectUnavailable(await listJobs(), 'database');
      // A sign-in passes its throttle in Redis, then reads the user from PostgreSQL.
      expectUnavailable(await signIn(), 'database');
      const ready = await readiness();
      expect(ready.status).toBe(503);
      expect(Number(ready.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(ready.body).toEqual({
        status: 'unavailable',
        checks: { postgres: 'down', redis: 'up', storage: 'up' },
      });
      expect((await api.request('/healthz')).status).toBe(200);
      expect(api.app.running(), api.app.output()).toBe(true);
    } finally {
      await pgServer.start();
    }
    await eventually(async () => (await listJobs()).status === 200, {
      what: 'GET /jobs to answer 200 again',
    });
    const ready = await readiness();
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ status: 'ready' });
    expect(api.app.running(), api.app.output()).toBe(true);
  });

  it('PostgreSQL restarted (pg_ctl restart -m fast): the API keeps running and answers', async () => {
    expect((await listJobs()).status).toBe(200);
    await pgServer.restart();
    await eventually(async () => (await listJobs()).status === 200, { what: 'GET /jobs after the restart' });
    expect(api.app.running(), api.app.output()).toBe(true);
  });

  it('Redis down: 503 naming Redis, /readyz says redis is down; back (empty): 200', async () => {
    const jobId = await fleet.createJob({
      name: 'triggered while Redis is away',
      type: 'DUMMY',
      schedule: { type: 'INTERVAL', intervalSeconds: 3600 },
      payload: {},
    });
    const trigger = () =>
      api.request(`/api/v1/jobs/${jobId}/trigger`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          'idempotency-key': 'while-redis-is-away',
        },
        body: '{}',
      });
    expect((await signIn()).status).toBe(401);
    await redisServer.stop();
    try {
      // The sign-in throttle lives in Redis, and so do the queues.
      expectUnavailable(await signIn(), 'redis');
      expectUnavailable(await trigger(), 'redis');
      const ready = await readiness();
      expect(ready.status).toBe(503);
      expect(ready.body).toEqual({
        status: 'unavailable',
        checks: { postgres: 'up', redis: 'down', storage: 'up' },
      });
      // What does not need Redis goes on.
      expect((await listJobs()).status).toBe(200);
      expect((await api.request('/healthz')).status).toBe(200);
      expect(api.app.running(), api.app.output()).toBe(true);
    } finally {
      await redisServer.start();
    }
    await eventually(async () => (await signIn('correct horse battery')).status === 200, {
      what: 'sign-in to succeed again',
    });
    expect((await readiness()).status).toBe(200);
    // The retry the 503 invited, with the same Idempotency-Key, gets one run.
    const retried = await trigger();
    expect([200, 202], retried.text).toContain(retried.status);
    expect((await trigger()).body.runId).toBe(retried.body.runId);
    expect(api.app.running(), api.app.output()).toBe(true);
    // Its Redis connection's errors were handled (logged once), not thrown as unhandled events.
    expect(api.app.output()).not.toMatch(/Unhandled error event|uncaught/i);
    expect(api.app.output()).toMatch(/redis connection lost/);
    expect(api.app.output()).toMatch(/redis connection restored/);
  });
});

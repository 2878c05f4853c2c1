import { reportSchedulerSkew, schedulerSkewKey } from '@chronos/queue';
import { newId } from '@chronos/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from './harness.ts';
import { expectNoSecrets } from './admin-helpers.ts';

const ALLOWED_ORIGIN = 'https://app.example';
const BODY_LIMIT = 2048;

let t: TestApi;

beforeAll(async () => {
  t = await startTestApi('ops', { CORS_ORIGINS: ALLOWED_ORIGIN, API_BODY_LIMIT_BYTES: String(BODY_LIMIT) });
});

afterAll(async () => {
  await t?.stop();
});

/** The value of the first sample of `name` carrying every given label, or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
      return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

async function scrape(): Promise<string> {
  const res = await fetch(`${t.base}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.text();
}

describe('/healthz and /readyz', () => {
  it('answers /healthz from the process', async () => {
    const res = await fetch(`${t.base}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('is ready when PostgreSQL, Redis and object storage answer', async () => {
    const res = await fetch(`${t.base}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      status: 'ready',
      checks: { postgres: 'up', redis: 'up', storage: 'up' },
    });
  });
});

describe('/metrics', () => {
  it('counts HTTP requests by route pattern (the same for answers and errors) and status', async () => {
    const admin = await t.adminToken();
    const { id } = (await t.call('get', '/auth/me', { token: admin })).body;
    expect((await t.call('get', `/users/${id}`, { token: admin })).status).toBe(200);
    expect((await t.call('get', `/users/${newId()}`)).status).toBe(401);
    expect((await t.call('get', `/users/${newId()}`, { token: admin })).status).toBe(404);
    const text = await scrape();
    for (const status of ['200', '401', '404']) {
      const labels = { method: 'GET', route: '/api/v1/users/:id', status };
      expect(sample(text, 'chronos_http_request_duration_seconds_count', labels), status).toBe(1);
    }
    expect(text).not.toMatch(/route="\/api\/v1\/users\/[0-9A-Z]{26}"/);
  });

  it('reports runs by type and outcome, average duration, DLQ size and fire lateness from PostgreSQL', async () => {
    const owner = await t.user(['USER']);
    const jobId = newId();
    await t.db.job.create({ data: { id: jobId, ownerId: owner.id, name: 'metered', type: 'HTTP' } });
    await t.db.jobStat.create({
      data: {
        jobId,
        totalExecutions: 4,
        successfulExecutions: 2,
        failedExecutions: 1,
        totalDurationMs: 800n,
      },
    });
    await t.db.dlqEvent.createMany({
      data: (['PENDING', 'PENDING', 'RESOLVED'] as const).map((status) => ({
        id: newId(),
        jobId,
        failureReason: 'boom',
        status,
      })),
    });
    // Three runs that started a minute ago, 1, 2 and 3 seconds after they were due.
    const started = new Date(Date.now() - 60_000);
    await t.db.jobRun.createMany({
      data: [1, 2, 3].map((late) => {
        const due = new Date(started.getTime() - late * 1000);
        return {
          id: newId(),
          jobId,
          idempotencyKey: `${jobId}-${late}`,
          status: 'RUNNING' as const,
          scheduledTime: due,
          dueAt: due,
          startTime: started,
        };
      }),
    });

    const text = await scrape();
    expect(sample(text, 'chronos_runs_finished', { type: 'HTTP', outcome: 'success' })).toBe(2);
    expect(sample(text, 'chronos_runs_finished', { type: 'HTTP', outcome: 'failure' })).toBe(1);
    expect(sample(text, 'chronos_runs_finished', { type: 'HTTP', outcome: 'other' })).toBe(1);
    expect(sample(text, 'chronos_run_duration_avg_seconds', { type: 'HTTP' })).toBe(0.2);
    expect(sample(text, 'chronos_dlq_pending')).toBe(2);
    expect(sample(text, 'chronos_fire_lateness_runs')).toBe(3);
    expect(sample(text, 'chronos_fire_lateness_seconds', { quantile: '0.5' })).toBeCloseTo(2, 6);
    expect(sample(text, 'chronos_fire_lateness_seconds', { quantile: '0.95' })).toBeCloseTo(2.9, 6);
    expect(sample(text, 'chronos_fire_lateness_seconds', { quantile: '1' })).toBeCloseTo(3, 6);
    expect(Number.isFinite(sample(text, 'chronos_api_clock_skew_seconds'))).toBe(true);
    expect(sample(text, 'chronos_api_metrics_collect_errors_total')).toBeUndefined();
    expectNoSecrets({ text });
  });

  it('reports each scheduler’s clock skew shared through Redis, leaving out stale reports', async () => {
    await reportSchedulerSkew(t.deps.redis, t.prefix, 'sched-a', 12.5);
    await t.deps.redis.hset(schedulerSkewKey(t.prefix), 'sched-gone', `40|${Date.now() - 120_000}`);
    const text = await scrape();
    expect(sample(text, 'chronos_scheduler_reported_clock_skew_ms', { scheduler: 'sched-a' })).toBe(12.5);
    expect(
      sample(text, 'chronos_scheduler_reported_clock_skew_ms', { scheduler: 'sched-gone' }),
    ).toBeUndefined();
    // A stale report is removed when read, not kept in the hash forever.
    expect(await t.deps.redis.hexists(schedulerSkewKey(t.prefix), 'sched-gone')).toBe(0);
  });

  it('reports the depth of each type’s queue by state', async () => {
    const queue = t.deps.queues.get('HTTP');
    if (!queue) throw new Error('no HTTP queue');
    await queue.add('waiting', {});
    await queue.add('later', {}, { delay: 600_000 });
    try {
      const text = await scrape();
      expect(sample(text, 'chronos_queue_jobs', { type: 'HTTP', state: 'wait' })).toBe(1);
      expect(sample(text, 'chronos_queue_jobs', { type: 'HTTP', state: 'delayed' })).toBe(1);
      expect(sample(text, 'chronos_queue_jobs', { type: 'DUMMY', state: 'wait' })).toBe(0);
      // Types without an executor have no queue, so no series.
      expect(sample(text, 'chronos_queue_jobs', { type: 'EMAIL', state: 'wait' })).toBeUndefined();
    } finally {
      await queue.obliterate({ force: true });
    }
  });
});

describe('security headers, CORS, body limit, request ids', () => {
  it('sends helmet’s headers on API answers', async () => {
    const res = await t.call('get', '/auth/me');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('content-security-policy')).toMatch(/default-src 'self'/);
    expect(res.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    expect(res.headers.get('strict-transport-security')).toMatch(/max-age=/);
    expect(res.headers.get('x-powered-by')).toBeNull();
  });

  it('lets an origin listed in CORS_ORIGINS in (preflight and request), and no other', async () => {
    const preflight = (origin: string) =>
      fetch(`${t.api}/users`, {
        method: 'OPTIONS',
        headers: {
          origin,
          'access-control-request-method': 'GET',
          'access-control-request-headers': 'authorization',
        },
      });
    const allowed = await preflight(ALLOWED_ORIGIN);
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe(ALLOWED_ORIGIN);
    expect(allowed.headers.get('access-control-allow-headers')).toMatch(/authorization/i);
    const denied = await preflight('https://evil.example');
    expect(denied.headers.get('access-control-allow-origin')).toBeNull();

    const get = await t.call('get', '/auth/me', { headers: { origin: ALLOWED_ORIGIN } });
    expect(get.headers.get('access-control-allow-origin')).toBe(ALLOWED_ORIGIN);
    expect(get.headers.get('access-control-expose-headers')).toMatch(/X-Request-Id/);
    // A browser client on another origin reads the ETag to send If-Match.
    expect(get.headers.get('access-control-expose-headers')).toMatch(/ETag/);
    const other = await t.call('get', '/auth/me', { headers: { origin: 'https://evil.example' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('answers a body over API_BODY_LIMIT_BYTES with a 413 problem carrying the request id', async () => {
    const big = { email: 'a@example.test', password: 'x'.repeat(BODY_LIMIT) };
    const res = await t.call('post', '/auth/login', {
      body: big,
      headers: { 'x-request-id': 'ops-too-big' },
    });
    expect(res.status).toBe(413);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ status: 413, title: 'Content Too Large', requestId: 'ops-too-big' });
    const small = await t.call('post', '/auth/login', { body: { email: 'a@example.test', password: 'x' } });
    expect(small.status).toBe(401);
  });

  it('echoes the request id in 400, 401 and 403 problems and their X-Request-Id header', async () => {
    const user = await t.user(['USER']);
    const cases = [
      await t.call('get', '/audit-events?from=x', {
        token: await t.adminToken(),
        headers: { 'x-request-id': 'ops-400' },
      }),
      await t.call('get', '/users', { headers: { 'x-request-id': 'ops-401' } }),
      await t.call('get', '/users', { token: user.token, headers: { 'x-request-id': 'ops-403' } }),
    ];
    for (const [i, res] of cases.entries()) {
      const id = `ops-${[400, 401, 403][i]}`;
      expect(res.status).toBe([400, 401, 403][i]);
      expect(res.headers.get('x-request-id')).toBe(id);
      expect(res.body.requestId).toBe(id);
    }
  });
});

// Last: it stops this file's S3 server for good.
describe('/readyz when a dependency is down', () => {
  it('answers 503 naming object storage when the S3 server is gone', async () => {
    await t.storage.stop();
    const res = await fetch(`${t.base}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({
      status: 'unavailable',
      checks: { postgres: 'up', redis: 'up', storage: 'down' },
    });
    // The process itself is still alive.
    expect((await fetch(`${t.base}/healthz`)).status).toBe(200);
  });
});

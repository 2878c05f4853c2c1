import { RetryableJobError } from '@chronos/core';
import { afterEach, describe, expect, it } from 'vitest';
import { CircuitBreakers, CircuitOpenError, createHttpExecutor } from '../src/index.ts';
import { makeCtx, rejection, startServer, type TestServer } from './helpers.ts';

function clock(start = Date.parse('2026-01-01T00:00:00Z')) {
  const c = { now: start, read: () => c.now };
  return c;
}

describe('circuit breakers (unit)', () => {
  it('open after N consecutive failures, fail fast while open, half-open after the cool-down', () => {
    const t = clock();
    const changes: string[] = [];
    const breakers = new CircuitBreakers({
      failureThreshold: 3,
      coolDownMs: 30_000,
      clock: t.read,
      onStateChange: (key, from, to) => changes.push(`${key} ${from}→${to}`),
    });
    for (let i = 0; i < 3; i++) breakers.acquire('h:80').failure();
    expect(breakers.snapshot('h:80')).toMatchObject({ state: 'open', consecutiveFailures: 3 });

    const err = (() => {
      try {
        breakers.acquire('h:80');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(CircuitOpenError);
    expect(err).toBeInstanceOf(RetryableJobError);
    expect((err as CircuitOpenError).code).toBe('CIRCUIT_OPEN');
    expect((err as Error).message).toBe(
      'circuit open for host h:80 since 2026-01-01T00:00:00.000Z, retry after 2026-01-01T00:00:30.000Z',
    );
    // Other hosts are unaffected.
    breakers.acquire('other:80').success();

    t.now += 30_000;
    const trial = breakers.acquire('h:80');
    expect(breakers.snapshot('h:80').state).toBe('half-open');
    // Only one trial at a time.
    expect(() => breakers.acquire('h:80')).toThrow(CircuitOpenError);
    trial.success();
    expect(breakers.snapshot('h:80')).toMatchObject({ state: 'closed', consecutiveFailures: 0 });
    expect(changes).toEqual(['h:80 closed→open', 'h:80 open→half-open', 'h:80 half-open→closed']);
  });

  it('re-opens when the half-open trial fails, with a new cool-down', () => {
    const t = clock();
    const breakers = new CircuitBreakers({ failureThreshold: 1, coolDownMs: 1000, clock: t.read });
    breakers.acquire('h:443').failure();
    t.now += 1000;
    breakers.acquire('h:443').failure();
    expect(breakers.snapshot('h:443')).toMatchObject({ state: 'open', openedAt: new Date(t.now) });
    t.now += 999;
    expect(() => breakers.acquire('h:443')).toThrow(/retry after/);
  });

  it('a released trial (aborted run) lets the next request try', () => {
    const t = clock();
    const breakers = new CircuitBreakers({ failureThreshold: 1, coolDownMs: 0, clock: t.read });
    breakers.acquire('h:80').failure();
    breakers.acquire('h:80').release();
    expect(breakers.snapshot('h:80').state).toBe('half-open');
    breakers.acquire('h:80').success();
    expect(breakers.snapshot('h:80').state).toBe('closed');
  });

  it('each scope has its own breaker for a target; an open error carries the remaining open time', () => {
    const t = clock();
    const changes: string[] = [];
    const breakers = new CircuitBreakers({
      failureThreshold: 2,
      coolDownMs: 30_000,
      clock: t.read,
      onStateChange: (target, from, to, scope) => changes.push(`${scope} ${target} ${from}→${to}`),
    });
    breakers.acquire('h:80', 'jobA').failure();
    breakers.acquire('h:80', 'jobA').failure();
    expect(breakers.snapshot('h:80', 'jobA').state).toBe('open');
    expect(breakers.snapshot('h:80', 'jobB').state).toBe('closed');
    expect(breakers.snapshot('h:80').state).toBe('closed');
    breakers.acquire('h:80', 'jobB').success();
    breakers.acquire('h:80').success();

    t.now += 10_000;
    const err = (() => {
      try {
        breakers.acquire('h:80', 'jobA');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(CircuitOpenError);
    expect(err).toMatchObject({ code: 'CIRCUIT_OPEN', host: 'h:80', retryAfterMs: 20_000 });

    t.now += 20_000;
    const trial = breakers.acquire('h:80', 'jobA');
    // While A's trial is in flight A fails fast (nothing left to wait for but the trial); B does not.
    expect(() => breakers.acquire('h:80', 'jobA')).toThrow(expect.objectContaining({ retryAfterMs: 0 }));
    breakers.acquire('h:80', 'jobB').success();
    trial.success();
    expect(changes).toEqual([
      'jobA h:80 closed→open',
      'jobA h:80 open→half-open',
      'jobA h:80 half-open→closed',
    ]);
  });

  it('a success resets the consecutive count; settling twice counts once', () => {
    const breakers = new CircuitBreakers({ failureThreshold: 3 });
    breakers.acquire('h:80').failure();
    breakers.acquire('h:80').failure();
    breakers.acquire('h:80').success();
    const p = breakers.acquire('h:80');
    p.failure();
    p.failure();
    breakers.acquire('h:80').failure();
    expect(breakers.snapshot('h:80')).toMatchObject({ state: 'closed', consecutiveFailures: 2 });
  });
});

describe('circuit breakers in the HTTP executor', () => {
  let s: TestServer;
  afterEach(() => s.close());

  it('count 5xx, 429 and network errors but not 4xx; fail fast without a request while open', async () => {
    let status = 503;
    s = await startServer((_req, res) => {
      res.statusCode = status;
      res.end();
    });
    const t = clock();
    const breakers = new CircuitBreakers({ failureThreshold: 3, coolDownMs: 30_000, clock: t.read });
    const run = createHttpExecutor();
    const ctx = () => makeCtx({ breakers });
    const key = `127.0.0.1:${s.port}`;
    const job = ctx().jobId; // the executor's breakers are the job's own

    expect(await rejection(() => run({ httpUrl: s.origin }, ctx()))).toMatchObject({ code: 'HTTP_5XX' });
    status = 404;
    expect(await rejection(() => run({ httpUrl: s.origin }, ctx()))).toMatchObject({ code: 'HTTP_4XX' });
    expect(breakers.snapshot(key, job).consecutiveFailures).toBe(0); // the 4xx answered: host is up
    status = 429;
    for (let i = 0; i < 3; i++) await rejection(() => run({ httpUrl: s.origin }, ctx()));
    expect(breakers.snapshot(key, job).state).toBe('open');
    expect(s.requests).toHaveLength(5);

    const fast = await rejection(() => run({ httpUrl: s.origin }, ctx()));
    expect(fast).toBeInstanceOf(CircuitOpenError);
    expect(fast.code).toBe('CIRCUIT_OPEN');
    expect(s.requests).toHaveLength(5);

    t.now += 30_000;
    status = 200;
    expect((await run({ httpUrl: s.origin }, ctx())).output).toMatchObject({ status: 200 });
    expect(breakers.snapshot(key, job).state).toBe('closed');
    expect(s.requests).toHaveLength(6);
  });

  it("one job's failing endpoint opens that job's breaker, never another job's on the same host", async () => {
    s = await startServer((req, res) => {
      res.statusCode = req.url === '/fail' ? 503 : 200;
      res.end();
    });
    const t = clock();
    const breakers = new CircuitBreakers({ failureThreshold: 3, coolDownMs: 30_000, clock: t.read });
    const run = createHttpExecutor();
    const jobA = (attempt = 1) => makeCtx({ breakers, jobId: '01JJOBAAAAAAAAAAAAAAAAAAAA', attempt });
    const jobB = () => makeCtx({ breakers, jobId: '01JJOBBBBBBBBBBBBBBBBBBBBB' });
    const key = `127.0.0.1:${s.port}`;

    for (let i = 1; i <= 3; i++) {
      expect(await rejection(() => run({ httpUrl: `${s.origin}/fail` }, jobA(i)))).toMatchObject({
        code: 'HTTP_5XX',
      });
      // B on the same host, interleaved with A's failures, neither fails nor resets A's count.
      expect((await run({ httpUrl: `${s.origin}/ok` }, jobB())).output).toMatchObject({ status: 200 });
    }
    expect(breakers.snapshot(key, '01JJOBAAAAAAAAAAAAAAAAAAAA')).toMatchObject({
      state: 'open',
      consecutiveFailures: 3,
    });
    expect(breakers.snapshot(key, '01JJOBBBBBBBBBBBBBBBBBBBBB').state).toBe('closed');

    const fast = await rejection(() => run({ httpUrl: `${s.origin}/fail` }, jobA()));
    expect(fast).toBeInstanceOf(CircuitOpenError);
    expect(fast).toMatchObject({ code: 'CIRCUIT_OPEN', retryAfterMs: 30_000 });
    expect(s.requests.map((r) => r.url)).toEqual(['/fail', '/ok', '/fail', '/ok', '/fail', '/ok']);
    expect((await run({ httpUrl: `${s.origin}/ok` }, jobB())).output).toMatchObject({ status: 200 });
    expect(s.requests).toHaveLength(7);

    // A's own breaker still half-opens after the cool-down and re-opens on a failed trial…
    t.now += 30_000;
    expect(await rejection(() => run({ httpUrl: `${s.origin}/fail` }, jobA()))).toMatchObject({
      code: 'HTTP_5XX',
    });
    expect(breakers.snapshot(key, '01JJOBAAAAAAAAAAAAAAAAAAAA').state).toBe('open');
    expect(await rejection(() => run({ httpUrl: `${s.origin}/fail` }, jobA()))).toMatchObject({
      code: 'CIRCUIT_OPEN',
    });
    // …and closes on a successful one.
    t.now += 30_000;
    expect((await run({ httpUrl: `${s.origin}/ok` }, jobA())).output).toMatchObject({ status: 200 });
    expect(breakers.snapshot(key, '01JJOBAAAAAAAAAAAAAAAAAAAA').state).toBe('closed');
    expect(s.requests).toHaveLength(9);
  });

  it('count connection failures per host:port', async () => {
    s = await startServer(() => {});
    await s.close();
    const breakers = new CircuitBreakers({ failureThreshold: 2 });
    const run = createHttpExecutor();
    for (let i = 0; i < 2; i++) {
      expect(await rejection(() => run({ httpUrl: s.origin }, makeCtx({ breakers })))).toMatchObject({
        code: 'NETWORK',
      });
    }
    expect(await rejection(() => run({ httpUrl: s.origin }, makeCtx({ breakers })))).toMatchObject({
      code: 'CIRCUIT_OPEN',
    });
    s = await startServer((_req, res) => res.end());
  });
});

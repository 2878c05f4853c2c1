// Fault: more requests than the API can serve at once. Past API_MAX_IN_FLIGHT it answers 503 with
// Retry-After at once instead of queueing (at twice its capacity, 89 % of requests used to time out
// after 10 s with none refused); the probes answer throughout; held requests still complete.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiProcess, type ApiProcess } from './api-process.ts';
import { stopAllApps } from './app-process.ts';
import { createFleet, type Fleet } from './fleet.ts';

const MAX_IN_FLIGHT = 4;
/** No answer may take longer than this (a refused one, a held one once released). */
const DEADLINE_MS = 30_000;

let fleet: Fleet;
let api: ApiProcess;
let token: string;

beforeAll(async () => {
  fleet = await createFleet('api_load');
  api = await startApiProcess(fleet, { API_MAX_IN_FLIGHT: String(MAX_IN_FLIGHT) });
  token = await api.signIn();
});
afterAll(async () => {
  await stopAllApps();
  await fleet?.close();
});

interface Outcome {
  status: number;
  retryAfter: string | null;
}

/** GET /jobs as the admin, given up (status 0) after the deadline. */
async function listJobs(): Promise<Outcome> {
  try {
    const res = await fetch(`${api.base}/api/v1/jobs`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(DEADLINE_MS),
    });
    await res.arrayBuffer();
    return { status: res.status, retryAfter: res.headers.get('retry-after') };
  } catch {
    return { status: 0, retryAfter: null };
  }
}

/** Calls /healthz until `done` settles; returns every status it got. */
async function probeUntil(done: Promise<unknown>): Promise<number[]> {
  let over = false;
  void done.finally(() => (over = true));
  const statuses: number[] = [];
  while (!over) {
    const res = await fetch(`${api.base}/healthz`, { signal: AbortSignal.timeout(DEADLINE_MS) });
    statuses.push(res.status);
    await res.arrayBuffer();
  }
  return statuses;
}

/** API sessions on the fleet's database waiting for a lock. */
async function waitingOnLock(client: pg.Client): Promise<number> {
  const { rows } = await client.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND application_name = 'chronos-api' AND wait_event_type = 'Lock'`,
  );
  return rows[0]?.n ?? 0;
}

describe('an API flooded with requests', () => {
  it('serves API_MAX_IN_FLIGHT of them, refuses the rest at once with 503 and Retry-After, answers the probes, and completes the held ones', async () => {
    // Every authenticated request reads `users`: a lock on it holds whatever the API admits.
    const locker = new pg.Client({ connectionString: fleet.tdb.url });
    const observer = new pg.Client({ connectionString: fleet.tdb.url });
    await locker.connect();
    await observer.connect();
    const total = 10 * MAX_IN_FLIGHT;
    const answered: Outcome[] = [];
    let flood: Promise<Outcome[]> | undefined;
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE users IN ACCESS EXCLUSIVE MODE');
      flood = Promise.all(
        Array.from({ length: total }, async () => {
          const outcome = await listJobs();
          answered.push(outcome);
          return outcome;
        }),
      );
      // The admitted requests wait for the lock; every other one is answered meanwhile.
      await expect.poll(() => waitingOnLock(observer), { timeout: DEADLINE_MS }).toBe(MAX_IN_FLIGHT);
      await expect.poll(() => answered.length, { timeout: DEADLINE_MS }).toBe(total - MAX_IN_FLIGHT);
      expect(
        answered.every((a) => a.status === 503 && a.retryAfter === '1'),
        JSON.stringify(answered),
      ).toBe(true);
      expect((await fetch(`${api.base}/healthz`)).status).toBe(200);
      const ready = await fetch(`${api.base}/readyz`);
      expect(ready.status).toBe(200);
      expect(await waitingOnLock(observer)).toBe(MAX_IN_FLIGHT);
    } finally {
      await locker.query('COMMIT').catch(() => {});
      await locker.end();
      await observer.end();
    }
    const outcomes = await flood;
    expect(outcomes.filter((o) => o.status === 200)).toHaveLength(MAX_IN_FLIGHT);
    expect(outcomes.filter((o) => o.status === 503)).toHaveLength(total - MAX_IN_FLIGHT);
    expect((await listJobs()).status).toBe(200);
    expect(api.app.running(), api.app.output()).toBe(true);
  });

  it('under a burst of many times its limit answers every request, 200 or 503 with Retry-After, none past the deadline, and /healthz throughout', async () => {
    const flood = Promise.all(Array.from({ length: 400 }, listJobs));
    const probes = await probeUntil(flood);
    const outcomes = await flood;
    expect(outcomes.filter((o) => o.status === 0)).toEqual([]);
    const statuses = new Set(outcomes.map((o) => o.status));
    expect(
      [...statuses].every((s) => s === 200 || s === 503),
      [...statuses].join(),
    ).toBe(true);
    expect(outcomes.filter((o) => o.status === 503).every((o) => o.retryAfter === '1')).toBe(true);
    expect(probes.length).toBeGreaterThan(0);
    expect(probes.every((s) => s === 200)).toBe(true);
    expect(api.app.running(), api.app.output()).toBe(true);
  });
});

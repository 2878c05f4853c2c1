// Fault: PostgreSQL goes away under a running fleet (an operator's `pg_ctl restart -m fast`, a
// failover, a stop of a few seconds). Nothing may stop: the worker and the scheduler keep running,
// runs that finish meanwhile have their outcome recorded once PostgreSQL is back (once, never only
// in Redis), and scheduling resumes.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../helpers.ts';
import { stopAllApps } from './app-process.ts';
import { createFleet, type Fleet } from './fleet.ts';
import { startPostgres, type OwnPostgres } from './servers.ts';

let pgServer: OwnPostgres;
let fleet: Fleet;

beforeAll(async () => {
  pgServer = await startPostgres();
  fleet = await createFleet('pg_restart', { postgresUrl: pgServer.url });
});
afterEach(async () => {
  await stopAllApps();
  await pgServer.start();
});
afterAll(async () => {
  await stopAllApps();
  await fleet?.close();
  await pgServer?.close();
});

const runsOf = (jobId: string) => fleet.runsOf(jobId);

describe('when PostgreSQL goes away and comes back', () => {
  it('the worker and the scheduler keep running, every run finished meanwhile is recorded once, and scheduling resumes', async () => {
    const worker = fleet.start('worker', { WORKER_TYPES: 'DUMMY' });
    const scheduler = fleet.start('scheduler');
    await worker.waitForLine(/worker ready/);
    await scheduler.waitForLine(/scheduler started/);
    const jobId = await fleet.everySecond('survives a database outage', 1500);

    // Runs are in flight (each takes 1.5 s, one starts every second) when PostgreSQL stops.
    const inFlight = await eventually(
      async () => {
        const runs = await runsOf(jobId);
        const running = runs.filter((r) => r.status === 'RUNNING');
        return runs.some((r) => r.status === 'SUCCESS') && running.length > 0 ? running : undefined;
      },
      { timeoutMs: 60_000, what: 'a successful run and a run in flight' },
    );
    await pgServer.stop();
    // The outage lasts longer than a run: the runs in flight finish while nothing can be recorded.
    const downSince = Date.now();
    await eventually(() => Date.now() - downSince > 3000, { what: 'a 3 s outage', intervalMs: 100 });
    expect(worker.running(), worker.output()).toBe(true);
    expect(scheduler.running(), scheduler.output()).toBe(true);
    await pgServer.start();
    const backAt = new Date();

    // Every run that was in flight ends recorded: SUCCESS, in its first attempt, once.
    await eventually(
      async () => {
        const runs = await runsOf(jobId);
        return inFlight.every((r) => runs.find((x) => x.id === r.id)?.status === 'SUCCESS');
      },
      { timeoutMs: 60_000, what: 'the runs in flight during the outage to be recorded SUCCESS' },
    );
    // Scheduling resumes: slots after the outage run and succeed.
    await eventually(
      async () =>
        (await runsOf(jobId)).filter((r) => r.status === 'SUCCESS' && r.scheduled_time > backAt).length >= 2,
      { timeoutMs: 60_000, what: 'runs of slots after the outage to succeed' },
    );
    expect(worker.running(), worker.output()).toBe(true);
    expect(scheduler.running(), scheduler.output()).toBe(true);

    // Nothing is stuck or doubled: every slot due well before now is finished, each in one attempt
    // (no second attempt of a run whose outcome was only late), no key twice.
    const runs = await fleet.settled(jobId, new Date(Date.now() - 5000));
    const keys = runs.map((r) => r.idempotency_key);
    expect(new Set(keys).size).toBe(keys.length);
    expect(runs.filter((r) => r.attempt !== 1)).toEqual([]);
    // A slot that could not be recorded while the database was away may be missed (recorded
    // SKIPPED_MISFIRE by the policy) but never fails.
    expect(runs.filter((r) => r.status === 'FAILURE' || r.status === 'TIMEOUT')).toEqual([]);
  });

  it('a fast restart (pg_ctl restart -m fast) under load stops nothing', async () => {
    const worker = fleet.start('worker', { WORKER_TYPES: 'DUMMY' });
    const scheduler = fleet.start('scheduler');
    await worker.waitForLine(/worker ready/);
    await scheduler.waitForLine(/scheduler started/);
    const jobId = await fleet.everySecond('survives a fast restart', 300);
    await eventually(async () => (await runsOf(jobId)).filter((r) => r.status === 'SUCCESS').length >= 2, {
      timeoutMs: 60_000,
      what: 'two successful runs',
    });
    await pgServer.restart();
    const backAt = new Date();
    await eventually(
      async () =>
        (await runsOf(jobId)).filter((r) => r.status === 'SUCCESS' && r.scheduled_time > backAt).length >= 2,
      { timeoutMs: 60_000, what: 'runs after the restart to succeed' },
    );
    expect(worker.running(), worker.output()).toBe(true);
    expect(scheduler.running(), scheduler.output()).toBe(true);
    const runs = await fleet.settled(jobId, new Date(Date.now() - 5000));
    const keys = runs.map((r) => r.idempotency_key);
    expect(new Set(keys).size).toBe(keys.length);
  });
});

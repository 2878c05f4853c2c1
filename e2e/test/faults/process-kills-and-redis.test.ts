// Faults that hold and must keep holding: a worker or a scheduler killed with SIGKILL, and a Redis
// that restarts empty (nothing persisted: every queued BullMQ job is gone). PostgreSQL is the truth:
// no slot is lost, none runs twice, none stays QUEUED or RUNNING.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../helpers.ts';
import { stopAllApps } from './app-process.ts';
import { createFleet, type Fleet, type RunRow } from './fleet.ts';
import { startRedis, type OwnRedis } from './servers.ts';

let redisServer: OwnRedis;
let fleet: Fleet;

beforeAll(async () => {
  redisServer = await startRedis();
  fleet = await createFleet('kills', { redisUrl: redisServer.url });
});
afterEach(async () => {
  await stopAllApps();
  await redisServer.start();
});
afterAll(async () => {
  await stopAllApps();
  await fleet?.close();
  await redisServer?.close();
});

const runsOf = (jobId: string) => fleet.runsOf(jobId);

function succeededOncePerSlot(runs: RunRow[]): void {
  const successes = runs.filter((r) => r.status === 'SUCCESS').map((r) => r.scheduled_time.toISOString());
  expect(new Set(successes).size).toBe(successes.length);
}

describe('faults that must keep holding', () => {
  it('a worker killed with SIGKILL mid-run: another worker takes the run over and it succeeds, once', async () => {
    const doomed = fleet.start('worker', { WORKER_TYPES: 'DUMMY', WORKER_ID: 'doomed' });
    const scheduler = fleet.start('scheduler');
    await doomed.waitForLine(/worker ready/);
    await scheduler.waitForLine(/scheduler started/);
    const jobId = await fleet.createJob({
      name: 'outlives its worker',
      type: 'DUMMY',
      schedule: { type: 'ONCE', runAt: new Date(Date.now() + 1000) },
      payload: { metadata: { sleepMs: 3000 } },
    });
    const [running] = await eventually(
      async () => {
        const runs = await runsOf(jobId);
        return runs.some((r) => r.status === 'RUNNING' && r.worker_id === 'doomed') ? runs : undefined;
      },
      { what: 'the run to be RUNNING on the doomed worker' },
    );
    await doomed.kill();
    const survivor = fleet.start('worker', { WORKER_TYPES: 'DUMMY', WORKER_ID: 'survivor' });
    await survivor.waitForLine(/worker ready/);
    const runs = await eventually(
      async () => {
        const all = await runsOf(jobId);
        return all.some((r) => r.status === 'SUCCESS') ? all : undefined;
      },
      { timeoutMs: 90_000, what: 'the taken-over run to succeed' },
    );
    const success = runs.filter((r) => r.status === 'SUCCESS');
    expect(success).toHaveLength(1);
    expect(success[0]?.worker_id).toBe('survivor');
    expect(success[0]?.idempotency_key).toBe(running?.idempotency_key);
    expect(runs.filter((r) => r.status === 'RUNNING')).toEqual([]);
  });

  it('a scheduler killed with SIGKILL: the next one goes on, no slot is lost or fired twice', async () => {
    const worker = fleet.start('worker', { WORKER_TYPES: 'DUMMY' });
    const first = fleet.start('scheduler', { SCHEDULER_INSTANCE_ID: 'first' });
    await worker.waitForLine(/worker ready/);
    await first.waitForLine(/scheduler started/);
    const jobId = await fleet.everySecond('survives a scheduler kill', 100);
    await eventually(async () => (await runsOf(jobId)).filter((r) => r.status === 'SUCCESS').length >= 2, {
      what: 'two successful runs',
    });
    await first.kill();
    const killedAt = new Date();
    const second = fleet.start('scheduler', { SCHEDULER_INSTANCE_ID: 'second' });
    await second.waitForLine(/scheduler started/);
    await eventually(
      async () =>
        (await runsOf(jobId)).filter((r) => r.status === 'SUCCESS' && r.scheduled_time > killedAt).length >=
        2,
      { timeoutMs: 60_000, what: 'slots after the kill to run' },
    );
    const runs = await fleet.settled(jobId, new Date(Date.now() - 3000));
    const slots = runs.map((r) => `${r.scheduled_time.toISOString()}#${r.attempt}`);
    expect(new Set(slots).size).toBe(slots.length);
    succeededOncePerSlot(runs);
    expect(worker.running()).toBe(true);
  });

  it('Redis restarts empty: the worker and the scheduler reconnect, the reconciler re-enqueues what was queued, nothing runs twice', async () => {
    const worker = fleet.start('worker', { WORKER_TYPES: 'DUMMY' });
    const scheduler = fleet.start('scheduler');
    await worker.waitForLine(/worker ready/);
    await scheduler.waitForLine(/scheduler started/);
    const jobId = await fleet.everySecond('survives an empty Redis', 200);
    // The horizon is planned ahead: slots are QUEUED in PostgreSQL with delayed BullMQ jobs.
    await eventually(
      async () => {
        const runs = await runsOf(jobId);
        return runs.some((r) => r.status === 'SUCCESS') && runs.some((r) => r.status === 'QUEUED');
      },
      { what: 'a successful run and queued slots' },
    );
    await redisServer.stop();
    await redisServer.start();
    const backAt = new Date();
    await eventually(
      async () =>
        (await runsOf(jobId)).filter((r) => r.status === 'SUCCESS' && r.scheduled_time > backAt).length >= 2,
      { timeoutMs: 60_000, what: 'slots after the Redis restart to run' },
    );
    expect(worker.running(), worker.output()).toBe(true);
    expect(scheduler.running(), scheduler.output()).toBe(true);
    const runs = await fleet.settled(jobId, new Date(Date.now() - 3000));
    succeededOncePerSlot(runs);
  });
});

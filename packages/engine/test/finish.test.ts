import { slotKey } from '@chronos/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  PAUSED_BEFORE_START,
  bullJobId,
  finishRun,
  pauseJob,
  recordSlots,
  startRun,
  type FinishInput,
} from '../src/index.ts';
import { createJob, harness, type Harness } from './fixtures.ts';

let h: Harness;
beforeAll(async () => {
  h = await harness('engine-finish');
});
afterEach(async () => {
  await h.db.job.deleteMany();
  await h.db.notification.deleteMany();
  for (const q of h.queues.values()) await q.obliterate({ force: true });
});
afterAll(async () => {
  await h?.close();
});

let slotSeq = 0;
/** Records a fresh slot of `jobId`, starts it, finishes it as told; returns the finish result and run id. */
async function attempt(jobId: string, finish: Omit<FinishInput, 'runId' | 'lockToken'>) {
  const t = new Date(Date.now() - 1000 - slotSeq++ * 1000);
  const [row] = await h.db.$transaction((tx) =>
    recordSlots(tx, [
      {
        jobId,
        key: slotKey(jobId, t),
        status: 'QUEUED',
        trigger: 'SCHEDULED',
        scheduledTime: t,
        dueAt: new Date(),
        reason: null,
        definitionVersion: 1,
      },
    ]),
  );
  return runAttempt(row!.id, finish);
}
async function runAttempt(runId: string, finish: Omit<FinishInput, 'runId' | 'lockToken'>) {
  const d = await startRun(h.db, { runId, workerId: 'w', misfireThresholdSeconds: 3600 });
  if (d.action !== 'RUN') throw new Error(`not started: ${JSON.stringify(d)}`);
  const out = await finishRun(
    h.db,
    { runId, lockToken: d.lockToken, ...finish },
    { queues: h.queues, random: () => 0.5 },
  );
  return { runId, out };
}
const stats = (jobId: string) => h.db.jobStat.findUniqueOrThrow({ where: { jobId } });
const notes = (jobId: string) => h.db.notification.findMany({ where: { jobId }, orderBy: { id: 'asc' } });

describe('job statistics', () => {
  it('count every finish: totals, successes, failures, last times, consecutive failures, average duration', async () => {
    const jobId = await createJob(h, { intervalSeconds: 60 });
    await attempt(jobId, { status: 'SUCCESS' });
    await attempt(jobId, { status: 'FAILURE', errorMessage: 'x' });
    await attempt(jobId, { status: 'TIMEOUT', errorMessage: 'y' });
    const s = await stats(jobId);
    expect(s).toMatchObject({
      totalExecutions: 3,
      successfulExecutions: 1,
      failedExecutions: 2,
      consecutiveFailures: 2,
    });
    expect(s.lastSuccessAt).not.toBeNull();
    expect(s.lastFailureAt!.getTime()).toBeGreaterThanOrEqual(s.lastSuccessAt!.getTime());
    expect(s.avgDurationMs).toBeGreaterThanOrEqual(0);
    await attempt(jobId, { status: 'SUCCESS' });
    expect((await stats(jobId)).consecutiveFailures).toBe(0);
  });

  it('lose no update when many runs of a job finish at once', async () => {
    const jobId = await createJob(h, { intervalSeconds: 60 });
    await h.db.job.update({ where: { id: jobId }, data: { overlapPolicy: 'ALLOW_ALL' } });
    const t0 = Date.now() - 100_000;
    const rows = await h.db.$transaction((tx) =>
      recordSlots(
        tx,
        Array.from({ length: 20 }, (_, i) => {
          const t = new Date(t0 + i * 1000);
          return {
            jobId,
            key: slotKey(jobId, t),
            status: 'QUEUED' as const,
            trigger: 'SCHEDULED' as const,
            scheduledTime: t,
            dueAt: new Date(),
            reason: null,
            definitionVersion: 1,
          };
        }),
      ),
    );
    const started = await Promise.all(
      rows.map((r) => startRun(h.db, { runId: r.id, workerId: 'w', misfireThresholdSeconds: 3600 })),
    );
    await Promise.all(
      started.map((d, i) =>
        d.action === 'RUN'
          ? finishRun(h.db, { runId: d.runId, lockToken: d.lockToken, status: i % 2 ? 'SUCCESS' : 'FAILURE' })
          : null,
      ),
    );
    expect(await stats(jobId)).toMatchObject({
      totalExecutions: 20,
      successfulExecutions: 10,
      failedExecutions: 10,
    });
  });
});

describe('alerts', () => {
  it('one alert when consecutive failures reach the threshold, none for further failures, one recovery', async () => {
    const jobId = await createJob(h, { intervalSeconds: 60 });
    await h.db.job.update({ where: { id: jobId }, data: { alertThreshold: 3 } });
    for (let i = 0; i < 2; i++) await attempt(jobId, { status: 'FAILURE', errorMessage: 'down' });
    expect((await notes(jobId)).filter((n) => n.templateCode === 'JOB_FAILING')).toHaveLength(0);
    for (let i = 0; i < 3; i++) await attempt(jobId, { status: 'FAILURE', errorMessage: 'down' });
    const failing = (await notes(jobId)).filter((n) => n.templateCode === 'JOB_FAILING');
    expect(failing).toHaveLength(1);
    expect(failing[0]?.payload).toMatchObject({ consecutiveFailures: 3, threshold: 3 });
    expect(failing[0]?.userId).toBe(h.ownerId);
    await attempt(jobId, { status: 'SUCCESS' });
    await attempt(jobId, { status: 'SUCCESS' });
    expect((await notes(jobId)).filter((n) => n.templateCode === 'JOB_RECOVERED')).toHaveLength(1);
  });
});

describe('retries', () => {
  it('a failure matching retry_on queues the next attempt with the same key after the backoff; each attempt is a row', async () => {
    const jobId = await createJob(h, { intervalSeconds: 60 });
    await h.db.retryPolicy.create({
      data: {
        jobId,
        maxAttempts: 3,
        backoffStrategy: 'EXPONENTIAL',
        backoffSeconds: 10,
        retryOn: ['HTTP_5XX'],
        jitter: false,
      },
    });
    const first = await attempt(jobId, {
      status: 'FAILURE',
      errorCode: 'HTTP_5XX',
      httpStatus: 503,
      errorMessage: '503',
    });
    expect(first.out.retry?.attempt).toBe(2);
    const r1 = await h.db.jobRun.findUniqueOrThrow({ where: { id: first.runId } });
    const r2 = await h.db.jobRun.findUniqueOrThrow({ where: { id: first.out.retry!.runId } });
    expect(r2).toMatchObject({
      idempotencyKey: r1.idempotencyKey,
      attempt: 2,
      status: 'QUEUED',
      trigger: 'RETRY',
      retryOfId: r1.id,
    });
    expect(r2.dueAt!.getTime() - r1.endTime!.getTime()).toBe(10_000);
    expect(r2.scheduledTime).toEqual(r1.scheduledTime);
    const bull = await h.queues.get('DUMMY')!.getJob(bullJobId(r1.idempotencyKey, 2));
    expect(await bull?.getState()).toBe('delayed');

    const second = await runAttempt(r2.id, { status: 'FAILURE', errorCode: 'HTTP_5XX', errorMessage: '503' });
    const r3 = await h.db.jobRun.findUniqueOrThrow({ where: { id: second.out.retry!.runId } });
    expect(
      r3.dueAt!.getTime() -
        (await h.db.jobRun.findUniqueOrThrow({ where: { id: r2.id } })).endTime!.getTime(),
    ).toBe(20_000);
    // The last attempt fails: dead-lettered, not retried.
    const third = await runAttempt(r3.id, {
      status: 'FAILURE',
      errorCode: 'HTTP_5XX',
      errorMessage: '503 again',
    });
    expect(third.out.retry).toBeUndefined();
    const dlq = await h.db.dlqEvent.findUniqueOrThrow({ where: { id: third.out.dlqEventId! } });
    expect(dlq).toMatchObject({ status: 'PENDING', runId: r3.id, jobId });
    expect(dlq.failureReason).toMatch(/FAILURE \(HTTP_5XX\): 503 again — after 3 attempts/);
    expect((await notes(jobId)).filter((n) => n.templateCode === 'RUN_DEAD_LETTERED')).toHaveLength(1);
  });

  it('without retry_on, a transient failure is retried until the attempts run out: three attempts, one DLQ entry', async () => {
    const jobId = await createJob(h, { intervalSeconds: 60 });
    await h.db.retryPolicy.create({ data: { jobId, maxAttempts: 3, backoffSeconds: 1, jitter: false } });
    const transient = {
      status: 'FAILURE',
      errorCode: 'DUMMY_FAILURE',
      retryable: true,
      errorMessage: 'flaky',
    } as const;
    const first = await attempt(jobId, transient);
    expect(first.out.retry?.attempt).toBe(2);
    const second = await runAttempt(first.out.retry!.runId, transient);
    expect(second.out.retry?.attempt).toBe(3);
    const third = await runAttempt(second.out.retry!.runId, transient);
    expect(third.out.retry).toBeUndefined();
    expect(third.out.dlqEventId).toBeDefined();
    const runs = await h.db.jobRun.findMany({ where: { jobId }, orderBy: { attempt: 'asc' } });
    expect(runs.map((r) => [r.attempt, r.status, r.errorCode])).toEqual([
      [1, 'FAILURE', 'DUMMY_FAILURE'],
      [2, 'FAILURE', 'DUMMY_FAILURE'],
      [3, 'FAILURE', 'DUMMY_FAILURE'],
    ]);
    expect(await h.db.dlqEvent.count({ where: { jobId } })).toBe(1);
  });

  it.each([
    ['a PermanentJobError', { errorCode: 'DUMMY_FAILURE', retryable: false }],
    ['an HTTP 404', { errorCode: 'HTTP_4XX', httpStatus: 404, retryable: false }],
    ['an invalid payload (no class given: its code decides)', { errorCode: 'INVALID_PAYLOAD' }],
  ])('without retry_on, %s is permanent: one attempt, straight to the DLQ', async (_name, failure) => {
    const jobId = await createJob(h, { intervalSeconds: 60 });
    await h.db.retryPolicy.create({ data: { jobId, maxAttempts: 3, backoffSeconds: 1, jitter: false } });
    const { out } = await attempt(jobId, { status: 'FAILURE', errorMessage: 'no', ...failure });
    expect(out.retry).toBeUndefined();
    const dlq = await h.db.dlqEvent.findUniqueOrThrow({ where: { id: out.dlqEventId! } });
    expect(dlq.failureReason).toMatch(/not retried: a permanent failure/);
    expect(await h.db.jobRun.count({ where: { jobId } })).toBe(1);
  });

  it('a retry_on list replaces the default: a transient failure it does not list is dead-lettered', async () => {
    const jobId = await createJob(h, { intervalSeconds: 60 });
    await h.db.retryPolicy.create({ data: { jobId, maxAttempts: 3, retryOn: ['HTTP_5XX'] } });
    const { out } = await attempt(jobId, { status: 'FAILURE', errorCode: 'DUMMY_FAILURE', retryable: true });
    expect(out.retry).toBeUndefined();
    expect(out.dlqEventId).toBeDefined();
  });

  it("the target's Retry-After is a floor on the backoff", async () => {
    const jobId = await createJob(h, { intervalSeconds: 60 });
    await h.db.retryPolicy.create({ data: { jobId, maxAttempts: 3, backoffSeconds: 1, jitter: false } });
    const { runId, out } = await attempt(jobId, {
      status: 'FAILURE',
      errorCode: 'HTTP_5XX',
      httpStatus: 503,
      retryable: true,
      retryAfterMs: 42_000,
    });
    const failed = await h.db.jobRun.findUniqueOrThrow({ where: { id: runId } });
    expect(out.retry!.dueAt.getTime() - failed.endTime!.getTime()).toBe(42_000);
  });

  it('a failure not listed in retry_on is permanent: no retry, straight to the DLQ', async () => {
    const jobId = await createJob(h, { intervalSeconds: 60 });
    await h.db.retryPolicy.create({ data: { jobId, maxAttempts: 5, retryOn: ['TIMEOUT'] } });
    const { out } = await attempt(jobId, { status: 'FAILURE', errorCode: 'HTTP_4XX', httpStatus: 404 });
    expect(out.retry).toBeUndefined();
    expect(out.dlqEventId).toBeDefined();
  });

  it('a failure of a job paused while it ran records the next attempt SKIPPED_PAUSED: not queued, not dead-lettered', async () => {
    const jobId = await createJob(h, { intervalSeconds: 60 });
    await h.db.retryPolicy.create({ data: { jobId, maxAttempts: 3, retryOn: ['HTTP_5XX'], jitter: false } });
    const t = new Date(Date.now() - 1000);
    const [row] = await h.db.$transaction((tx) =>
      recordSlots(tx, [
        {
          jobId,
          key: slotKey(jobId, t),
          status: 'QUEUED',
          trigger: 'SCHEDULED',
          scheduledTime: t,
          dueAt: t,
          reason: null,
          definitionVersion: 1,
        },
      ]),
    );
    const d = await startRun(h.db, { runId: row!.id, workerId: 'w', misfireThresholdSeconds: 3600 });
    if (d.action !== 'RUN') throw new Error(`not started: ${JSON.stringify(d)}`);
    await pauseJob(h, jobId);
    const out = await finishRun(
      h.db,
      {
        runId: row!.id,
        lockToken: d.lockToken,
        status: 'FAILURE',
        errorCode: 'HTTP_5XX',
        errorMessage: '503',
      },
      { queues: h.queues },
    );
    expect(out).toEqual({ accepted: true });
    const next = await h.db.jobRun.findFirstOrThrow({ where: { jobId, attempt: 2 } });
    expect(next).toMatchObject({
      status: 'SKIPPED_PAUSED',
      trigger: 'RETRY',
      retryOfId: row!.id,
      reason: `${PAUSED_BEFORE_START} (retry 2/3 after HTTP_5XX)`,
    });
    expect(await h.queues.get('DUMMY')!.getJob(bullJobId(row!.idempotency_key, 2))).toBeUndefined();
    expect(await h.db.dlqEvent.count({ where: { jobId } })).toBe(0);
    // The failure itself is counted as any failure is; the job stays paused.
    expect((await stats(jobId)).failedExecutions).toBe(1);
    expect((await h.db.job.findUniqueOrThrow({ where: { id: jobId } })).status).toBe('PAUSED');
  });

  it('a cancelled run is neither retried nor dead-lettered', async () => {
    const jobId = await createJob(h, { intervalSeconds: 60 });
    await h.db.retryPolicy.create({ data: { jobId, maxAttempts: 5, retryOn: ['TIMEOUT', 'NETWORK'] } });
    const { out } = await attempt(jobId, { status: 'CANCELLED' });
    expect(out).toEqual({ accepted: true });
    expect(await h.db.dlqEvent.count({ where: { jobId } })).toBe(0);
  });
});

describe('taking over a run whose worker died', () => {
  it('closes the lost attempt (WORKER_LOST), starts a new attempt with the same key, and fences the old worker', async () => {
    const jobId = await createJob(h, { intervalSeconds: 60 });
    const t = new Date(Date.now() - 1000);
    const [row] = await h.db.$transaction((tx) =>
      recordSlots(tx, [
        {
          jobId,
          key: slotKey(jobId, t),
          status: 'QUEUED',
          trigger: 'SCHEDULED',
          scheduledTime: t,
          dueAt: t,
          reason: null,
          definitionVersion: 1,
        },
      ]),
    );
    const lost = await startRun(h.db, { runId: row!.id, workerId: 'dead', misfireThresholdSeconds: 3600 });
    if (lost.action !== 'RUN') throw new Error('not started');
    // Without the takeover flag a RUNNING row is never started twice.
    expect(
      (await startRun(h.db, { runId: row!.id, workerId: 'w2', misfireThresholdSeconds: 3600 })).action,
    ).toBe('GONE');
    const taken = await startRun(h.db, {
      runId: row!.id,
      workerId: 'w2',
      misfireThresholdSeconds: 3600,
      takeover: true,
    });
    expect(taken).toMatchObject({ action: 'RUN', attempt: 2, tookOverFrom: row!.id });
    if (taken.action !== 'RUN') throw new Error('not taken over');
    expect(await finishRun(h.db, { runId: row!.id, lockToken: lost.lockToken, status: 'SUCCESS' })).toEqual({
      accepted: false,
    });
    expect(
      (await finishRun(h.db, { runId: taken.runId, lockToken: taken.lockToken, status: 'SUCCESS' })).accepted,
    ).toBe(true);
    const rows = await h.db.jobRun.findMany({
      where: { idempotencyKey: row!.idempotency_key },
      orderBy: { attempt: 'asc' },
    });
    expect(rows.map((r) => [r.attempt, r.status, r.workerId, r.errorCode])).toEqual([
      [1, 'FAILURE', 'dead', 'WORKER_LOST'],
      [2, 'SUCCESS', 'w2', null],
    ]);
  });
});

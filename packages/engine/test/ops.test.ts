import { ConflictError, NotFoundError, createMasker, slotKey } from '@chronos/core';
import { createPool, type Pool } from '@chronos/db';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Worker } from 'bullmq';
import {
  cancelRun,
  closeAbandonedRuns,
  requestCancel,
  cancelChannel,
  createRunLogger,
  finishRun,
  ignoreDlqEvent,
  poolLogSink,
  type RunLogSink,
  recordSlots,
  replayDlqEvent,
  resolveDlqEvent,
  startRun,
} from '../src/index.ts';
import { createJob, harness, type Harness } from './fixtures.ts';

let h: Harness;
let pool: Pool;
/** Where the run logs of these tests write (the worker's sink, over a pg pool). */
let sink: RunLogSink;
beforeAll(async () => {
  h = await harness('engine-ops');
  pool = createPool(h.tdb.url, { maxConnections: 2 });
  sink = poolLogSink(pool);
});
afterEach(async () => {
  await h.db.job.deleteMany();
  for (const q of h.queues.values()) await q.obliterate({ force: true });
});
afterAll(async () => {
  await pool?.end();
  await h?.close();
});

async function queuedRun(jobId: string) {
  const t = new Date(Date.now() - 500);
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
  return row!;
}

describe('cancelling a run', () => {
  it('a queued run is CANCELLED, leaves Redis, and never starts', async () => {
    const jobId = await createJob(h, { intervalSeconds: 60 });
    const row = await queuedRun(jobId);
    await h.queues.get('DUMMY')!.add('run', { runId: row.id }, { jobId: row.idempotency_key, delay: 60_000 });
    expect(await cancelRun(h, row.id, { by: 'ops@example.test' })).toBe('CANCELLED');
    const r = await h.db.jobRun.findUniqueOrThrow({ where: { id: row.id } });
    expect(r.status).toBe('CANCELLED');
    expect(r.reason).toBe('cancelled before it started by ops@example.test');
    expect(await h.queues.get('DUMMY')!.getJob(row.idempotency_key)).toBeUndefined();
    expect((await startRun(h.db, { runId: row.id, workerId: 'w', misfireThresholdSeconds: 60 })).action).toBe(
      'GONE',
    );
  });

  it('a running run: its worker is told to abort it', async () => {
    const jobId = await createJob(h, { intervalSeconds: 60 });
    const row = await queuedRun(jobId);
    await startRun(h.db, { runId: row.id, workerId: 'w', misfireThresholdSeconds: 60 });
    const sub = h.redis.duplicate();
    await sub.subscribe(cancelChannel(h.prefix));
    const heard = new Promise<string>((resolve) => sub.on('message', (_c, m: string) => resolve(m)));
    expect(await cancelRun(h, row.id)).toBe('CANCEL_REQUESTED');
    expect(await heard).toBe(row.id);
    sub.disconnect();
  });

  it('a finished run stays as it was; an unknown one is not found', async () => {
    const jobId = await createJob(h, { intervalSeconds: 60 });
    const row = await queuedRun(jobId);
    const d = await startRun(h.db, { runId: row.id, workerId: 'w', misfireThresholdSeconds: 60 });
    if (d.action !== 'RUN') throw new Error('not started');
    await finishRun(h.db, { runId: row.id, lockToken: d.lockToken, status: 'SUCCESS' });
    expect(await cancelRun(h, row.id)).toBe('ALREADY_FINISHED');
    await expect(cancelRun(h, '01JNOTARUN0000000000000000')).rejects.toThrow(NotFoundError);
  });
});

describe('the dead-letter queue', () => {
  async function deadLettered() {
    const jobId = await createJob(h, { intervalSeconds: 60 });
    const row = await queuedRun(jobId);
    const d = await startRun(h.db, { runId: row.id, workerId: 'w', misfireThresholdSeconds: 60 });
    if (d.action !== 'RUN') throw new Error('not started');
    const out = await finishRun(h.db, {
      runId: row.id,
      lockToken: d.lockToken,
      status: 'FAILURE',
      errorMessage: 'kaput',
    });
    return { jobId, dlqId: out.dlqEventId! };
  }

  it('replay queues a new run, trigger REPLAY, linked to the entry', async () => {
    const { jobId, dlqId } = await deadLettered();
    const { runId } = await replayDlqEvent(h, dlqId);
    const r = await h.db.jobRun.findUniqueOrThrow({ where: { id: runId } });
    expect(r).toMatchObject({ jobId, status: 'QUEUED', trigger: 'REPLAY', dlqEventId: dlqId, attempt: 1 });
    expect(r.idempotencyKey).toBe(`${jobId}-replay-${dlqId}-1`);
    expect(await h.queues.get('DUMMY')!.getJob(r.idempotencyKey)).toBeDefined();
    const again = await replayDlqEvent(h, dlqId);
    expect((await h.db.jobRun.findUniqueOrThrow({ where: { id: again.runId } })).idempotencyKey).toBe(
      `${jobId}-replay-${dlqId}-2`,
    );
    expect((await h.db.dlqEvent.findUniqueOrThrow({ where: { id: dlqId } })).replayCount).toBe(2);
  });

  it('replay of a paused job’s entry is refused, as a trigger is, and queues nothing', async () => {
    const { jobId, dlqId } = await deadLettered();
    await h.db.job.update({ where: { id: jobId }, data: { status: 'PAUSED', pausedAt: new Date() } });
    await expect(replayDlqEvent(h, dlqId)).rejects.toThrow(ConflictError);
    expect(await h.db.jobRun.count({ where: { jobId, trigger: 'REPLAY' } })).toBe(0);
    expect((await h.db.dlqEvent.findUniqueOrThrow({ where: { id: dlqId } })).replayCount).toBe(0);
  });

  it('resolve and ignore close an entry with notes, who and when; a closed entry cannot change again', async () => {
    const a = await deadLettered();
    await resolveDlqEvent(h, a.dlqId, { notes: 'fixed the upstream', by: 'ops@example.test' });
    expect(await h.db.dlqEvent.findUniqueOrThrow({ where: { id: a.dlqId } })).toMatchObject({
      status: 'RESOLVED',
      resolutionNotes: 'fixed the upstream',
      resolvedBy: 'ops@example.test',
      resolvedAt: expect.any(Date),
    });
    await expect(ignoreDlqEvent(h, a.dlqId)).rejects.toThrow(ConflictError);
    await expect(replayDlqEvent(h, a.dlqId)).rejects.toThrow(ConflictError);
    const b = await deadLettered();
    await ignoreDlqEvent(h, b.dlqId, { notes: 'known flake' });
    expect((await h.db.dlqEvent.findUniqueOrThrow({ where: { id: b.dlqId } })).status).toBe('IGNORED');
    await expect(resolveDlqEvent(h, '01JNOTADLQ0000000000000000')).rejects.toThrow(NotFoundError);
  });
});

describe('run logs', () => {
  it('are written in batches with level and JSON context, and masked', async () => {
    const jobId = await createJob(h, { intervalSeconds: 60 });
    const row = await queuedRun(jobId);
    const log = createRunLogger(sink, row.id, {
      batchSize: 100,
      mask: (t) => t.replaceAll('s3cr3t-value', '***'),
    });
    log.info('hello', { n: 1 });
    log.error('token s3cr3t-value leaked?', { header: 'Bearer s3cr3t-value' });
    await log.close();
    const lines = await h.db.jobRunLog.findMany({ where: { runId: row.id }, orderBy: { id: 'asc' } });
    expect(lines.map((l) => [l.level, l.message, l.context])).toEqual([
      ['INFO', 'hello', { n: 1 }],
      ['ERROR', 'token *** leaked?', { header: 'Bearer ***' }],
    ]);
  });

  it('mask a context value by value: a secret in a number, a key or a nested string never breaks its batch', async () => {
    const jobId = await createJob(h, { intervalSeconds: 60 });
    const row = await queuedRun(jobId);
    const masker = createMasker(['20261121', 'sk-live-abcdef']);
    const log = createRunLogger(sink, row.id, { mask: (t) => masker.mask(t) });
    log.info('before');
    log.info('numbers', { id: 202611210001, exact: 20261121, other: 7, big: 20261121n as unknown as number });
    log.info('keys and nesting', {
      'sk-live-abcdef': true,
      deep: [{ token: 'Bearer sk-live-abcdef', boxed: new String('sk-live-abcdef') }],
    });
    log.warn('nul \0 in text', { s: 'a\0b' });
    log.info('after');
    await log.close();
    const lines = await h.db.jobRunLog.findMany({ where: { runId: row.id }, orderBy: { id: 'asc' } });
    expect(lines.map((l) => [l.message, l.context])).toEqual([
      ['before', null],
      ['numbers', { id: '***0001', exact: '***', other: 7, big: '***' }],
      ['keys and nesting', { '***': true, deep: [{ token: 'Bearer ***', boxed: '***' }] }],
      ['nul \uFFFD in text', { s: 'a\uFFFDb' }],
      ['after', null],
    ]);
  });

  it('end once: lines after the end are not stored, and the dropped-lines line stays the last', async () => {
    const jobId = await createJob(h, { intervalSeconds: 60 });
    const row = await queuedRun(jobId);
    const log = createRunLogger(sink, row.id, { maxLines: 2 });
    for (let i = 0; i < 5; i++) log.info(`line ${i}`);
    const rest = await log.detach();
    await sink(row.id, rest);
    log.info('after the end');
    await log.close();
    expect(await log.detach()).toEqual([]);
    const lines = await h.db.jobRunLog.findMany({ where: { runId: row.id }, orderBy: { id: 'asc' } });
    expect(lines.map((l) => l.message)).toEqual([
      'line 0',
      'line 1',
      expect.stringMatching(/^3 more log lines/),
    ]);
  });

  it('lines a write could not store while the database was unreachable are handed over at the end, in order', async () => {
    const jobId = await createJob(h, { intervalSeconds: 60 });
    const row = await queuedRun(jobId);
    // A PostgreSQL that is away: nothing listens on port 1 of this host.
    const away = createPool('postgresql://postgres@127.0.0.1:1/none', { maxConnections: 1 });
    const errors: unknown[] = [];
    try {
      const log = createRunLogger(poolLogSink(away), row.id, {
        batchSize: 2,
        onError: (e) => errors.push(e),
      });
      for (let i = 0; i < 5; i++) log.info(`line ${i}`);
      const rest = await log.detach();
      expect(errors.length).toBe(2);
      await sink(row.id, rest);
    } finally {
      await away.end();
    }
    const lines = await h.db.jobRunLog.findMany({ where: { runId: row.id }, orderBy: { id: 'asc' } });
    expect(lines.map((l) => l.message)).toEqual(['line 0', 'line 1', 'line 2', 'line 3', 'line 4']);
  });

  it('use one INSERT per batch, not one per line', async () => {
    const jobId = await createJob(h, { intervalSeconds: 60 });
    const row = await queuedRun(jobId);
    let statements = 0;
    // The real sink (one statement per call), with its calls counted.
    const counted: RunLogSink = (runId, lines) => {
      statements++;
      return sink(runId, lines);
    };
    const log = createRunLogger(counted, row.id, { batchSize: 250, flushMs: 60_000 });
    for (let i = 0; i < 1000; i++) log.debug(`line ${i}`);
    await log.close();
    expect(await h.db.jobRunLog.count({ where: { runId: row.id } })).toBe(1000);
    expect(statements).toBe(4);
  });

  it('are capped per run and end with one line saying what was dropped', async () => {
    const jobId = await createJob(h, { intervalSeconds: 60 });
    const row = await queuedRun(jobId);
    const log = createRunLogger(sink, row.id, { maxLines: 50 });
    for (let i = 0; i < 120; i++) log.info(`line ${i}`);
    await log.close();
    const lines = await h.db.jobRunLog.findMany({ where: { runId: row.id }, orderBy: { id: 'asc' } });
    expect(lines).toHaveLength(51);
    expect(lines.at(-2)?.message).toBe('line 49');
    expect(lines.at(-1)?.message).toMatch(
      /^70 more log lines \(\d+ bytes\) were dropped: the run's log is capped at 50 lines/,
    );
    const bytes = createRunLogger(sink, row.id, { maxBytes: 100 });
    bytes.info('x'.repeat(60));
    bytes.info('y'.repeat(60));
    await bytes.close();
    expect(bytes.dropped).toBe(1);
  });
});

describe('a ONCE job whose queued runs are all cancelled', () => {
  it('ends CANCELLED (it follows its runs); while another run waits it keeps its status', async () => {
    const jobId = await createJob(
      h,
      { scheduleType: 'ONCE', runAt: new Date(Date.now() - 500) },
      { nextFireAt: null },
    );
    const first = await queuedRun(jobId);
    const [second] = await h.db.$transaction((tx) =>
      recordSlots(tx, [
        {
          jobId,
          key: `${jobId}-m-manual`,
          status: 'QUEUED',
          trigger: 'MANUAL',
          scheduledTime: new Date(),
          dueAt: new Date(),
          reason: null,
          definitionVersion: 1,
        },
      ]),
    );
    const before = (await h.db.job.findUniqueOrThrow({ where: { id: jobId } })).status;
    expect(await cancelRun(h, first.id)).toBe('CANCELLED');
    expect((await h.db.job.findUniqueOrThrow({ where: { id: jobId } })).status).toBe(before);
    expect(await cancelRun(h, second!.id)).toBe('CANCELLED');
    expect((await h.db.job.findUniqueOrThrow({ where: { id: jobId } })).status).toBe('CANCELLED');
  });
});

describe('abandoned runs', () => {
  const sweep = (timeoutSeconds = 0) =>
    closeAbandonedRuns(h, { defaultTimeoutSeconds: timeoutSeconds, graceMs: 0 });

  /** A RUNNING run (retried once on WORKER_LOST) whose BullMQ job is still waiting to be picked up. */
  async function runningRun() {
    const jobId = await createJob(h, { intervalSeconds: 60 });
    await h.db.retryPolicy.create({
      data: { jobId, maxAttempts: 2, backoffSeconds: 0, retryOn: ['ERROR_CODE:WORKER_LOST'], jitter: false },
    });
    const row = await queuedRun(jobId);
    await h.queues.get('DUMMY')!.add('run', { runId: row.id, jobId }, { jobId: row.idempotency_key });
    expect((await startRun(h.db, { runId: row.id, workerId: 'w', misfireThresholdSeconds: 60 })).action).toBe(
      'RUN',
    );
    return { jobId, row };
  }

  /** The processor fails without recording the run's end (say, Postgres was away): BullMQ fails the job. */
  async function failQueuedJob() {
    const connection = h.redis.duplicate();
    await new Promise<void>((resolve) => {
      const worker = new Worker(
        h.queues.get('DUMMY')!.name,
        async () => {
          throw new Error('database unavailable');
        },
        { connection, prefix: h.prefix },
      );
      worker.on('failed', () => void worker.close().then(() => resolve()));
    });
    connection.disconnect();
  }

  it('a RUNNING run whose queue job ended without recording its end is closed WORKER_LOST and retried, once its timeout has passed', async () => {
    const { jobId, row } = await runningRun();
    // Its BullMQ job is still waiting: a worker will take the run over.
    expect(await sweep()).toBe(0);
    await failQueuedJob();
    expect((await h.db.jobRun.findUniqueOrThrow({ where: { id: row.id } })).status).toBe('RUNNING');
    // Within the run's timeout the worker that lost its job may still be running it: left alone.
    expect(await sweep(3600)).toBe(0);
    // The job changed since the run started (its timeout may have): the longest timeout applies.
    await h.db.job.update({ where: { id: jobId }, data: { version: 2 } });
    expect(await sweep()).toBe(0);
    await h.db.job.update({ where: { id: jobId }, data: { version: 1 } });

    expect(await sweep()).toBe(1);
    const lost = await h.db.jobRun.findUniqueOrThrow({ where: { id: row.id } });
    expect(lost).toMatchObject({ status: 'FAILURE', errorCode: 'WORKER_LOST' });
    expect(lost.errorMessage).toMatch(/failed: database unavailable/);
    const retry = await h.db.jobRun.findFirstOrThrow({
      where: { idempotencyKey: row.idempotency_key, attempt: 2 },
    });
    expect(retry.status).toBe('QUEUED');
    expect((await h.db.job.findUniqueOrThrow({ where: { id: jobId } })).status).not.toBe('RUNNING');
    // Closed once: a second sweep finds nothing.
    expect(await sweep()).toBe(0);
  });

  it('one whose cancel was requested is closed CANCELLED: not retried, not dead-lettered', async () => {
    const { jobId, row } = await runningRun();
    await requestCancel(h.redis, h.prefix, row.id);
    await failQueuedJob();
    expect(await sweep()).toBe(1);
    expect(await h.db.jobRun.findUniqueOrThrow({ where: { id: row.id } })).toMatchObject({
      status: 'CANCELLED',
      errorCode: 'CANCELLED',
    });
    expect(await h.db.jobRun.count({ where: { jobId } })).toBe(1);
    expect(await h.db.dlqEvent.count({ where: { jobId } })).toBe(0);
  });
});

import { newId, slotKey } from '@chronos/core';
import { createPool, type Pool, type TriggerSource } from '@chronos/db';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { finishRunsBatch, startRunsBatch } from '../src/run-batches.ts';
import {
  BUFFERED,
  PAUSED_BEFORE_START,
  createRunRecorder,
  finishRun,
  loadStartedRun,
  recordSlots,
  startRun,
  type RunLogLine,
  type RunRecorder,
  type SlotRecord,
} from '../src/index.ts';
import { createJob, eventually, harness, type Harness } from './fixtures.ts';

let h: Harness;
let pool: Pool;
/** Statements the recorders sent through the pool (its `query` calls). */
let statements = 0;
beforeAll(async () => {
  h = await harness('engine-recorder');
  pool = createPool(h.tdb.url, { maxConnections: 6 });
  const query = pool.query.bind(pool) as (...args: unknown[]) => unknown;
  pool.query = ((...args: unknown[]) => {
    statements++;
    return query(...args);
  }) as typeof pool.query;
});
afterEach(async () => {
  await h.db.job.deleteMany();
  await h.db.notification.deleteMany();
});
afterAll(async () => {
  await pool?.end();
  await h?.close();
});

const recorder = (workerId = 'w1'): RunRecorder =>
  createRunRecorder({
    db: h.db,
    pool,
    workerId,
    misfireThresholdSeconds: 60,
    finishDeps: { queues: h.queues },
  });

let seq = 0;
/** Records QUEUED runs of `jobId` (due now unless told), oldest slot first; returns their ids. */
async function queued(
  jobId: string,
  n = 1,
  opts: { trigger?: SlotRecord['trigger']; dueAt?: Date; scheduledAgoMs?: number } = {},
): Promise<string[]> {
  // Distinct slot times (a ms apart), all about `scheduledAgoMs` ago, planned under the job's version.
  const base = Date.now() - (opts.scheduledAgoMs ?? 1000) - (seq += n);
  const { version } = await h.db.job.findUniqueOrThrow({ where: { id: jobId }, select: { version: true } });
  const rows = await h.db.$transaction((tx) =>
    recordSlots(
      tx,
      Array.from({ length: n }, (_, i) => {
        const t = new Date(base + i);
        return {
          jobId,
          key: slotKey(jobId, t),
          status: 'QUEUED' as const,
          trigger: opts.trigger ?? 'SCHEDULED',
          scheduledTime: t,
          dueAt: opts.dueAt ?? t,
          reason: null,
          definitionVersion: version,
        };
      }),
    ),
  );
  return rows.map((r) => r.id);
}

type OverlapPolicy = 'SKIP' | 'BUFFER_ONE' | 'BUFFER_ALL' | 'CANCEL_OTHER' | 'ALLOW_ALL';
const OVERLAP_POLICIES: OverlapPolicy[] = ['SKIP', 'BUFFER_ONE', 'BUFFER_ALL', 'CANCEL_OTHER', 'ALLOW_ALL'];

async function jobWith(overlapPolicy: OverlapPolicy, schedule = {}): Promise<string> {
  const jobId = await createJob(h, { intervalSeconds: 60, ...schedule });
  await h.db.job.update({ where: { id: jobId }, data: { overlapPolicy } });
  return jobId;
}

async function startAll(rec: RunRecorder, ids: string[]) {
  const out = await Promise.all(ids.map((id) => rec.start(id)));
  return out.map((d) => {
    if (d.action !== 'RUN') throw new Error(`not started: ${JSON.stringify(d)}`);
    return d;
  });
}

const line = (message: string): RunLogLine => ({ ts: new Date(), level: 'INFO', message, context: null });
const run = (id: string) => h.db.jobRun.findUniqueOrThrow({ where: { id } });
const stats = (jobId: string) => h.db.jobStat.findUniqueOrThrow({ where: { jobId } });
const jobStatus = async (jobId: string) =>
  (await h.db.job.findUniqueOrThrow({ where: { id: jobId } })).status;

describe('starting runs in batches', () => {
  it('starts a due run in one statement and hands over what running it needs, as Prisma reads it', async () => {
    const jobId = await createJob(h, { intervalSeconds: 60 }, { type: 'HTTP' });
    await h.db.jobPayload.update({
      where: { jobId },
      data: {
        httpUrl: 'https://example.test/{{job.name}}',
        httpMethod: 'POST',
        httpHeaders: { accept: 'application/json', 'x-list': [1, null, 'a'] },
        timeoutSeconds: 7,
        metadata: { nested: { n: null } },
      },
    });
    const [id] = await queued(jobId);
    const rec = recorder('worker-7');
    const before = statements;
    const d = await rec.start(id!);
    expect(statements - before).toBe(1);
    if (d.action !== 'RUN') throw new Error('not started');
    expect(d.run).toEqual(await loadStartedRun(h.db, id!));
    const r = await run(id!);
    expect(r).toMatchObject({
      status: 'RUNNING',
      workerId: 'worker-7',
      lockToken: d.lockToken,
      definitionVersion: 1,
    });
    expect(r.startTime).not.toBeNull();
    expect(await jobStatus(jobId)).toBe('RUNNING');
  });

  it("holds each job's payload per definition version: read once, read again when the job changes", async () => {
    const httpJob = async (url: string) => {
      const jobId = await createJob(h, { intervalSeconds: 60 }, { type: 'HTTP' });
      await h.db.jobPayload.update({ where: { jobId }, data: { httpUrl: url, httpMethod: 'GET' } });
      await h.db.job.update({ where: { id: jobId }, data: { overlapPolicy: 'ALLOW_ALL' } });
      return jobId;
    };
    const started = async (rec: RunRecorder, runId: string, jobId: string) => {
      const d = await rec.start(runId, { jobId });
      if (d.action !== 'RUN') throw new Error(`not started: ${JSON.stringify(d)}`);
      expect(d.run).toEqual(await loadStartedRun(h.db, runId));
      return d;
    };
    const a = await httpJob('https://a.example.test/v1');
    const b = await httpJob('https://b.example.test/v1');
    const rec = recorder();
    const [a1, a2] = await queued(a, 2);
    const first = await started(rec, a1!, a);
    // Same job, same version: the recorder's own copy, not a new read.
    expect((await started(rec, a2!, a)).run.payload).toBe(first.run.payload);

    // The payload changes only with the version (updateJob does both in one transaction).
    await h.db.$transaction([
      h.db.jobPayload.update({ where: { jobId: a }, data: { httpUrl: 'https://a.example.test/v2' } }),
      h.db.job.update({ where: { id: a }, data: { version: { increment: 1 } } }),
    ]);
    const [a3] = await queued(a);
    const third = await started(rec, a3!, a);
    expect(third.definitionVersion).toBe(2);
    expect(third.run.payload.httpUrl).toBe('https://a.example.test/v2');

    // A run the queue files under another job (same version number) gets its own job's payload.
    await h.db.job.update({ where: { id: b }, data: { version: 2 } });
    const [b1] = await queued(b);
    expect((await started(rec, b1!, a)).run.payload.httpUrl).toBe('https://b.example.test/v1');
  });

  it('starts runs submitted together with one statement, each with its own lock token', async () => {
    const jobId = await jobWith('ALLOW_ALL');
    const ids = await queued(jobId, 20);
    const before = statements;
    const started = await startAll(recorder(), ids);
    expect(statements - before).toBe(1);
    expect(new Set(started.map((d) => d.lockToken)).size).toBe(20);
    expect(await h.db.jobRun.count({ where: { jobId, status: 'RUNNING' } })).toBe(20);
  });

  it('starts one run of a job that may not overlap, and skips the other through the full gate', async () => {
    const jobId = await jobWith('SKIP');
    const [older, newer] = await queued(jobId, 2);
    const rec = recorder();
    const [a, b] = await Promise.all([rec.start(older!), rec.start(newer!)]);
    expect(a.action).toBe('RUN');
    expect(b).toMatchObject({ action: 'SKIPPED', status: 'SKIPPED_OVERLAP' });
    expect((await run(newer!)).reason).toContain(older);
  });

  it('leaves what it does not decide to the full gate: paused jobs, misfires, early slots, repeats, changed jobs', async () => {
    const rec = recorder();
    const paused = await jobWith('ALLOW_ALL');
    const [p] = await queued(paused);
    await h.db.job.update({ where: { id: paused }, data: { status: 'PAUSED' } });
    expect(await rec.start(p!)).toMatchObject({ action: 'SKIPPED', status: 'SKIPPED_PAUSED' });

    const ignoring = await jobWith('ALLOW_ALL', { misfirePolicy: 'IGNORE' });
    const [late] = await queued(ignoring, 1, { scheduledAgoMs: 120_000 });
    expect(await rec.start(late!)).toMatchObject({ action: 'SKIPPED', status: 'SKIPPED_MISFIRE' });

    const early = await jobWith('ALLOW_ALL');
    const [e] = await queued(early, 1, { dueAt: new Date(Date.now() + 60_000) });
    const d = await rec.start(e!);
    expect(d).toMatchObject({ action: 'DEFER' });
    expect(d.action === 'DEFER' && d.delayMs).toBeGreaterThan(50_000);
    expect((await run(e!)).status).toBe('QUEUED');

    const [twice] = await queued(early, 1, { trigger: 'MANUAL' });
    const [first, second] = await Promise.all([rec.start(twice!), rec.start(twice!)]);
    expect([first.action, second.action].sort()).toEqual(['GONE', 'RUN']);

    // Planned under version 1; the job's schedule changed since, and no longer has the slot.
    const changed = await jobWith('ALLOW_ALL');
    const [c] = await queued(changed);
    await h.db.job.update({
      where: { id: changed },
      data: { version: 2, schedule: { update: { intervalSeconds: 7 } } },
    });
    expect(await rec.start(c!)).toMatchObject({ action: 'SKIPPED', status: 'SKIPPED' });
  });
});

describe('finishing runs in batches', () => {
  it('records successes, their log lines and job_stats with one statement', async () => {
    const jobId = await jobWith('ALLOW_ALL');
    const rec = recorder();
    const started = await startAll(rec, await queued(jobId, 10));
    const before = statements;
    const out = await Promise.all(
      started.map((d, i) =>
        rec.finish({ runId: d.runId, jobId, lockToken: d.lockToken, status: 'SUCCESS', output: { i } }, [
          line(`${i} a`),
          line(`${i} b`),
        ]),
      ),
    );
    expect(statements - before).toBe(1);
    expect(out.every((o) => o.accepted)).toBe(true);
    const r = await run(started[3]!.runId);
    expect(r).toMatchObject({ status: 'SUCCESS', output: { i: 3 }, errorMessage: null });
    expect(r.durationMs).toBeGreaterThanOrEqual(0);
    const logs = await h.db.jobRunLog.findMany({ where: { runId: r.id }, orderBy: { id: 'asc' } });
    expect(logs.map((l) => l.message)).toEqual(['3 a', '3 b']);
    expect(await stats(jobId)).toMatchObject({
      totalExecutions: 10,
      successfulExecutions: 10,
      consecutiveFailures: 0,
    });
    expect(await jobStatus(jobId)).toBe('SCHEDULED');
  });

  // The job's status after its last run ends: one rule, applied by the batched finish and finishRun.
  it.each([
    { plan: 'a schedule that plans its runs', status: 'SCHEDULED' },
    { plan: 'a schedule whose scheduled runs are off', status: 'PENDING' },
    { plan: 'no schedule (run only when triggered)', status: 'PENDING' },
  ] as const)(
    'with $plan, a job reads $status after a run, through either path',
    async ({ plan, status }) => {
      const statuses: string[] = [];
      for (const path of ['batched', 'transactional'] as const) {
        const jobId = await jobWith('ALLOW_ALL');
        if (plan.includes('off'))
          await h.db.job.update({ where: { id: jobId }, data: { allowScheduled: false } });
        if (plan.startsWith('no schedule')) await h.db.jobSchedule.deleteMany({ where: { jobId } });
        const [started] = await startAll(recorder(), await queued(jobId, 1, { trigger: 'MANUAL' }));
        if (path === 'batched') {
          expect(
            await finishRunsBatch(pool, [
              { runId: started!.runId, lockToken: started!.lockToken, exitCode: 0, output: null, log: [] },
            ]),
          ).toEqual(['DONE']);
        } else {
          await finishRun(h.db, { runId: started!.runId, lockToken: started!.lockToken, status: 'SUCCESS' });
        }
        expect((await run(started!.runId)).status).toBe('SUCCESS');
        statuses.push(await jobStatus(jobId));
      }
      expect(statuses).toEqual([status, status]);
    },
  );

  it('refuses a stale lock token inside a batch and finishes the others of the batch', async () => {
    const jobId = await jobWith('ALLOW_ALL');
    const rec = recorder();
    const [a, b, c] = await startAll(rec, await queued(jobId, 3));
    const out = await finishRunsBatch(pool, [
      { runId: a!.runId, lockToken: a!.lockToken, exitCode: 0, output: null, log: [line('a')] },
      { runId: b!.runId, lockToken: 'stale', exitCode: 0, output: null, log: [line('b')] },
      { runId: c!.runId, lockToken: c!.lockToken, exitCode: 0, output: null, log: [line('c')] },
    ]);
    expect(out).toEqual(['DONE', 'STALE', 'DONE']);
    expect((await run(b!.runId)).status).toBe('RUNNING');
    expect(await h.db.jobRunLog.count({ where: { runId: b!.runId } })).toBe(0);
    expect((await stats(jobId)).totalExecutions).toBe(2);
    // The job still has a run going.
    expect(await jobStatus(jobId)).toBe('RUNNING');
    expect(await rec.finish({ runId: b!.runId, jobId, lockToken: 'stale', status: 'SUCCESS' }, [])).toEqual({
      accepted: false,
    });
    expect(
      (await rec.finish({ runId: b!.runId, jobId, lockToken: b!.lockToken, status: 'SUCCESS' }, [])).accepted,
    ).toBe(true);
    expect(await jobStatus(jobId)).toBe('SCHEDULED');
  });

  it('loses no update when runs of one job finish together, in one batch and across workers, next to failures', async () => {
    const jobId = await jobWith('ALLOW_ALL');
    const workers = [recorder('w1'), recorder('w2'), recorder('w3')];
    const ids = await queued(jobId, 60);
    const started = await Promise.all(ids.map((id, i) => workers[i % 3]!.start(id)));
    await Promise.all(
      started.map((d, i) => {
        if (d.action !== 'RUN') throw new Error('not started');
        const status = i % 5 === 0 ? 'FAILURE' : 'SUCCESS';
        return workers[i % 3]!.finish({ runId: d.runId, jobId, lockToken: d.lockToken, status }, [
          line(`line ${i}`),
        ]);
      }),
    );
    expect(await stats(jobId)).toMatchObject({
      totalExecutions: 60,
      successfulExecutions: 48,
      failedExecutions: 12,
    });
    expect(await h.db.jobRun.count({ where: { jobId, status: 'RUNNING' } })).toBe(0);
    expect(await h.db.jobRunLog.count({ where: { run: { jobId } } })).toBe(60);
    // No run is left running, so the job is not either (whichever finish came last).
    expect(await jobStatus(jobId)).toBe('SCHEDULED');
  });

  it('writes the failure alert once and the recovery once, with successes batched around them', async () => {
    const jobId = await jobWith('ALLOW_ALL');
    await h.db.job.update({ where: { id: jobId }, data: { alertThreshold: 2 } });
    const rec = recorder();
    const finishAll = async (status: 'SUCCESS' | 'FAILURE', n: number) => {
      const started = await startAll(rec, await queued(jobId, n));
      return Promise.all(
        started.map((d) => rec.finish({ runId: d.runId, jobId, lockToken: d.lockToken, status }, [])),
      );
    };
    await finishAll('SUCCESS', 3);
    await finishAll('FAILURE', 4);
    await finishAll('SUCCESS', 5);
    const notes = await h.db.notification.findMany({ where: { jobId }, orderBy: { id: 'asc' } });
    expect(notes.map((n) => n.templateCode).filter((t) => t !== 'RUN_DEAD_LETTERED')).toEqual([
      'JOB_FAILING',
      'JOB_RECOVERED',
    ]);
    expect(notes.find((n) => n.templateCode === 'JOB_FAILING')?.payload).toMatchObject({
      consecutiveFailures: 2,
    });
    expect(await stats(jobId)).toMatchObject({
      totalExecutions: 12,
      successfulExecutions: 8,
      consecutiveFailures: 0,
      alertOpen: false,
    });
    // Once the alert is closed, successes go by batch again: one start and one finish statement.
    const afterRecovery = statements;
    await finishAll('SUCCESS', 5);
    expect(statements - afterRecovery).toBe(2);
    expect(await h.db.notification.count({ where: { jobId, templateCode: 'JOB_RECOVERED' } })).toBe(1);
  });

  it('leaves ONCE and fixed-delay jobs to finishRun, which ends or re-plans them', async () => {
    const t = new Date(Date.now() - 1000);
    const once = await createJob(h, { scheduleType: 'ONCE', runAt: t }, { nextFireAt: null });
    const delay = await createJob(
      h,
      { intervalSeconds: 30, intervalMode: 'FIXED_DELAY', anchorAt: t },
      { nextFireAt: null },
    );
    const rec = recorder();
    const [a, b] = await startAll(rec, [...(await queued(once)), ...(await queued(delay))]);
    for (const d of [a!, b!])
      expect(
        (
          await rec.finish({ runId: d.runId, jobId: d.jobId, lockToken: d.lockToken, status: 'SUCCESS' }, [
            line('x'),
          ])
        ).accepted,
      ).toBe(true);
    expect(await jobStatus(once)).toBe('SUCCEEDED');
    const s = await h.db.jobSchedule.findUniqueOrThrow({ where: { jobId: delay } });
    expect(s.nextFireAt!.getTime()).toBe((await run(b!.runId)).endTime!.getTime() + 30_000);
    expect(await h.db.jobRunLog.count({ where: { runId: { in: [a!.runId, b!.runId] } } })).toBe(2);
  });
});

describe('the full gate', () => {
  it('defers a scheduled slot that is not due yet by the database clock, then runs it', async () => {
    const jobId = await createJob(h, { intervalSeconds: 60 });
    const [{ now } = { now: new Date() }] = await h.db.$queryRaw<{ now: Date }[]>`SELECT now() AS now`;
    const [id] = await queued(jobId, 1, { dueAt: new Date(now.getTime() + 400) });
    const d = await startRun(h.db, { runId: id!, workerId: 'w', misfireThresholdSeconds: 60 });
    expect(d).toMatchObject({ action: 'DEFER', cancel: [] });
    const delayMs = d.action === 'DEFER' ? (d.delayMs ?? 0) : 0;
    expect(delayMs).toBeGreaterThan(0);
    expect(delayMs).toBeLessThanOrEqual(400);
    const ran = await eventually(
      async () => {
        const again = await startRun(h.db, { runId: id!, workerId: 'w', misfireThresholdSeconds: 60 });
        return again.action === 'RUN' ? again : undefined;
      },
      10_000,
      'the slot to come due',
    );
    const r = await run(id!);
    expect(r.startTime!.getTime()).toBeGreaterThanOrEqual(r.dueAt!.getTime());
    await finishRun(h.db, { runId: id!, lockToken: ran.lockToken, status: 'SUCCESS' });
  });
});

describe('the batched statement and the full gate agree', () => {
  /** Slot times a second or more ago, each earlier than the one before (distinct keys). */
  let last = Infinity;
  /** A QUEUED run of `jobId` with `trigger`, due a second ago, keyed as the code that queues it keys it. */
  async function waiting(jobId: string, trigger: TriggerSource): Promise<string> {
    const id = newId();
    const t = new Date((last = Math.min(Date.now() - 1000, last - 1)));
    const ofSlot = trigger === 'SCHEDULED' || trigger === 'BACKFILL' || trigger === 'RETRY';
    await h.db.jobRun.create({
      data: {
        id,
        jobId,
        idempotencyKey: ofSlot ? slotKey(jobId, t) : `${jobId}-x-${id}`,
        attempt: trigger === 'RETRY' ? 2 : 1,
        status: 'QUEUED',
        trigger,
        scheduledTime: t,
        dueAt: t,
        definitionVersion: 1,
      },
    });
    return id;
  }

  const TRIGGERS: TriggerSource[] = ['SCHEDULED', 'MANUAL', 'WEBHOOK', 'BACKFILL', 'RETRY', 'REPLAY'];
  const cases = TRIGGERS.flatMap((trigger) => [
    { trigger, job: 'live', statement: 'RUN', decision: { action: 'RUN' } },
    {
      trigger,
      job: 'paused',
      statement: 'SLOW',
      decision: {
        action: 'SKIPPED',
        status: 'SKIPPED_PAUSED',
        reason: trigger === 'SCHEDULED' ? 'job paused while the run waited' : PAUSED_BEFORE_START,
      },
    },
  ]);

  // A paused job's run reaches the gate when its queue job was taken before the pause could remove
  // it (pauseJob records the runs it finds waiting itself): the job is paused here behind the runs'
  // backs, so that only the gates decide.
  it.each(cases)(
    'a $trigger run of a $job job: the statement answers $statement; the recorder and startRun decide $decision.action',
    async (c) => {
      const jobId = await jobWith('ALLOW_ALL');
      const viaStatement = await waiting(jobId, c.trigger);
      const viaRecorder = await waiting(jobId, c.trigger);
      const viaStartRun = await waiting(jobId, c.trigger);
      if (c.job === 'paused')
        await h.db.job.update({ where: { id: jobId }, data: { status: 'PAUSED', pausedAt: new Date() } });

      const [alone] = await startRunsBatch(pool, [{ runId: viaStatement }], {
        workerId: 'w1',
        misfireThresholdSeconds: 60,
      });
      expect(alone?.outcome).toBe(c.statement);
      expect((await run(viaStatement)).status).toBe(c.statement === 'RUN' ? 'RUNNING' : 'QUEUED');

      const decisions = [
        await recorder().start(viaRecorder, { jobId }),
        await startRun(h.db, { runId: viaStartRun, workerId: 'w1', misfireThresholdSeconds: 60 }),
      ];
      for (const d of decisions) expect(d).toMatchObject(c.decision);
      if (c.job === 'live') return;
      for (const id of [viaRecorder, viaStartRun])
        expect(await run(id)).toMatchObject({
          status: 'SKIPPED_PAUSED',
          reason: c.decision.reason,
          startTime: null,
          lockToken: null,
        });
      // Skipped as a paused scheduled slot is, whatever the trigger: nothing counted, alerted or dead-lettered.
      expect(await jobStatus(jobId)).toBe('PAUSED');
      expect(await h.db.jobStat.count({ where: { jobId } })).toBe(0);
      expect(await h.db.dlqEvent.count({ where: { jobId } })).toBe(0);
      expect(await h.db.notification.count({ where: { jobId } })).toBe(0);
    },
  );

  // A retry attempt continues a run that already started: with another run of its job active, the
  // statement leaves it to the full gate (as it does any run with one active), and the gate makes it
  // wait under every policy but ALLOW_ALL (where the statement starts it) — never skips it, never
  // has it cancel the active run.
  const retryCases = OVERLAP_POLICIES.flatMap((policy) => [
    {
      policy,
      trigger: 'RETRY' as const,
      statement: policy === 'ALLOW_ALL' ? 'RUN' : 'SLOW',
      decision: policy === 'ALLOW_ALL' ? { action: 'RUN' } : { action: 'DEFER', cancel: [] },
    },
  ]);
  it.each(retryCases)(
    'a $trigger attempt while another run of its $policy job is active: the statement answers $statement; the recorder and startRun decide $decision.action',
    async (c) => {
      const jobId = await jobWith(c.policy);
      const active = await waiting(jobId, 'MANUAL');
      expect(
        await startRun(h.db, { runId: active, workerId: 'w0', misfireThresholdSeconds: 60 }),
      ).toMatchObject({ action: 'RUN' });
      const viaStatement = await waiting(jobId, c.trigger);
      const viaRecorder = await waiting(jobId, c.trigger);
      const viaStartRun = await waiting(jobId, c.trigger);

      const [alone] = await startRunsBatch(pool, [{ runId: viaStatement }], {
        workerId: 'w1',
        misfireThresholdSeconds: 60,
      });
      expect(alone?.outcome).toBe(c.statement);
      expect((await run(viaStatement)).status).toBe(c.statement === 'RUN' ? 'RUNNING' : 'QUEUED');

      const decisions = [
        await recorder().start(viaRecorder, { jobId }),
        await startRun(h.db, { runId: viaStartRun, workerId: 'w1', misfireThresholdSeconds: 60 }),
      ];
      for (const d of decisions) expect(d).toMatchObject(c.decision);
      if (c.policy === 'ALLOW_ALL') return;
      for (const id of [viaStatement, viaRecorder, viaStartRun]) {
        const r = await run(id);
        expect(r.status).toBe('QUEUED');
        if (id !== viaStatement) expect(r.reason).toMatch(new RegExp(`^${BUFFERED} ${active}`));
      }
      expect((await run(active)).status).toBe('RUNNING');
    },
  );
});

describe('a retry is never lost: every failure chain ends in a success, a DLQ entry or a recorded cancel', () => {
  const cases = OVERLAP_POLICIES.flatMap((policy) =>
    (['SUCCESS', 'DLQ'] as const).map((end) => ({
      policy,
      end,
      meanwhile: policy === 'ALLOW_ALL' ? 'runs beside it' : 'waits for it',
    })),
  );
  it.each(cases)(
    "$policy: run A's retry, due while run B runs, $meanwhile (never SKIPPED_OVERLAP); A's chain ends in $end",
    async ({ policy, end }) => {
      const jobId = await jobWith(policy);
      await h.db.retryPolicy.create({ data: { jobId, maxAttempts: 2, backoffSeconds: 0, jitter: false } });
      const rec = recorder();
      const transient = {
        status: 'FAILURE',
        errorCode: 'NETWORK',
        retryable: true,
        errorMessage: 'reset',
      } as const;

      // Run A fails; its retry is due at once.
      const [a] = await queued(jobId);
      const [aStarted] = await startAll(rec, [a!]);
      const failed = await rec.finish({ runId: a!, jobId, lockToken: aStarted!.lockToken, ...transient }, []);
      const retryId = failed.retry!.runId;
      // Run B (a manual trigger) starts before the retry reaches a worker.
      const [b] = await queued(jobId, 1, { trigger: 'MANUAL' });
      const [bStarted] = await startAll(rec, [b!]);

      let retry = await rec.start(retryId, { jobId });
      if (policy === 'ALLOW_ALL') expect(retry.action).toBe('RUN');
      else {
        // It waits (the worker asks again later) for as long as B runs, and cancels nothing.
        for (let i = 0; i < 2; i++) {
          expect(retry).toMatchObject({ action: 'DEFER', cancel: [] });
          expect((await run(retryId)).status).toBe('QUEUED');
          retry = await rec.start(retryId, { jobId });
        }
        expect(retry).toMatchObject({ action: 'DEFER', cancel: [] });
      }
      expect(
        (await rec.finish({ runId: b!, jobId, lockToken: bStarted!.lockToken, status: 'SUCCESS' }, []))
          .accepted,
      ).toBe(true);
      if (retry.action !== 'RUN') retry = await rec.start(retryId, { jobId });
      if (retry.action !== 'RUN') throw new Error(`retry not started: ${JSON.stringify(retry)}`);
      const last = await rec.finish(
        {
          runId: retryId,
          jobId,
          lockToken: retry.lockToken,
          ...(end === 'SUCCESS' ? { status: 'SUCCESS' as const } : transient),
        },
        [],
      );
      expect(last.accepted).toBe(true);

      const chain = await h.db.jobRun.findMany({
        where: { idempotencyKey: (await run(a!)).idempotencyKey },
        orderBy: { attempt: 'asc' },
      });
      expect(chain.map((r) => [r.attempt, r.trigger, r.status])).toEqual([
        [1, 'SCHEDULED', 'FAILURE'],
        [2, 'RETRY', end === 'SUCCESS' ? 'SUCCESS' : 'FAILURE'],
      ]);
      expect(await h.db.jobRun.count({ where: { jobId, status: 'SKIPPED_OVERLAP' } })).toBe(0);
      const dlq = await h.db.dlqEvent.findMany({ where: { jobId } });
      expect(dlq.map((d) => d.runId)).toEqual(end === 'DLQ' ? [retryId] : []);
      const dead = await h.db.notification.count({ where: { jobId, templateCode: 'RUN_DEAD_LETTERED' } });
      expect(dead).toBe(end === 'DLQ' ? 1 : 0);
    },
  );

  it('BUFFER_ONE: a retry attempt waits even when another run already waits (that one is the buffered one)', async () => {
    const jobId = await jobWith('BUFFER_ONE');
    await h.db.retryPolicy.create({ data: { jobId, maxAttempts: 2, backoffSeconds: 0, jitter: false } });
    const rec = recorder();
    const [a] = await queued(jobId);
    const [aStarted] = await startAll(rec, [a!]);
    const failed = await rec.finish(
      { runId: a!, jobId, lockToken: aStarted!.lockToken, status: 'FAILURE', errorCode: 'HTTP_5XX' },
      [],
    );
    const [b, c] = await queued(jobId, 2, { trigger: 'MANUAL' });
    const [bStarted] = await startAll(rec, [b!]);
    expect(await rec.start(c!, { jobId })).toMatchObject({ action: 'DEFER' });
    // A third fresh run is skipped by BUFFER_ONE; the retry is not.
    const [d] = await queued(jobId, 1, { trigger: 'MANUAL' });
    expect(await rec.start(d!, { jobId })).toMatchObject({ action: 'SKIPPED', status: 'SKIPPED_OVERLAP' });
    expect(await rec.start(failed.retry!.runId, { jobId })).toMatchObject({ action: 'DEFER', cancel: [] });
    expect((await run(failed.retry!.runId)).status).toBe('QUEUED');
    await rec.finish({ runId: b!, jobId, lockToken: bStarted!.lockToken, status: 'SUCCESS' }, []);
    expect(await rec.start(failed.retry!.runId, { jobId })).toMatchObject({ action: 'RUN' });
  });

  it('CANCEL_OTHER: a newer run cancels a running retry attempt, and the chain ends in the recorded cancel', async () => {
    const jobId = await jobWith('CANCEL_OTHER');
    await h.db.retryPolicy.create({ data: { jobId, maxAttempts: 3, backoffSeconds: 0, jitter: false } });
    const rec = recorder();
    const [a] = await queued(jobId);
    const [aStarted] = await startAll(rec, [a!]);
    const failed = await rec.finish(
      { runId: a!, jobId, lockToken: aStarted!.lockToken, status: 'FAILURE', errorCode: 'TIMEOUT' },
      [],
    );
    const retryId = failed.retry!.runId;
    const [retry] = await startAll(rec, [retryId]);
    // A newer run comes: under CANCEL_OTHER it waits for the retry attempt, which it cancels.
    const [c] = await queued(jobId, 1, { trigger: 'MANUAL' });
    expect(await rec.start(c!, { jobId })).toMatchObject({ action: 'DEFER', cancel: [retryId] });
    // The worker of the retry aborts it on the cancel request and records it.
    await rec.finish({ runId: retryId, jobId, lockToken: retry!.lockToken, status: 'CANCELLED' }, []);
    expect(await rec.start(c!, { jobId })).toMatchObject({ action: 'RUN' });
    const chain = await h.db.jobRun.findMany({
      where: { idempotencyKey: (await run(a!)).idempotencyKey },
      orderBy: { attempt: 'asc' },
    });
    expect(chain.map((r) => r.status)).toEqual(['FAILURE', 'CANCELLED']);
    expect(await h.db.dlqEvent.count({ where: { jobId } })).toBe(0);
  });
});

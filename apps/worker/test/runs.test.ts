import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '@chronos/config';
import { createSecretBox, keyIdOf, parseEncryptionKey } from '@chronos/core';
import { newId, slotKey } from '@chronos/core';
import { createTestDatabase, type TestDatabase } from '@chronos/db/testing';
import {
  bullJobId,
  cancelRequestKey,
  createJob,
  createScheduler,
  pauseJob,
  requestCancel,
  setVariable,
  triggerRun,
} from '@chronos/engine';
import { closeQueues, createQueues, createRedis, type QueueSet } from '@chronos/queue';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createWorkerService, type WorkerService } from '../src/worker.ts';
import { runContextKey } from '@chronos/storage';
import { startTestStorage, type TestStorage } from '@chronos/storage/testing';
import type { RunContext } from '@chronos/engine';

let tdb: TestDatabase;
let redis: Redis;
let queues: QueueSet;
let worker: WorkerService;
let s3: TestStorage;
let ownerId: string;
const prefix = `test-runs-${newId()}`;
const ENCRYPTION_KEY = randomBytes(32).toString('hex');
const log = pino({ level: 'silent' });

beforeAll(async () => {
  tdb = await createTestDatabase('worker-runs');
  s3 = await startTestStorage('worker-runs');
  redis = createRedis('redis://127.0.0.1:6379');
  queues = createQueues({ connection: redis, prefix, types: ['DUMMY', 'HTTP', 'SCRIPT'] });
  ownerId = newId();
  await tdb.db.user.create({ data: { id: ownerId, email: 'owner@example.test', passwordHash: 'x' } });
  const config = loadConfig({
    DATABASE_URL: tdb.url,
    REDIS_PREFIX: prefix,
    WORKER_TYPES: 'DUMMY,HTTP,SCRIPT',
    HTTP_ALLOW_HOSTS: '127.0.0.1',
    ENCRYPTION_KEY: ENCRYPTION_KEY,
    WORKER_ID: 'runner-1',
    SHUTDOWN_GRACE_SECONDS: '5',
    ...s3.env,
  });
  worker = createWorkerService(config, log);
  await worker.start();
});
afterEach(async () => {
  await tdb.db.job.deleteMany();
});
afterAll(async () => {
  await worker?.stop();
  await s3?.stop();
  for (const q of queues.values()) await q.obliterate({ force: true });
  await closeQueues(queues);
  redis?.disconnect();
  await tdb?.drop();
});

const deps = () => ({ db: tdb.db, queues, redis, prefix });
const tick = () => createScheduler({ ...deps(), log, instanceId: 'test' }).tick();

/** Polls until `f` gives a value (not null/undefined), or fails naming `what`. */
async function until<T>(what: string, f: () => Promise<T | null | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== null && v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function finished(jobId: string, count = 1) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const rows = await tdb.db.jobRun.findMany({
      where: { jobId, status: { notIn: ['QUEUED', 'RUNNING'] } },
      orderBy: [{ scheduledTime: 'asc' }, { attempt: 'asc' }],
    });
    if (rows.length >= count) return rows;
    if (Date.now() > deadline) throw new Error(`runs of ${jobId} did not finish`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('a scheduled slot, end to end', () => {
  it('is planned by the scheduler and run once by the worker: QUEUED → RUNNING → SUCCESS', async () => {
    const { id } = await createJob(deps(), {
      ownerId,
      name: 'once-now',
      type: 'DUMMY',
      schedule: { type: 'ONCE', runAt: new Date(Date.now() + 300) },
    });
    await tick();
    const [run] = await finished(id);
    expect(run?.status).toBe('SUCCESS');
    expect(run?.workerId).toBe('runner-1');
    expect(run?.startTime!.getTime()).toBeGreaterThanOrEqual(run!.scheduledTime.getTime());
    expect(run?.durationMs).toBeGreaterThanOrEqual(0);
    expect(run?.output).toEqual({ ok: true });
    expect((await tdb.db.job.findUniqueOrThrow({ where: { id } })).status).toBe('SUCCEEDED');
  });

  it('a slot promoted before its time waits until it is due by the database clock, then runs', async () => {
    const runAt = new Date(Date.now() + 1500);
    const { id } = await createJob(deps(), {
      ownerId,
      name: 'early',
      type: 'DUMMY',
      schedule: { type: 'ONCE', runAt },
    });
    await tick();
    // Promoted now, 1.5 s early (as a promoter with a wrong clock-skew estimate would).
    const job = await queues.get('DUMMY')!.getJob(bullJobId(slotKey(id, runAt)));
    await job!.promote();
    const [run] = await finished(id);
    expect(run?.status).toBe('SUCCESS');
    expect(run?.startTime!.getTime()).toBeGreaterThanOrEqual(run!.dueAt!.getTime());
  });

  it('a run longer than its timeout ends TIMEOUT', async () => {
    const { id } = await createJob(deps(), {
      ownerId,
      name: 'slow',
      type: 'DUMMY',
      schedule: { type: 'ONCE', runAt: new Date() },
      payload: { timeoutSeconds: 1, metadata: { sleepMs: 60_000 } },
    });
    await tick();
    const [run] = await finished(id);
    expect(run?.status).toBe('TIMEOUT');
    expect(run?.errorMessage).toBe('run timed out after 1 s');
  });

  /** A ONCE DUMMY job sleeping a minute, planned, and its run once a worker has started it. */
  async function runningSleeper(name: string) {
    const { id } = await createJob(deps(), {
      ownerId,
      name,
      type: 'DUMMY',
      schedule: { type: 'ONCE', runAt: new Date() },
      payload: { metadata: { sleepMs: 60_000 } },
    });
    await tick();
    const running = await until('the run to start', () =>
      tdb.db.jobRun.findFirst({ where: { jobId: id, status: 'RUNNING' } }),
    );
    return { id, running };
  }

  it('a cancel request aborts a running run: CANCELLED', async () => {
    const { id, running } = await runningSleeper('cancel-me');
    await requestCancel(redis, prefix, running.id);
    const [run] = await finished(id);
    expect(run?.status).toBe('CANCELLED');
  });

  it('a cancel whose message was lost (its subscriber reconnecting) aborts the run once the subscriber is back', async () => {
    const { id, running } = await runningSleeper('cancel-lost-message');
    // The request is kept, its message never arrives; then the worker's subscriber is disconnected.
    await redis.set(cancelRequestKey(prefix, running.id), '1', 'EX', 60);
    const clients = (await redis.client('LIST')) as string;
    const subscriber = clients
      .split('\n')
      .find((line) => line.includes('name=chronos-worker-runner-1 ') && / flags=P /.test(line));
    const clientId = subscriber?.match(/^id=(\d+) /)?.[1];
    expect(clientId, "the worker's subscriber connection").toBeDefined();
    await redis.client('KILL', 'ID', clientId as string);
    const [run] = await finished(id);
    expect(run?.status).toBe('CANCELLED');
  });

  it('a type without an executor in this version cannot be defined: nothing is written, nothing runs', async () => {
    const before = await tdb.db.job.count();
    const refused = createJob(deps(), {
      ownerId,
      name: 'mq',
      type: 'MESSAGE_QUEUE',
      schedule: { type: 'ONCE', runAt: new Date() },
    });
    await expect(refused).rejects.toThrow('MESSAGE_QUEUE jobs cannot be defined in this version');
    await expect(refused).rejects.toMatchObject({ issues: [{ path: 'type' }] });
    expect(await tdb.db.job.count()).toBe(before);
    // And no worker could take one: config refuses to serve it (packages/config tests).
    expect(() => loadConfig({ WORKER_TYPES: 'DUMMY,MESSAGE_QUEUE' })).toThrow(
      /MESSAGE_QUEUE jobs cannot run/,
    );
  });

  /** A SCRIPT job whose slot is an hour away (only triggers run it). */
  const scriptJob = async (name: string, scriptContent: string) =>
    (
      await createJob(deps(), {
        ownerId,
        name,
        type: 'SCRIPT',
        schedule: { type: 'ONCE', runAt: new Date(Date.now() + 3_600_000) },
        payload: { scriptContent },
      })
    ).id;

  it('a stored script that inserts trigger values into its code is refused at run time; nothing runs', async () => {
    const marker = `/tmp/chronos-trigger-in-code-${newId()}`;
    const id = await scriptJob('old-script', 'echo safe');
    // A definition from before the check (the API refuses it now), holding a webhook's value as code.
    await tdb.db.jobPayload.update({
      where: { jobId: id },
      data: { scriptContent: 'echo {{trigger.body.name}}' },
    });
    await triggerRun(deps(), {
      jobId: id,
      trigger: 'MANUAL',
      payload: { body: { name: `x; touch ${marker}` } },
    });
    const [run] = await finished(id);
    expect(run).toMatchObject({ status: 'FAILURE', errorCode: 'TRIGGER_IN_CODE' });
    expect(run?.errorMessage).toMatch(/^payload\.scriptContent must not hold \{\{trigger/);
    expect(existsSync(marker)).toBe(false);
  });

  it('a script may hold {{trigger…}} as literal text (escaped): it runs and prints it', async () => {
    const id = await scriptJob('escaped-script', "echo 'literal {{{{trigger.body.name}}'");
    await triggerRun(deps(), { jobId: id, trigger: 'MANUAL', payload: { body: { name: 'x' } } });
    const [run] = await finished(id);
    expect(run?.status).toBe('SUCCESS');
    const lines = await tdb.db.jobRunLog.findMany({ where: { runId: run!.id } });
    expect(lines.map((l) => l.message)).toContain('literal {{trigger.body.name}}');
  });

  it('with overlap SKIP, slots that come due during a long run are skipped and say why', async () => {
    const anchor = new Date(Date.now() + 200);
    const { id } = await createJob(deps(), {
      ownerId,
      name: 'overlapping',
      type: 'DUMMY',
      overlapPolicy: 'SKIP',
      schedule: {
        type: 'INTERVAL',
        intervalSeconds: 1,
        anchorAt: anchor,
        endAt: new Date(anchor.getTime() + 2000),
      },
      payload: { metadata: { sleepMs: 2600 } },
    });
    await tick();
    const rows = await finished(id, 3);
    // Whichever slot started first ran; the two that came due while it ran were skipped.
    const ran = rows.filter((r) => r.status === 'SUCCESS');
    expect(ran).toHaveLength(1);
    const skipped = rows.filter((r) => r.status === 'SKIPPED_OVERLAP');
    expect(skipped).toHaveLength(2);
    for (const r of skipped) expect(r.reason).toContain(ran[0]!.id);
  });

  it('an HTTP job: templates resolved, secret masked in its log, retried on 5xx with the same key, then succeeds', async () => {
    const seen: IncomingHttpHeaders[] = [];
    const server = createServer((req, res) => {
      seen.push(req.headers);
      res.statusCode = seen.length < 3 ? 503 : 200;
      res.end(seen.length < 3 ? 'busy' : '{"ok":true}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as AddressInfo).port;
      const key = parseEncryptionKey(ENCRYPTION_KEY);
      const box = createSecretBox({ current: { id: keyIdOf(key), key } });
      await setVariable(tdb.db, box, { ownerId, name: 'TOKEN', value: 'tok-super-secret', sensitive: true });
      const { id } = await createJob(deps(), {
        ownerId,
        name: 'call',
        type: 'HTTP',
        schedule: { type: 'ONCE', runAt: new Date() },
        payload: {
          httpUrl: `http://127.0.0.1:${port}/hook/{{job.name}}`,
          httpMethod: 'POST',
          httpHeaders: { authorization: 'Bearer {{var.TOKEN}}' },
          httpBody: 'attempt {{run.attempt}}',
        },
        retryPolicy: { maxAttempts: 3, backoffSeconds: 0, retryOn: ['HTTP_5XX'], jitter: false },
      });
      await tick();
      const rows = await finished(id, 3);
      expect(rows.map((r) => [r.attempt, r.status, r.errorCode])).toEqual([
        [1, 'FAILURE', 'HTTP_5XX'],
        [2, 'FAILURE', 'HTTP_5XX'],
        [3, 'SUCCESS', null],
      ]);
      expect(new Set(rows.map((r) => r.idempotencyKey)).size).toBe(1);
      expect(seen.map((h) => h['idempotency-key'])).toEqual([
        rows[0]!.idempotencyKey,
        rows[0]!.idempotencyKey,
        rows[0]!.idempotencyKey,
      ]);
      expect(seen[0]?.authorization).toBe('Bearer tok-super-secret');
      const logs = await tdb.db.jobRunLog.findMany({ where: { runId: { in: rows.map((r) => r.id) } } });
      expect(logs.length).toBeGreaterThan(0);
      expect(JSON.stringify(logs.map((l) => [l.message, l.context]))).not.toContain('tok-super-secret');
      expect(JSON.stringify(rows)).not.toContain('tok-super-secret');
      // Each attempt's context document: resolved inputs with the secret masked, the outcome.
      const contexts = await Promise.all(
        rows.map((r) =>
          // s3rver writes an object's file in pieces: a read meanwhile sees part of it, so "not yet".
          until(`the context of ${r.id}`, () =>
            s3.storage.getJson<RunContext>(runContextKey(r.id)).catch(() => undefined),
          ),
        ),
      );
      expect(contexts.map((c) => [c.attempt, c.status, c.error?.code ?? null])).toEqual([
        [1, 'FAILURE', 'HTTP_5XX'],
        [2, 'FAILURE', 'HTTP_5XX'],
        [3, 'SUCCESS', null],
      ]);
      expect(contexts[2]?.inputs).toMatchObject({
        httpUrl: `http://127.0.0.1:${port}/hook/call`,
        httpHeaders: { authorization: 'Bearer ***' },
        httpBody: 'attempt 3',
      });
      expect(contexts.map((c) => c.trigger)).toEqual(['SCHEDULED', 'RETRY', 'RETRY']);
      expect(contexts[2]).toMatchObject({ jobId: id, definitionVersion: 1 });
      expect(JSON.stringify(contexts)).not.toContain('tok-super-secret');
      expect(await tdb.db.dlqEvent.count({ where: { jobId: id } })).toBe(0);
      expect(await tdb.db.jobStat.findUnique({ where: { jobId: id } })).toMatchObject({
        totalExecutions: 3,
        successfulExecutions: 1,
        failedExecutions: 2,
        consecutiveFailures: 0,
      });
    } finally {
      server.close();
    }
  });
});

describe('retries follow the failure class', () => {
  it('a transient failure with no retry_on is retried: maxAttempts 3 makes three attempts and one DLQ entry', async () => {
    const { id } = await createJob(deps(), {
      ownerId,
      name: 'flaky',
      type: 'DUMMY',
      schedule: { type: 'ONCE', runAt: new Date() },
      payload: { metadata: { fail: 'retryable' } },
      retryPolicy: { maxAttempts: 3, backoffSeconds: 0, jitter: false },
    });
    await tick();
    const rows = await finished(id, 3);
    expect(rows.map((r) => [r.attempt, r.trigger, r.status, r.errorCode])).toEqual([
      [1, 'SCHEDULED', 'FAILURE', 'DUMMY_FAILURE'],
      [2, 'RETRY', 'FAILURE', 'DUMMY_FAILURE'],
      [3, 'RETRY', 'FAILURE', 'DUMMY_FAILURE'],
    ]);
    const dlq = await until('the DLQ entry', () => tdb.db.dlqEvent.findFirst({ where: { jobId: id } }));
    expect(dlq.runId).toBe(rows[2]!.id);
    expect(await tdb.db.dlqEvent.count({ where: { jobId: id } })).toBe(1);
  });

  it('a permanent failure is never retried: one attempt, one DLQ entry', async () => {
    const { id } = await createJob(deps(), {
      ownerId,
      name: 'broken',
      type: 'DUMMY',
      schedule: { type: 'ONCE', runAt: new Date() },
      payload: { metadata: { fail: 'permanent' } },
      retryPolicy: { maxAttempts: 3, backoffSeconds: 0, jitter: false },
    });
    await tick();
    const [run] = await finished(id, 1);
    const dlq = await until('the DLQ entry', () => tdb.db.dlqEvent.findFirst({ where: { jobId: id } }));
    expect(dlq.runId).toBe(run!.id);
    expect(dlq.failureReason).toMatch(/not retried: a permanent failure/);
    expect(await tdb.db.jobRun.count({ where: { jobId: id } })).toBe(1);
  });

  it('an HTTP 503 with Retry-After: 2 is retried no sooner than two seconds after it failed', async () => {
    let calls = 0;
    const server = createServer((_req, res) => {
      calls++;
      if (calls === 1) {
        res.writeHead(503, { 'retry-after': '2' });
        res.end('busy');
      } else res.end('{"ok":true}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as AddressInfo).port;
      const { id } = await createJob(deps(), {
        ownerId,
        name: 'busy-target',
        type: 'HTTP',
        schedule: { type: 'ONCE', runAt: new Date() },
        payload: { httpUrl: `http://127.0.0.1:${port}/`, httpMethod: 'GET' },
        retryPolicy: { maxAttempts: 3, backoffSeconds: 0, jitter: false },
      });
      await tick();
      const rows = await finished(id, 2);
      expect(rows.map((r) => [r.attempt, r.status, r.errorCode])).toEqual([
        [1, 'FAILURE', 'HTTP_5XX'],
        [2, 'SUCCESS', null],
      ]);
      // The recorded due time of the next attempt, against the recorded end of the failed one.
      expect(rows[1]!.dueAt!.getTime() - rows[0]!.endTime!.getTime()).toBeGreaterThanOrEqual(2000);
    } finally {
      server.close();
    }
  });

  it("with overlap SKIP, two triggered runs failing in turn: each one's retries wait for the other, and both chains end in the DLQ", async () => {
    const { id } = await createJob(deps(), {
      ownerId,
      name: 'two-chains',
      type: 'DUMMY',
      overlapPolicy: 'SKIP',
      schedule: { type: 'ONCE', runAt: new Date(Date.now() + 3_600_000) },
      payload: { metadata: { fail: 'retryable', sleepMs: 1500 } },
      retryPolicy: { maxAttempts: 3, backoffSeconds: 1, jitter: false },
    });
    const a = await triggerRun(deps(), { jobId: id, trigger: 'MANUAL' });
    // B is triggered while A waits for its retry: A's next attempts come due while B runs, and B's
    // while A's run (how they interleave is up to the machine; what must hold is below).
    await until('A to fail once', () =>
      tdb.db.jobRun.findFirst({ where: { id: a.runId, status: 'FAILURE' } }),
    );
    const b = await triggerRun(deps(), { jobId: id, trigger: 'MANUAL' });
    const dlq = await until(
      'both chains to end',
      async () => {
        const rows = await tdb.db.dlqEvent.findMany({ where: { jobId: id } });
        return rows.length >= 2 ? rows : null;
      },
      45_000,
    );
    const runs = await tdb.db.jobRun.findMany({ where: { jobId: id }, orderBy: [{ attempt: 'asc' }] });
    expect(runs.filter((r) => r.status === 'SKIPPED_OVERLAP')).toEqual([]);
    for (const first of [a.runId, b.runId]) {
      const key = runs.find((r) => r.id === first)!.idempotencyKey;
      const chain = runs.filter((r) => r.idempotencyKey === key);
      expect(chain.map((r) => [r.attempt, r.status])).toEqual([
        [1, 'FAILURE'],
        [2, 'FAILURE'],
        [3, 'FAILURE'],
      ]);
      expect(dlq.filter((d) => d.runId === chain[2]!.id)).toHaveLength(1);
    }
    expect(dlq).toHaveLength(2);
  });
});

describe('pausing a job', () => {
  it('a manual run waiting behind a running one never starts once the job is paused, not even when that one ends', async () => {
    const { id } = await createJob(deps(), {
      ownerId,
      name: 'paused-behind',
      type: 'DUMMY',
      overlapPolicy: 'BUFFER_ALL',
      schedule: { type: 'ONCE', runAt: new Date(Date.now() + 3_600_000) },
      payload: { metadata: { sleepMs: 60_000 } },
    });
    const first = await triggerRun(deps(), { jobId: id, trigger: 'MANUAL' });
    await until('the first run to start', () =>
      tdb.db.jobRun.findFirst({ where: { id: first.runId, status: 'RUNNING' } }),
    );
    const second = await triggerRun(deps(), { jobId: id, trigger: 'MANUAL' });
    const waiting = await until('the second run to wait behind the first', () =>
      tdb.db.jobRun.findFirst({
        where: { id: second.runId, status: 'QUEUED', reason: { startsWith: 'buffered behind' } },
      }),
    );

    expect((await pauseJob(deps(), id))?.skippedRuns).toEqual([second.runId]);
    await requestCancel(redis, prefix, first.runId);
    await until('the first run to end', () =>
      tdb.db.jobRun.findFirst({ where: { id: first.runId, status: 'CANCELLED' } }),
    );
    // Its queue job is gone (removed by the pause) or done (a delivery the gate answered): nothing
    // is left that could start it.
    await until('the second run to leave the queue', async () => {
      const job = await queues.get('DUMMY')!.getJob(bullJobId(waiting.idempotencyKey));
      return !job || (await job.getState()) === 'completed' ? true : undefined;
    });
    expect(await tdb.db.jobRun.findUniqueOrThrow({ where: { id: second.runId } })).toMatchObject({
      status: 'SKIPPED_PAUSED',
      reason: 'job paused before the run started',
      startTime: null,
    });
    expect((await tdb.db.job.findUniqueOrThrow({ where: { id } })).status).toBe('PAUSED');
  });
});

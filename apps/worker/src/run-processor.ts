import { PermanentJobError, type JobTypeName } from '@chronos/core';
import type { Db, JobPayload } from '@chronos/db';
import { finishRun, startRun, type RunJobData } from '@chronos/engine';
import { DelayedError, type Job, type Processor } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

/** What an executor gets: the job's payload, an abort signal, and who it runs as. */
export interface ExecContext {
  runId: string;
  jobId: string;
  attempt: number;
  idempotencyKey: string;
  payload: JobPayload | null;
  signal: AbortSignal;
  log: Logger;
}

export type Executor = (ctx: ExecContext) => Promise<unknown>;

/** Resolves when `ms` passed, rejects with the signal's reason when aborted first. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

/**
 * DUMMY: does nothing useful, per its metadata — `{ sleepMs?: number, fail?: boolean, message?: string }`.
 * The workhorse of tests and benchmarks.
 */
export const dummyExecutor: Executor = async (ctx) => {
  const meta = (ctx.payload?.metadata ?? {}) as { sleepMs?: number; fail?: boolean; message?: string };
  if (meta.sleepMs && meta.sleepMs > 0) await sleep(meta.sleepMs, ctx.signal);
  if (meta.fail) throw new PermanentJobError(meta.message ?? 'DUMMY job asked to fail');
  return { ok: true };
};

/** Executors present in this version; the other types fail permanently with a clear message. */
export function executorFor(type: JobTypeName): Executor {
  if (type === 'DUMMY') return dummyExecutor;
  return async () => {
    throw new PermanentJobError(`no executor for ${type} jobs in this version of Chronos`, 'NO_EXECUTOR');
  };
}

export interface RunProcessorDeps {
  db: Db;
  redis: Redis;
  prefix: string;
  workerId: string;
  log: Logger;
  misfireThresholdSeconds: number;
  defaultTimeoutSeconds: number;
  /** Runs in flight by id, for cancellation. */
  inFlight: Map<string, AbortController>;
  /** How long a buffered run waits before it checks again. @defaultValue 500 */
  deferMs?: number;
  executor?: (type: JobTypeName) => Executor;
}

class RunTimeout extends Error {
  constructor(seconds: number) {
    super(`run timed out after ${seconds} s`);
  }
}
/** The abort reason of a cancelled run (cancel request, or the worker shutting down). */
export class RunCancelled extends Error {
  constructor() {
    super('run cancelled');
  }
}

/**
 * The BullMQ processor of one job type: gate the slot on Postgres (`startRun`), run the executor under
 * a timeout and an abort signal, record the end (`finishRun`, fenced by the lock token).
 */
export function runProcessor(type: JobTypeName, deps: RunProcessorDeps): Processor<RunJobData> {
  const execute = (deps.executor ?? executorFor)(type);
  return async (job: Job<RunJobData>, token?: string, signal?: AbortSignal) => {
    const { runId } = job.data;
    const decision = await startRun(deps.db, {
      runId,
      workerId: deps.workerId,
      misfireThresholdSeconds: deps.misfireThresholdSeconds,
    });
    if (decision.action === 'GONE' || decision.action === 'SKIPPED') {
      deps.log.info({ runId, decision: decision.action, reason: decision.reason }, 'run not started');
      return { started: false, reason: decision.reason };
    }
    if (decision.action === 'DEFER') {
      for (const id of decision.cancel) await deps.redis.publish(`${deps.prefix}:cancel-run`, id);
      await job.moveToDelayed(Date.now() + (deps.deferMs ?? 500), token);
      throw new DelayedError();
    }

    const payload = await deps.db.jobPayload.findUnique({ where: { jobId: decision.jobId } });
    const timeoutSeconds = payload?.timeoutSeconds ?? deps.defaultTimeoutSeconds;
    const controller = new AbortController();
    deps.inFlight.set(runId, controller);
    const onWorkerAbort = () => controller.abort(new RunCancelled());
    signal?.addEventListener('abort', onWorkerAbort, { once: true });
    const timer = setTimeout(() => controller.abort(new RunTimeout(timeoutSeconds)), timeoutSeconds * 1000);
    const log = deps.log.child({ runId, jobId: decision.jobId, attempt: decision.attempt });
    try {
      const output = await Promise.race([
        execute({
          runId,
          jobId: decision.jobId,
          attempt: decision.attempt,
          idempotencyKey: job.data.idempotencyKey,
          payload,
          signal: controller.signal,
          log,
        }),
        new Promise<never>((_, reject) =>
          controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true }),
        ),
      ]);
      await finishRun(
        deps.db,
        { runId, lockToken: decision.lockToken, status: 'SUCCESS', output: (output ?? null) as never },
        { redis: deps.redis, prefix: deps.prefix },
      );
      return { started: true, status: 'SUCCESS' };
    } catch (err) {
      const reason = controller.signal.aborted ? controller.signal.reason : err;
      const status =
        reason instanceof RunTimeout ? 'TIMEOUT' : reason instanceof RunCancelled ? 'CANCELLED' : 'FAILURE';
      await finishRun(
        deps.db,
        {
          runId,
          lockToken: decision.lockToken,
          status,
          errorMessage: (reason as Error)?.message ?? String(reason),
          errorCode: (reason as { code?: string })?.code ?? status,
        },
        { redis: deps.redis, prefix: deps.prefix },
      );
      return { started: true, status };
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onWorkerAbort);
      deps.inFlight.delete(runId);
    }
  };
}

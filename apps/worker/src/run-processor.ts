import {
  ChronosError,
  PermanentJobError,
  createMasker,
  parsePayload,
  payloadSchemas,
  settleWithin,
  triggerInCode,
  type JobTypeName,
  type Masker,
  type SecretBox,
} from '@chronos/core';
import { isDatabaseUnavailable, type Db, type RunStatus } from '@chronos/db';
import type { ContextWriter } from './run-context-writer.ts';
import {
  buildRunContext,
  cancelRequested,
  classifyFailure,
  closeCancelledLostRun,
  createRunLogger,
  requestCancel,
  resolveRunInputs,
  type FinishInput,
  type PayloadFields,
  type RunJobData,
  type RunRecorder,
} from '@chronos/engine';
import type { CircuitBreakers, ExecContext, ExecResult, OutboundPolicy } from '@chronos/executors';
import { DelayedError, UnrecoverableError, type Job, type Processor } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

/** What the worker hands an executor besides the run's identity (see @chronos/executors). */
export type ExecutorFn = (payload: unknown, ctx: ExecContext) => Promise<ExecResult>;

/** The abort reason of a cancelled run (a cancel request). */
export class RunCancelled extends Error {
  constructor() {
    super('run cancelled');
  }
}
class RunTimeout extends Error {
  constructor(seconds: number) {
    super(`run timed out after ${seconds} s`);
  }
}
/**
 * The abort reason of runs still going when the worker's shutdown grace period ends: not an outcome
 * of the run. The run goes back to the queue and another worker takes it over as a new attempt.
 */
export class WorkerShutdown extends Error {
  constructor() {
    super('the worker shut down before the run ended');
  }
}

const yes = () => true;

/** How long a run waits in the queue when the gate cannot reach the database, before it tries again. */
const GATE_UNAVAILABLE_RETRY_MS = 1000;

/** How long an aborted executor gets to stop (and log how) before the run's end is recorded. */
export const ABORT_SETTLE_MS = 5000;

export interface RunProcessorDeps {
  /** Reads variables for templates. */
  db: Db;
  /** Starts and finishes runs in Postgres (batched; retries and the DLQ follow from its finish). */
  runs: RunRecorder;
  /** Stores each finished run's context document in object storage (absent: none is kept). */
  contexts?: ContextWriter | undefined;
  redis: Redis;
  prefix: string;
  workerId: string;
  log: Logger;
  defaultTimeoutSeconds: number;
  runLog: { maxLines: number; maxBytes: number };
  outbound: OutboundPolicy;
  breakers: CircuitBreakers;
  /** Decrypts sensitive variables; absent without ENCRYPTION_KEY. */
  secretBox: SecretBox | undefined;
  /** Runs in flight by id, for cancellation. */
  inFlight: Map<string, AbortController>;
  /** How long a buffered run waits before it checks again. @defaultValue 500 */
  deferMs?: number;
  /** The executor of each type (see executors.ts); undefined: none in this version. */
  executor: (type: JobTypeName) => ExecutorFn | undefined;
}

/** The payload columns a type's executor reads, nulls dropped, validated with the type's schema. */
function executorPayload(type: JobTypeName, fields: PayloadFields): unknown {
  const present = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== null && v !== undefined));
  if (type in payloadSchemas) return parsePayload(type as keyof typeof payloadSchemas, present);
  return present;
}

/**
 * The BullMQ processor of one job type: gate the run on Postgres (`RunRecorder.start`; a run whose
 * worker died is taken over as a new attempt), resolve its payload (variables, templates), run the
 * executor under a timeout and an abort signal with a batched, capped, masked run log, and record
 * the end with the log's last lines (`RunRecorder.finish`: fenced by the lock token; retries, DLQ,
 * stats and alerts follow from it).
 */
export function runProcessor(type: JobTypeName, deps: RunProcessorDeps): Processor<RunJobData> {
  const execute = deps.executor(type);
  return async (job: Job<RunJobData>, token?: string, signal?: AbortSignal) => {
    const { runId, jobId } = job.data;
    const takeover = (job.attemptsStarted ?? 0) > 1 || (job.stalledCounter ?? 0) > 0;
    // Cancelled while its worker was lost: closed CANCELLED, never run again.
    if (
      takeover &&
      (await cancelRequested(deps.redis, deps.prefix, runId)) &&
      (await closeCancelledLostRun(deps.db, runId, { redis: deps.redis, prefix: deps.prefix }))
    ) {
      deps.log.info({ runId }, 'run cancelled while its worker was lost: not taken over');
      return { started: false, reason: 'cancelled' };
    }
    // Registered before the gate: a cancel sent as soon as the run is RUNNING finds it here, and
    // so does the worker's shutdown (BullMQ's signal), whenever it comes.
    const controller = new AbortController();
    const onWorkerAbort = () => controller.abort(new WorkerShutdown());
    const ids = new Set([runId]);
    deps.inFlight.set(runId, controller);
    signal?.addEventListener('abort', onWorkerAbort, { once: true });
    if (signal?.aborted) onWorkerAbort();
    try {
      return await gateAndRun();
    } finally {
      signal?.removeEventListener('abort', onWorkerAbort);
      // Only this processor's entries (the same run may have come back to this worker meanwhile).
      for (const id of ids) if (deps.inFlight.get(id) === controller) deps.inFlight.delete(id);
    }

    /** The gate, then the run: everything after the abort controller is registered. */
    async function gateAndRun() {
      const decision = await deps.runs.start(runId, { jobId, takeover }).catch((err: unknown) => {
        if (!isDatabaseUnavailable(err)) throw err;
        return null;
      });
      if (decision === null) {
        // Nothing is decided while PostgreSQL is away: the run waits in the queue (Redis) and
        // goes through the gate again — where lateness is judged by the misfire policy as usual.
        const retryInMs = GATE_UNAVAILABLE_RETRY_MS;
        deps.log.warn(
          { runId, retryInMs },
          'database unreachable at the run gate: the run waits in the queue',
        );
        await job.moveToDelayed(Date.now() + retryInMs, token);
        throw new DelayedError();
      }
      if (decision.action === 'GONE' || decision.action === 'SKIPPED') {
        deps.log.info({ runId, decision: decision.action, reason: decision.reason }, 'run not started');
        return { started: false, reason: decision.reason };
      }
      if (decision.action === 'DEFER') {
        for (const id of decision.cancel) await requestCancel(deps.redis, deps.prefix, id);
        await job.moveToDelayed(Date.now() + (decision.delayMs ?? deps.deferMs ?? 500), token);
        throw new DelayedError();
      }
      const { runId: currentRunId, run: row } = decision;
      if (currentRunId !== runId) {
        ids.add(currentRunId);
        deps.inFlight.set(currentRunId, controller);
      }
      // A later redelivery of this BullMQ job must find the attempt that now runs.
      if (decision.tookOverFrom) await job.updateData({ ...job.data, runId: decision.runId });
      let masker: Masker | undefined;
      const mask = (t: string) => (masker ? masker.mask(t) : t);
      const runLog = createRunLogger(deps.runs.writeLog, currentRunId, {
        ...deps.runLog,
        mask,
        onError: (err) => deps.log.warn({ err, runId: currentRunId }, 'run log write failed'),
      });
      let timer: NodeJS.Timeout | undefined;
      const finish = async (input: Omit<FinishInput, 'runId' | 'lockToken'>) =>
        deps.runs.finish(
          { runId: currentRunId, jobId: decision.jobId, lockToken: decision.lockToken, ...input },
          await runLog.detach(),
        );
      const startedAt = new Date();
      let resolved: Record<string, unknown> | undefined;
      let running: Promise<ExecResult> | undefined;
      /** Queues the run's context document (inputs and output, masked) once its finish was accepted. */
      const keepContext = (
        accepted: boolean,
        status: RunStatus,
        extra: { output?: unknown; errorMessage?: string | null; errorCode?: string | null },
      ) => {
        if (!deps.contexts || !accepted) return;
        deps.contexts.write(
          buildRunContext({
            run: {
              id: currentRunId,
              jobId: row.job.id,
              attempt: row.attempt,
              definitionVersion: decision.definitionVersion,
              trigger: row.trigger,
              status,
              errorMessage: extra.errorMessage ?? null,
              errorCode: extra.errorCode ?? null,
              startTime: startedAt,
              endTime: new Date(),
            },
            inputs: resolved ?? {},
            output: extra.output,
            masker: masker ?? createMasker([]),
          }),
        );
      };
      try {
        const timeoutSeconds =
          row.payload.timeoutSeconds ?? row.job.timeoutSeconds ?? deps.defaultTimeoutSeconds;
        timer = setTimeout(() => controller.abort(new RunTimeout(timeoutSeconds)), timeoutSeconds * 1000);

        const codeIssue = triggerInCode(type, row.payload);
        if (codeIssue)
          throw new PermanentJobError(`payload.${codeIssue.field} ${codeIssue.message}`, 'TRIGGER_IN_CODE');
        const inputs = await resolveRunInputs(deps.db, deps.secretBox, {
          job: { id: row.job.id, name: row.job.name, ownerId: row.job.ownerId },
          run: {
            id: currentRunId,
            scheduledTime: row.scheduledTime,
            attempt: row.attempt,
            idempotencyKey: row.idempotencyKey,
          },
          payload: row.payload,
          trigger: (row.triggerPayload ?? null) as never,
        });
        masker = inputs.masker;
        resolved = inputs.payload as Record<string, unknown>;
        if (!execute)
          throw new PermanentJobError(
            `no executor for ${type} jobs in this version of Chronos`,
            'NO_EXECUTOR',
          );
        const payload = executorPayload(type, inputs.payload);
        // Cancelled, timed out or shut down while the inputs resolved: the executor never starts.
        controller.signal.throwIfAborted();
        runLog.info('run started', { attempt: row.attempt, worker: deps.workerId, timeoutSeconds });
        running = execute(payload, {
          runId: currentRunId,
          jobId: row.job.id,
          attempt: row.attempt,
          idempotencyKey: row.idempotencyKey,
          signal: controller.signal,
          log: runLog,
          outbound: deps.outbound,
          breakers: deps.breakers,
        });
        const result = await Promise.race([
          running,
          new Promise<never>((_, reject) =>
            controller.signal.addEventListener('abort', () => reject(controller.signal.reason), {
              once: true,
            }),
          ),
        ]);
        runLog.info('run succeeded');
        const output = masker.maskDeep(result.output ?? null) ?? null;
        const done = await finish({
          status: 'SUCCESS',
          exitCode: result.exitCode ?? null,
          output: output as never,
        });
        keepContext(done.accepted, 'SUCCESS', { output });
        return { started: true, status: 'SUCCESS' };
      } catch (err) {
        const reason: unknown = controller.signal.aborted ? controller.signal.reason : err;
        // The executor was told to stop: its end (and its last log lines) come before the run's.
        const stopped =
          !controller.signal.aborted || !running
            ? true
            : await settleWithin(running.then(yes, yes), ABORT_SETTLE_MS, false);
        if (reason instanceof WorkerShutdown) {
          // Not the run's outcome: it stays RUNNING. Its executor stopped: the run goes back to the
          // queue, where another worker takes it over at once as a new attempt. It did not stop: the
          // run is never handed over while it may still be going here — it stays this worker's until
          // the process is gone and BullMQ's stall check hands it over the same way.
          runLog.warn(
            stopped
              ? 'the worker shut down before the run ended: another worker takes it over'
              : 'the worker shut down before the run ended and its executor did not stop: another worker takes it over once this one is gone',
          );
          await runLog.close();
          if (!stopped) return new Promise<never>(() => {});
          await job.moveToDelayed(Date.now(), token);
          throw new DelayedError();
        }
        const status =
          reason instanceof RunTimeout ? 'TIMEOUT' : reason instanceof RunCancelled ? 'CANCELLED' : 'FAILURE';
        // The failure's class (code, transient or permanent, the target's Retry-After) comes from the
        // one classifier; a run's own timeout is transient, a cancel is neither retried nor dead-lettered.
        const fields = classifyFailure(reason);
        const errorCode = status === 'FAILURE' ? fields.code : status;
        const message = mask((reason as Error)?.message ?? String(reason));
        runLog.error(`run ended ${status}: ${message}`, { code: errorCode });
        if (!(reason instanceof ChronosError) && status === 'FAILURE')
          deps.log.warn(
            { err: masker ? masker.maskDeep(reason) : reason, runId: currentRunId },
            'executor threw an untyped error',
          );
        const done = await finish({
          status,
          errorMessage: message,
          errorCode,
          httpStatus: fields.httpStatus,
          retryable: status === 'FAILURE' ? fields.retryable : status === 'TIMEOUT',
          retryAfterMs: status === 'FAILURE' ? (fields.retryAfterMs ?? null) : null,
          exitCode: fields.exitCode,
        });
        keepContext(done.accepted, status, { errorMessage: message, errorCode });
        // A failed run fails its BullMQ job too, with the run's (masked) error, once its end is
        // recorded: Bull Board's FAILED tab and the queue's failed count tell the truth. BullMQ never
        // retries it (UnrecoverableError): Chronos has already queued the next attempt or
        // dead-lettered the run. A cancel is not a failure (neither retried nor dead-lettered): its
        // BullMQ job completes, as does an attempt whose end was not accepted (not its to record).
        if (done.accepted && status !== 'CANCELLED') {
          const failed = new UnrecoverableError(message);
          // What Bull Board shows as the trace: the run's failure, not the worker's stack.
          failed.stack = `${status}${errorCode && errorCode !== status ? ` (${errorCode})` : ''}: ${message}`;
          throw failed;
        }
        return { started: true, status };
      } finally {
        clearTimeout(timer);
      }
    }
  };
}

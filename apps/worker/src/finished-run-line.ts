import type { RunJobData } from '@chronos/engine';
import { DelayedError, type Job, type Processor } from 'bullmq';
import type { Logger } from 'pino';

/** The run statuses a processor's thrown error can stand for (its stack starts with one). */
const THROWN_STATUS = /^(FAILURE|TIMEOUT)\b(?: \(([A-Z0-9_]+)\))?/;

/**
 * Wraps a run processor so each run that started logs one line when it ends: the Chronos job's
 * name (the BullMQ job is named after it), the slot, the status and how long the worker spent on
 * it. A run that ends FAILURE or TIMEOUT arrives as the error that fails its BullMQ job; a run
 * handed back to the queue (shutdown) or never started logs nothing here.
 */
export function withFinishedRunLine(
  processor: Processor<RunJobData>,
  log: Pick<Logger, 'info' | 'warn'>,
  now: () => number = Date.now,
): Processor<RunJobData> {
  // Three parameters, passed on: BullMQ hands a processor the abort signal (the worker's shutdown)
  // only when the function declares it.
  return async (job: Job<RunJobData>, token?: string, signal?: AbortSignal) => {
    const began = now();
    const line = (status: string, extra: Record<string, unknown> = {}) => {
      const durationMs = now() - began;
      const fields = {
        job: job.name,
        slot: job.data.scheduledTime,
        status,
        durationMs,
        runId: job.data.runId,
        ...extra,
      };
      const text = `run ${status}: ${job.name} (slot ${job.data.scheduledTime}) in ${durationMs} ms`;
      if (status === 'SUCCESS' || status === 'CANCELLED') log.info(fields, text);
      else log.warn(fields, text);
    };
    let result: unknown;
    try {
      result = await processor(job, token, signal);
    } catch (err) {
      const m =
        err instanceof Error && !(err instanceof DelayedError) ? THROWN_STATUS.exec(err.stack ?? '') : null;
      if (m) line(m[1] as string, m[2] ? { code: m[2] } : {});
      throw err;
    }
    const outcome = result as { started?: boolean; status?: string } | undefined;
    if (outcome?.started && outcome.status) line(outcome.status);
    return result;
  };
}

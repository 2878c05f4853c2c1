import { createPool, isDatabaseUnavailable, type Db, type Pool } from '@chronos/db';
import { MicroBatcher } from './micro-batcher.ts';
import {
  finishRunsBatch,
  startRunsBatch,
  poolLogSink,
  type BatchFinish,
  type BatchFinishItem,
  type BatchStart,
  type KnownPayload,
  type StartItem,
} from './run-batches.ts';
import type { RunLogLine, RunLogSink } from './run-log.ts';
import {
  finishRun,
  startRun,
  type FinishDeps,
  type FinishInput,
  type FinishResult,
  type StartDecision,
} from './runs.ts';
import { loadStartedRun, type StartedRun } from './started-run.ts';

/**
 * The pool a run recorder sends its statements through: its own, and small (each statement
 * carries many runs; one start and one finish statement are in flight at most, plus run-log
 * writes of long runs). Two settings of its connections serve those statements only:
 * - generic plans for prepared statements: left to choose, Postgres re-plans a statement whose
 *   batches are small (a custom plan looks cheaper for one run than the generic one), and
 *   planning these statements costs more than running them;
 * - no bitmap scans: the one range they read through an index, the RUNNING runs, then goes by a
 *   plain index scan, which marks the entries of runs that ended as dead for the next scans (a
 *   bitmap scan would read them all again until the next vacuum).
 */
export function createRunRecorderPool(
  url: string,
  opts: {
    /** @defaultValue 4 */
    connections?: number;
    applicationName?: string;
    /** See `CreatePoolOptions.onConnectionError`. */
    onConnectionError?: (err: Error) => void;
  } = {},
): Pool {
  return createPool(url, {
    maxConnections: opts.connections ?? 4,
    ...(opts.applicationName ? { applicationName: opts.applicationName } : {}),
    ...(opts.onConnectionError ? { onConnectionError: opts.onConnectionError } : {}),
    settings: { plan_cache_mode: 'force_generic_plan', enable_bitmapscan: 'off' },
  });
}

export interface RunRecorderOptions {
  /** For the transactional paths (`startRun`, `finishRun`) and the reads after them. */
  db: Db;
  /** For the batched statements and the run-log lines (see `createRunRecorderPool`). */
  pool: Pool;
  workerId: string;
  /** The deployment's misfire threshold (a schedule may set its own). */
  misfireThresholdSeconds: number;
  /** What `finishRun` needs to enqueue retries and announce fixed-delay re-plans. */
  finishDeps?: FinishDeps;
  /** Most runs one statement carries. @defaultValue 200 */
  maxBatch?: number;
  /** A batched statement failed: its runs went the transactional way instead. */
  onBatchError?: (err: unknown, kind: 'start' | 'finish') => void;
  /** Writing a run's last log lines failed (the run is recorded all the same). */
  onLogError?: (err: unknown, runId: string) => void;
  /**
   * A run's end could not be recorded because the database is unreachable; `finish` tries again
   * after `retryInMs` (doubling up to 5 s) for as long as it takes.
   */
  onDatabaseUnavailable?: (err: unknown, runId: string, retryInMs: number) => void;
}

/** `startRun`'s decision; a started run comes with what executing it needs. */
export type RecordedStart =
  | Exclude<StartDecision, { action: 'RUN' }>
  | (Extract<StartDecision, { action: 'RUN' }> & { run: StartedRun });

/** The worker's access to the run lifecycle in Postgres. */
export interface RunRecorder {
  /**
   * The gate before a run (see `startRun` for what it decides). `jobId`, the job the queue says the
   * run belongs to, keeps this process's start and finish statements off each other's job rows.
   */
  start(runId: string, opts?: { jobId?: string; takeover?: boolean }): Promise<RecordedStart>;
  /** Records a run's end (see `finishRun`) with the last lines of its log (`RunLogger.detach()`). */
  finish(input: FinishInput & { jobId: string }, log: readonly RunLogLine[]): Promise<FinishResult>;
  /** Where a run's log writes its lines while the run goes on. */
  readonly writeLog: RunLogSink;
  /** Resolves when no statement waits or runs. */
  drain(): Promise<void>;
}

/** A statement whose job changed under it is tried again this often before the transactional path. */
const TRIES = 3;

/** Jobs whose payload a recorder holds (the ones used longest ago are forgotten first). */
const HELD_PAYLOADS = 10_000;

/**
 * The run lifecycle as a worker records it, built for throughput. The common cases — a due run of
 * a live job starting; a run succeeding — go through one statement each that carries every run
 * submitted while the previous one was in flight (group commit: at concurrency 1 a start and a
 * finish cost one round trip each, at higher concurrency a fraction of one). The finish statement
 * also writes the run's remaining log lines and counts it in job_stats. Everything else — failures
 * (retries, DLQ, alerts), skips, deferrals, takeovers, ONCE and fixed-delay jobs, an open alert —
 * goes through the transactional `startRun` / `finishRun`, unchanged.
 */
export function createRunRecorder(opts: RunRecorderOptions): RunRecorder {
  const { db, pool } = opts;
  // Starts and finishes go in parallel, each kind one statement at a time; a run waits while a
  // statement of the other kind holds its job (they would contend for the job's row).
  const batcher = new MicroBatcher({ maxBatch: opts.maxBatch ?? 200 });
  const startBatch = batcher.channel<StartItem, BatchStart>((items) =>
    startRunsBatch(pool, items, opts).catch((err: unknown) => {
      opts.onBatchError?.(err, 'start');
      return items.map(() => ({ outcome: 'SLOW' as const }));
    }),
  );
  // The payload of each job's latest started version: a start statement leaves out the payload of
  // a version held here (it is read, turned to JSON and parsed once per version, not once per run).
  // Executors never see these objects: resolveRunInputs hands them a rendered copy.
  const payloads = new Map<string, KnownPayload>();
  const hold = (known: KnownPayload) => {
    payloads.delete(known.jobId);
    payloads.set(known.jobId, known);
    if (payloads.size > HELD_PAYLOADS) payloads.delete(payloads.keys().next().value as string);
  };
  const finishBatch = batcher.channel<BatchFinishItem, BatchFinish>((items) =>
    finishRunsBatch(pool, items).catch((err: unknown) => {
      opts.onBatchError?.(err, 'finish');
      return items.map(() => 'SLOW' as const);
    }),
  );
  const writeLog = poolLogSink(pool);

  /** Submits `item` again while the answer says the job changed under the statement, at most TRIES times. */
  async function submit<In, Out>(
    send: (item: In, key: string) => Promise<Out>,
    item: In,
    key: string,
    retry: (out: Out) => boolean,
  ) {
    let out = await send(item, key);
    for (let tries = 1; tries < TRIES && retry(out); tries++) out = await send(item, key);
    return out;
  }

  return {
    writeLog,
    async start(runId, { jobId, takeover = false } = {}) {
      const known = jobId === undefined ? undefined : payloads.get(jobId);
      const b = await submit(startBatch, { runId, known }, jobId ?? runId, (o) => o.outcome === 'RETRY');
      if (b.outcome === 'RUN') {
        const { outcome: _outcome, ...started } = b;
        hold({ jobId: b.jobId, version: b.definitionVersion, payload: b.run.payload });
        return { action: 'RUN', ...started };
      }
      const d = await startRun(db, {
        runId,
        workerId: opts.workerId,
        misfireThresholdSeconds: opts.misfireThresholdSeconds,
        takeover,
      });
      return d.action === 'RUN' ? { ...d, run: await loadStartedRun(db, d.runId) } : d;
    },
    async finish(input, log) {
      // The run's end happened: it is recorded, however long the database is away (the worker keeps
      // the queue's lock on the run meanwhile, so no other worker takes it over and runs it again).
      let lines = log;
      for (let waitMs = 100; ; waitMs = Math.min(waitMs * 2, 5000)) {
        try {
          return await finishOnce(input, lines, () => (lines = []));
        } catch (err) {
          if (!isDatabaseUnavailable(err)) throw err;
          opts.onDatabaseUnavailable?.(err, input.runId, waitMs);
          await new Promise((resolve) => setTimeout(resolve, waitMs));
        }
      }
    },
    drain: () => batcher.drain(),
  };

  /** One try at `finish`; `written()` is called once `log` is stored, so a retry does not store it twice. */
  async function finishOnce(
    input: FinishInput & { jobId: string },
    log: readonly RunLogLine[],
    written: () => void,
  ): Promise<FinishResult> {
    // A success with nothing to say about a failure: the batched statement records exactly that.
    if (input.status === 'SUCCESS' && !input.errorMessage && !input.errorCode) {
      const outcome = await submit(
        finishBatch,
        {
          runId: input.runId,
          lockToken: input.lockToken,
          exitCode: input.exitCode ?? null,
          output: input.output === undefined || input.output === null ? null : JSON.stringify(input.output),
          log,
        },
        input.jobId,
        (o) => o === 'RETRY',
      );
      if (outcome === 'DONE') return { accepted: true };
      if (outcome === 'STALE') {
        await writeLast(input.runId, log, written);
        return { accepted: false };
      }
    }
    await writeLast(input.runId, log, written);
    const { jobId: _jobId, ...finish } = input;
    return finishRun(db, finish, opts.finishDeps);
  }

  /**
   * The lines a finish did not write itself, written before the transactional finish (as before).
   * An unreachable database is thrown (the finish waits and tries again); other failures lose them.
   */
  async function writeLast(runId: string, log: readonly RunLogLine[], written: () => void): Promise<void> {
    if (log.length === 0) return;
    try {
      await writeLog(runId, log);
      written();
    } catch (err) {
      if (isDatabaseUnavailable(err)) throw err;
      opts.onLogError?.(err, runId);
    }
  }
}

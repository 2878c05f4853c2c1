// What the benchmark's orchestrator and its worker process say to each other over the fork IPC.

/**
 * - `noop`: records the pickup and returns (raw BullMQ, nothing else to do).
 * - `pickup`: records the pickup and returns; a background flusher marks picked-up runs SUCCESS in
 *   Postgres in batches, so the ledger the scheduler's reconciler reads looks like production's
 *   (otherwise every run stays QUEUED, the reconciler re-adds those BullMQ has trimmed, and the
 *   benchmark counts duplicates it caused itself).
 * - `e2e`: what apps/worker's processor does for a DUMMY job: `startRun` (the Postgres gate that
 *   records start_time), the payload read, a no-op executor, `finishRun`.
 */
export type WorkerMode = 'noop' | 'pickup' | 'e2e';

export interface WorkerProcessConfig {
  mode: WorkerMode;
  redisUrl: string;
  /** REDIS_PREFIX of the queue. */
  prefix: string;
  concurrency: number;
  workerId: string;
  /** Needed by `pickup` and `e2e`. */
  databaseUrl?: string;
}

export type ToWorker =
  | { type: 'count'; from: number; to: number }
  /** The measured window opens / closes: the event-loop delay histogram covers it alone. */
  | { type: 'window'; phase: 'open' | 'close' }
  | { type: 'stop' };

/** Event-loop delay over the window, in ms: how late the process' own timers and I/O callbacks ran. */
export interface LoopDelay {
  p50: number;
  p99: number;
  max: number;
}

export type FromWorker =
  | { type: 'ready' }
  | { type: 'count'; picked: number }
  | {
      type: 'result';
      /** Parallel arrays (cheaper over IPC than objects): key, slot time, pickup time. */
      keys: string[];
      scheduled: number[];
      picked: number[];
      /** Jobs whose processor threw (e2e: a failed startRun / finishRun). */
      failed: number;
      errors: string[];
      loopDelay: LoopDelay | null;
    };

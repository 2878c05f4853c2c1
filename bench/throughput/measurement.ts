// What every measurement shares: its options and its result.

import type { Redis } from 'ioredis';
import type { Drain } from './drain.ts';

export interface MeasureOptions {
  /** BullMQ worker concurrency (WORKER_CONCURRENCY). */
  concurrency: number;
  /** Runs put in the queue before the worker starts, warm-up included. */
  backlog: number;
  /** Skipped after the first finished run before the clock starts. */
  warmupMs: number;
  /** Stops after this much clocked time even with runs left (a pilot that only sizes the backlog). */
  stopAfterMs?: number;
  /** Unique per measurement: names its database and Redis prefix. */
  label: string;
  redisUrl: string;
  /** For CPU readings and cleanup by prefix. */
  admin: Redis;
  signal: AbortSignal;
  log: (line: string) => void;
}

export interface Measurement {
  system: 'Chronos' | 'raw BullMQ';
  concurrency: number;
  /** Chronos: how many jobs the runs are spread over (round robin). */
  jobs: number | null;
  backlog: number;
  drain: Drain;
  /** Finished per second while the clock ran. */
  rate: number;
  /** How long adding the backlog to the queue took (not clocked). */
  enqueueMs: number;
  /** Runs / jobs that finished other than as a success. */
  failed: number;
  /** 1-minute load average when the clock stopped. */
  load1: number;
}

/** Seconds on the clock. */
export function clockedSeconds(m: Measurement): number {
  return (m.drain.end.t - m.drain.start.t) / 1000;
}

/** Runs finished while the clock ran. */
export function clockedRuns(m: Measurement): number {
  return m.drain.end.done - m.drain.start.done;
}

/** CPU milliseconds per clocked run of the worker process, the database backends and Redis. */
export function cpuPerRun(m: Measurement): { worker: number; postgres: number; redis: number } {
  const runs = clockedRuns(m);
  const d = (k: 'worker' | 'postgres' | 'redis') =>
    ((m.drain.end.cpu[k] - m.drain.start.cpu[k]) * 1000) / runs;
  return { worker: d('worker'), postgres: d('postgres'), redis: d('redis') };
}

/** Share of one core the worker process used while the clock ran. */
export function workerCoreShare(m: Measurement): number {
  return (m.drain.end.cpu.worker - m.drain.start.cpu.worker) / clockedSeconds(m);
}

// What every scenario shares: its options, its result rows, and the steady window it measures.

import { loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { loopDelayMonitor } from './loop-delay.ts';
import type { Window, WindowResult } from './measure.ts';
import type { LoopDelay } from './protocol.ts';
import type { WorkerHandle } from './worker-handle.ts';

export interface ScenarioOptions {
  /** Active schedules. */
  size: number;
  /** Length of the measured window. */
  seconds: number;
  /** Skipped after the first slot before the window opens. */
  warmupMs: number;
  /** From arming the load to its first slot. */
  leadMs: number;
  /** BullMQ worker concurrency (both systems). */
  concurrency: number;
  /** Fraction of schedules that are `* * * * *` crons firing together. */
  cronShare: number;
  /** A URL of the PostgreSQL server (its `postgres` database creates and drops ours). */
  postgresUrl: string;
  redisUrl: string;
  /** For cleanup by prefix. */
  admin: Redis;
  signal: AbortSignal;
  log: (line: string) => void;
}

export interface ResultRow {
  size: number;
  system: string;
  /** What the lateness is measured to. */
  measure: string;
  window: WindowResult;
  /** 1-minute load average when the window closed. */
  load1: number;
  /** 1-minute load average when the run started (set by the orchestrator). */
  loadBefore?: number;
}

export interface ScenarioOutcome {
  rows: ResultRow[];
  /** Diagnostics worth a line under the table. */
  notes: string[];
}

/** How long the orchestrator waits for stragglers once the window has closed. */
const DRAIN_IDLE_MS = 10_000;
const DRAIN_MAX_MS = 120_000;

/** The window [t0 + warm-up, t0 + warm-up + seconds). */
export function steadyWindow(t0: number, opts: Pick<ScenarioOptions, 'warmupMs' | 'seconds'>): Window {
  const from = t0 + opts.warmupMs;
  return { from, to: from + opts.seconds * 1000 };
}

/** The first slot: a whole second at least `leadMs` from now. */
export function firstSlotAfter(leadMs: number): number {
  return Math.ceil((Date.now() + leadMs) / 1000) * 1000;
}

export async function sleepUntil(at: number, signal: AbortSignal): Promise<void> {
  const ms = at - Date.now();
  if (ms > 0) await sleep(ms, undefined, { signal });
}

export interface WindowWait {
  /** 1-minute load average when the window closed. */
  load1: number;
  /** This process' event-loop delay during the window (the scheduler's, or the raw producer's). */
  loopDelay: LoopDelay | null;
}

/**
 * Waits until the window closed and then until every slot due in it was picked up, or nothing moved
 * for 10 s (a slot still missing then is missed), at most 2 min.
 */
export async function waitForWindow(
  worker: WorkerHandle,
  window: Window,
  expected: number,
  signal: AbortSignal,
  /** Runs as the window closes (a snapshot of the system's state then). */
  onClose?: () => Promise<void>,
): Promise<WindowWait> {
  const loop = loopDelayMonitor();
  await sleepUntil(window.from, signal);
  loop.open();
  worker.window('open');
  await sleepUntil(window.to, signal);
  loop.close();
  worker.window('close');
  const load1 = loadavg()[0] ?? Number.NaN;
  await onClose?.();
  const start = Date.now();
  let last = -1;
  let lastChange = Date.now();
  for (;;) {
    const picked = await worker.count(window.from, window.to);
    if (picked >= expected) break;
    if (picked !== last) {
      last = picked;
      lastChange = Date.now();
    }
    if (Date.now() - lastChange > DRAIN_IDLE_MS || Date.now() - start > DRAIN_MAX_MS) break;
    await sleep(250, undefined, { signal });
  }
  return { load1, loopDelay: loop.result() };
}

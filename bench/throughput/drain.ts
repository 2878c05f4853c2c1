// The clock: polls how many runs have finished while the worker drains a backlog, and times the
// steady part of the drain (after a warm-up, until the last one).

import { setTimeout as sleep } from 'node:timers/promises';

/** What one poll saw. */
export interface Sample {
  /** Date.now() when the poll answered. */
  t: number;
  /** Finished in any way (succeeded or not). */
  done: number;
  /** Finished other than as a success. */
  failed: number;
  /** CPU seconds used so far by the worker process, the database backends, the Redis server. */
  cpu: { worker: number; postgres: number; redis: number };
}

export interface DrainOptions {
  /** Runs in the backlog. */
  total: number;
  /** Skipped after the first finish before the clock starts (JIT, pools filling, caches). */
  warmupMs: number;
  /** @defaultValue 100 */
  pollMs?: number;
  /** Fails the drain when nothing finishes for this long. @defaultValue 30000 */
  stallMs?: number;
  /** Stops after this much clocked time even if runs are left (a pilot only needs a rate). */
  stopAfterMs?: number;
  /** Fails the drain when this becomes true (the worker process exited). */
  aborted?: () => string | undefined;
  signal: AbortSignal;
}

export interface Drain {
  /** When the clock started and stopped. */
  start: Sample;
  end: Sample;
  /** Time from the first poll to the first finished run (worker start-up included). */
  firstFinishMs: number;
  /** Whether every run of the backlog finished. */
  complete: boolean;
  /**
   * False when the backlog drained within the warm-up: the clock then ran from the first poll that
   * saw a finished run, and the rate is only a rough estimate (good enough to size the next try).
   */
  warmedUp: boolean;
}

/** Runs finished between the clock's start and stop, per second. */
export function drainRate(d: Drain): number {
  return (d.end.done - d.start.done) / ((d.end.t - d.start.t) / 1000);
}

/**
 * Polls `read` until all `total` runs are done (or `stopAfterMs` of clocked time passed). The clock
 * starts at the first poll at least `warmupMs` after the first finished run; the rate is the
 * finishes between the two polls over the time between them, so the poll interval costs no accuracy
 * beyond the last poll being up to `pollMs` late. Throws when the backlog stalls.
 */
export async function timeDrain(read: () => Promise<Sample>, opts: DrainOptions): Promise<Drain> {
  const pollMs = opts.pollMs ?? 100;
  const stallMs = opts.stallMs ?? 30_000;
  const first = await read();
  let firstSeen: Sample | undefined;
  let start: Sample | undefined;
  let lastDone = first.done;
  let lastChange = first.t;
  for (;;) {
    await sleep(pollMs, undefined, { signal: opts.signal });
    const s = await read();
    const why = opts.aborted?.();
    if (why && s.done < opts.total) throw new Error(why);
    if (s.done !== lastDone) {
      lastDone = s.done;
      lastChange = s.t;
    } else if (s.t - lastChange > stallMs) {
      throw new Error(`stalled: ${s.done} of ${opts.total} finished, none in the last ${stallMs / 1000} s`);
    }
    if (firstSeen === undefined && s.done > 0) firstSeen = s;
    if (start === undefined) {
      if (firstSeen !== undefined && s.done >= opts.total)
        return {
          start: firstSeen,
          end: s,
          firstFinishMs: firstSeen.t - first.t,
          complete: true,
          warmedUp: false,
        };
      if (firstSeen !== undefined && s.t - firstSeen.t >= opts.warmupMs) start = s;
      continue;
    }
    const complete = s.done >= opts.total;
    if (complete || (opts.stopAfterMs !== undefined && s.t - start.t >= opts.stopAfterMs))
      return {
        start,
        end: s,
        firstFinishMs: (firstSeen?.t ?? s.t) - first.t,
        complete,
        warmedUp: true,
      };
  }
}

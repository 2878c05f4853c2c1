// Event-loop delay of a process during the measured window: a late timer or a late socket callback
// there is fire lateness that neither Redis nor Postgres caused.

import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { LoopDelay } from './protocol.ts';

export interface LoopDelayMonitor {
  open(): void;
  close(): void;
  /** The window's delays (null when it never opened), and stops monitoring. */
  result(): LoopDelay | null;
}

/** The sampling timer's period; every sample includes it, so it is taken off. */
const RESOLUTION_MS = 10;

export function loopDelayMonitor(): LoopDelayMonitor {
  const h: IntervalHistogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  let snapshot: LoopDelay | null = null;
  let opened = false;
  const ms = (ns: number) => Math.max(0, ns / 1e6 - RESOLUTION_MS);
  const read = (): LoopDelay => ({ p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max) });
  return {
    open() {
      opened = true;
      h.reset();
      h.enable();
    },
    close() {
      if (opened && !snapshot) snapshot = read();
      h.disable();
    },
    result() {
      if (opened && !snapshot) snapshot = read();
      h.disable();
      return snapshot;
    },
  };
}

export function loopDelayText(d: LoopDelay | null): string {
  return d ? `p50 ${d.p50.toFixed(1)} / p99 ${d.p99.toFixed(1)} / max ${d.max.toFixed(0)} ms` : 'n/a';
}

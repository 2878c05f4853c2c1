// Turning raw pickups into the numbers of the table. Pure.

/** One BullMQ job a worker took: its key (`<id>-<slot ms>`), nominal slot time and pickup time. */
export interface Pickup {
  key: string;
  scheduledMs: number;
  pickedMs: number;
}

export interface LatenessSummary {
  count: number;
  min: number;
  p50: number;
  p99: number;
  max: number;
  /** Fires before their nominal time (negative lateness): must be zero. */
  early: number;
}

/** Nearest-rank percentile of ascending `sorted` (not interpolated: every value was observed). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}

export function summarize(values: readonly number[]): LatenessSummary {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    count: sorted.length,
    min: sorted[0] ?? Number.NaN,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] ?? Number.NaN,
    early: sorted.filter((v) => v < 0).length,
  };
}

export interface Window {
  /** Epoch ms, inclusive. */
  from: number;
  /** Epoch ms, exclusive. */
  to: number;
}

export interface WindowResult {
  /** Pickup − slot time of each slot due in the window (its first pickup). */
  lateness: LatenessSummary;
  /** Slots due in the window per second. */
  offeredPerSecond: number;
  /** Pickups that happened inside the window per second. */
  firesPerSecond: number;
  expected: number;
  /** Slots due in the window never picked up (by the end of the drain). */
  missed: number;
  /** Extra pickups of slots due in the window (a slot picked up twice counts 1). */
  duplicates: number;
  /** Pickups in the window of keys nobody planned (a wrong slot time): must be zero. */
  unexpected: number;
}

export function measureWindow(
  pickups: readonly Pickup[],
  expected: ReadonlySet<string>,
  window: Window,
): WindowResult {
  const seconds = (window.to - window.from) / 1000;
  const first = new Map<string, Pickup>();
  let duplicates = 0;
  let unexpected = 0;
  let firedInWindow = 0;
  for (const p of pickups) {
    if (p.pickedMs >= window.from && p.pickedMs < window.to) firedInWindow++;
    const due = p.scheduledMs >= window.from && p.scheduledMs < window.to;
    if (!expected.has(p.key)) {
      if (due) unexpected++;
      continue;
    }
    const seen = first.get(p.key);
    if (!seen) first.set(p.key, p);
    else {
      duplicates++;
      if (p.pickedMs < seen.pickedMs) first.set(p.key, p);
    }
  }
  return {
    lateness: summarize([...first.values()].map((p) => p.pickedMs - p.scheduledMs)),
    offeredPerSecond: expected.size / seconds,
    firesPerSecond: firedInWindow / seconds,
    expected: expected.size,
    missed: expected.size - first.size,
    duplicates,
    unexpected,
  };
}

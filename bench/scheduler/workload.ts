// The benchmark's schedule layout, shared by the Chronos and the raw BullMQ runs so both fire at
// exactly the same instants. Pure: every time is derived from `t0`, the first instant anything fires.

/** Every schedule fires once a minute, so N schedules offer N/60 fires per second. */
export const PERIOD_MS = 60_000;

export interface BenchSchedule {
  /** Job id (Chronos) or job-id stem (raw BullMQ). */
  id: string;
  /**
   * INTERVAL: fixed-rate 60 s, first fire at `t0 + offsetMs`; offsets spread evenly over the minute.
   * CRON: `* * * * *` (UTC), every minute boundary from `t0` on: all of them fire at once.
   */
  kind: 'INTERVAL' | 'CRON';
  offsetMs: number;
}

/**
 * `size` schedules, a `cronShare` fraction of them cron bursts, the rest intervals spread so that
 * about size/60 come due in every second.
 */
export function layoutSchedules(ids: readonly string[], cronShare: number): BenchSchedule[] {
  const cronCount = Math.round(ids.length * cronShare);
  const intervalCount = ids.length - cronCount;
  return ids.map((id, i) =>
    i < cronCount
      ? { id, kind: 'CRON', offsetMs: 0 }
      : { id, kind: 'INTERVAL', offsetMs: Math.floor(((i - cronCount) * PERIOD_MS) / intervalCount) },
  );
}

/** The first cron slot: the first minute boundary at or after `t0`. */
export function firstCronSlot(t0: number): number {
  return Math.ceil(t0 / PERIOD_MS) * PERIOD_MS;
}

/** Nominal slot times (epoch ms) of one schedule in [from, to). */
export function slotsBetween(s: BenchSchedule, t0: number, from: number, to: number): number[] {
  const first = s.kind === 'CRON' ? firstCronSlot(t0) : t0 + s.offsetMs;
  const out: number[] = [];
  const k0 = Math.max(0, Math.ceil((from - first) / PERIOD_MS));
  for (let t = first + k0 * PERIOD_MS; t < to; t += PERIOD_MS) out.push(t);
  return out;
}

/** Every slot of every schedule in [from, to), as `<id>-<ms>` keys (Chronos' idempotency keys). */
export function expectedKeys(schedules: readonly BenchSchedule[], t0: number, from: number, to: number) {
  const keys = new Set<string>();
  for (const s of schedules) for (const t of slotsBetween(s, t0, from, to)) keys.add(`${s.id}-${t}`);
  return keys;
}

/** Every slot in [from, to) sorted by time: what the raw BullMQ producer adds. */
export function slotTimeline(
  schedules: readonly BenchSchedule[],
  t0: number,
  from: number,
  to: number,
): { id: string; at: number }[] {
  const out: { id: string; at: number }[] = [];
  for (const s of schedules) for (const at of slotsBetween(s, t0, from, to)) out.push({ id: s.id, at });
  return out.sort((a, b) => a.at - b.at);
}

// Where a slot's lateness went, from BullMQ's own event stream: every state change is an XADD whose
// entry id is Redis' clock in ms. "waiting" (prev "delayed") is the promotion, whoever did it
// (Chronos' promoter or BullMQ's own delayed-job check); "active" is a worker's moveToActive. The
// stream is read once after the window, so nothing extra runs while it is measured.

import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { summarize, type Pickup } from './measure.ts';
import type { PromoteCall } from './promote-probe.ts';

/** Enough for every event of a 100k-schedule run (the default keeps 10 000). */
const MAX_EVENTS = 5_000_000;
const PAGE = 10_000;

/**
 * Raises the queue's event-stream cap so the whole run stays readable. Call once the queue is ready:
 * a new Queue writes the default cap into the meta hash when it connects.
 */
export async function keepAllEvents(queue: Queue, redis: Redis): Promise<void> {
  await queue.waitUntilReady();
  await redis.ping();
  await redis.hset(queue.keys['meta'] as string, 'opts.maxLenEvents', MAX_EVENTS);
}

export interface JobEvents {
  /** Redis time of the promotion to waiting (ms). */
  waiting?: number;
  /** Redis time of the move to active (ms). */
  active?: number;
}

/** Promotion and activation times by job id, from the first such event of each job. */
export async function readJobEvents(queue: Queue, redis: Redis): Promise<Map<string, JobEvents>> {
  const key = queue.keys['events'] as string;
  const out = new Map<string, JobEvents>();
  let start = '-';
  for (;;) {
    const page = (await redis.xrange(key, start, '+', 'COUNT', PAGE)) as [string, string[]][];
    for (const [id, fields] of page) {
      const f: Record<string, string> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i] as string] = fields[i + 1] as string;
      const event = f['event'];
      const jobId = f['jobId'];
      if (!jobId || (event !== 'waiting' && event !== 'active')) continue;
      const at = Number(id.split('-')[0]);
      const e = out.get(jobId) ?? {};
      if (event === 'waiting' && e.waiting === undefined) e.waiting = at;
      if (event === 'active' && e.active === undefined) e.active = at;
      out.set(jobId, e);
    }
    if (page.length < PAGE) return out;
    start = `(${(page[page.length - 1] as [string, string[]])[0]}`;
  }
}

const fmt = (xs: number[]) => {
  const s = summarize(xs);
  return s.count === 0 ? 'n/a' : `${Math.round(s.p50)} / ${Math.round(s.p99)} / ${Math.round(s.max)}`;
};

/**
 * p50 / p99 / max of the legs of each expected slot's first pickup: slot → promoted, promoted →
 * active, active → processor called; with the scheduler's promote() calls, also slot → promote()
 * called and its round trip.
 */
export function lateBreakdown(
  pickups: readonly Pickup[],
  expected: ReadonlySet<string>,
  events: ReadonlyMap<string, JobEvents>,
  promotes?: ReadonlyMap<string, PromoteCall>,
): string {
  const first = new Map<string, Pickup>();
  for (const p of pickups) if (expected.has(p.key) && !first.has(p.key)) first.set(p.key, p);
  const promoted: number[] = [];
  const activated: number[] = [];
  const called: number[] = [];
  const timer: number[] = [];
  const trip: number[] = [];
  let byBullmq = 0;
  for (const p of first.values()) {
    const c = promotes?.get(p.key);
    if (c) {
      timer.push(c.called - p.scheduledMs);
      trip.push(c.returned - c.called);
    } else byBullmq++;
    const e = events.get(p.key);
    if (e?.waiting === undefined || e.active === undefined) continue;
    promoted.push(e.waiting - p.scheduledMs);
    activated.push(e.active - e.waiting);
    called.push(p.pickedMs - e.active);
  }
  const probe = promotes
    ? `; promoter: slot → promote() called ${fmt(timer)}, promote() round trip ${fmt(trip)}, ` +
      `${byBullmq} slots never promoted by it`
    : '';
  return (
    `lateness legs p50 / p99 / max ms (${promoted.length} slots): slot → promoted ${fmt(promoted)}; ` +
    `promoted → active ${fmt(activated)}; active → processor ${fmt(called)}${probe}`
  );
}

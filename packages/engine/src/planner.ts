import { fireTimesBetween, nextFireTimes, slotKey, type ScheduleSpec } from '@chronos/core';
import { createHash } from 'node:crypto';

export type MisfirePolicyName = 'FIRE_NOW' | 'IGNORE' | 'RESCHEDULE';

/** What the planner decided for one nominal slot. */
export interface PlannedSlot {
  /** The nominal fire time. */
  time: Date;
  /** `<jobId>-<epoch ms>`: ledger idempotency key and BullMQ job id. */
  key: string;
  fate: 'ENQUEUE' | 'SKIPPED_MISFIRE';
  /** When the run should start (slot + jitter, or now for a late slot that still runs). */
  dueAt: Date;
  /** Why, for skipped or late slots. */
  reason?: string;
}

export interface PlanInput {
  jobId: string;
  spec: ScheduleSpec;
  /** The first slot not yet recorded (job_schedules.next_fire_at). */
  from: Date;
  /** The last slot already recorded (job_schedules.last_fire_at), if any. */
  lastFireAt: Date | null;
  /**
   * The previous claim recorded late slots of the same catch-up and was cut off by `chunkLimit`
   * (the ledger row at `lastFireAt` carries a misfire reason): RESCHEDULE's budget is spent.
   */
  continuingCatchUp?: boolean;
  /** The database clock. */
  now: Date;
  horizonMs: number;
  misfireThresholdMs: number;
  misfirePolicy: MisfirePolicyName;
  /** RESCHEDULE runs at most this many missed slots. */
  maxCatchUp: number;
  jitterSeconds: number;
  /** Most slots recorded for one schedule in one claim; the rest wait for the next tick. */
  chunkLimit: number;
}

export interface Plan {
  slots: PlannedSlot[];
  /** The next slot not recorded by this plan; null when the schedule has nothing more to fire. */
  nextFireAt: Date | null;
}

/**
 * Deterministic jitter of a slot in [0, maxSeconds] s: the same slot always gets the same delay, so a
 * re-plan or a second scheduler never moves it, and slots of many jobs spread evenly.
 */
export function jitterMs(key: string, maxSeconds: number): number {
  if (maxSeconds <= 0) return 0;
  const h = createHash('sha1').update(key).digest().readUInt32BE(0);
  return h % (maxSeconds * 1000 + 1);
}

/**
 * Decides the fate of every slot from `from` up to `now + horizon`: slots on time are enqueued at
 * their (jittered) time; slots later than the misfire threshold follow the misfire policy —
 * FIRE_NOW collapses them into one run now (the latest), IGNORE skips them all, RESCHEDULE runs the
 * oldest `maxCatchUp` now and skips the rest. Every slot gets exactly one entry. Pure.
 */
export function planSlots(input: PlanInput): Plan {
  const { spec, now } = input;
  const windowEnd = new Date(now.getTime() + input.horizonMs);
  const fixedDelay = spec.type === 'INTERVAL' && spec.intervalMode === 'FIXED_DELAY';
  // A fixed-delay slot depends on when the previous run finished: plan one at a time.
  const limit = fixedDelay ? 1 : input.chunkLimit;
  const { times, truncated } = fireTimesBetween(spec, new Date(input.from.getTime() - 1), windowEnd, limit);
  const lateBefore = now.getTime() - input.misfireThresholdMs;
  const isLate = (t: Date) => t.getTime() < lateBefore;
  // A catch-up that spans several chunks: the previous chunk already spent the policy's budget.
  const continuing = input.continuingCatchUp ?? false;

  const late = times.filter(isLate);
  // More late slots follow in the next chunk when this chunk was cut and ends late.
  const lateRangeOpen = truncated && late.length === times.length;
  const slots: PlannedSlot[] = [];
  const policy = input.misfirePolicy;
  let caughtUp = 0;
  for (const [i, time] of times.entries()) {
    const key = slotKey(input.jobId, time);
    if (!isLate(time)) {
      slots.push({
        time,
        key,
        fate: 'ENQUEUE',
        dueAt: new Date(time.getTime() + jitterMs(key, input.jitterSeconds)),
      });
      continue;
    }
    const lateBy = `${Math.round((now.getTime() - time.getTime()) / 1000)} s late`;
    const isLastLate = i === late.length - 1 && !lateRangeOpen;
    let run = false;
    if (policy === 'FIRE_NOW') run = isLastLate;
    else if (policy === 'RESCHEDULE') run = !continuing && caughtUp < input.maxCatchUp;
    if (run) {
      caughtUp++;
      slots.push({ time, key, fate: 'ENQUEUE', dueAt: now, reason: `misfire (${lateBy}): ${policy}` });
    } else {
      slots.push({
        time,
        key,
        fate: 'SKIPPED_MISFIRE',
        dueAt: now,
        reason:
          policy === 'IGNORE'
            ? `misfire (${lateBy}): policy IGNORE`
            : policy === 'FIRE_NOW'
              ? `misfire (${lateBy}): collapsed into the latest missed slot (FIRE_NOW)`
              : `misfire (${lateBy}): beyond the catch-up cap of ${input.maxCatchUp} (RESCHEDULE)`,
      });
    }
  }

  let nextFireAt: Date | null;
  if (spec.type === 'ONCE' || fixedDelay)
    // ONCE is done; a fixed-delay schedule waits for the run to finish (the worker sets the next).
    nextFireAt = times.length > 0 ? null : input.from;
  else {
    const after = truncated ? (times[times.length - 1] as Date) : windowEnd;
    nextFireAt = nextFireTimes(spec, after, 1)[0] ?? null;
  }
  return { slots, nextFireAt };
}

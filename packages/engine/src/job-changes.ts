import {
  ConflictError,
  ValidationError,
  fireTimesBetween,
  nextFireTimes,
  queueName,
  slotKey,
  type JobTypeName,
} from '@chronos/core';
import type { Db, Prisma } from '@chronos/db';
import type { QueueSet } from '@chronos/queue';
import type { Redis } from 'ioredis';
import { publishChange } from './changes.ts';
import { bullJobId, enqueueRuns, type EnqueueItem } from './enqueue.ts';
import { recordSlots, type SlotRecord } from './ledger.ts';
import { jitterMs } from './planner.ts';
import { PAUSED_BEFORE_START } from './runs.ts';
import type { WithinTransaction } from './jobs.ts';
import { SCHEDULE_COLUMNS, specOf, type ScheduleRow } from './spec.ts';

/** What the job-changing functions need: the database, the queues and the change channel. */
export interface EngineDeps {
  db: Db;
  queues: QueueSet;
  redis: Redis;
  /** REDIS_PREFIX */
  prefix: string;
}

type Tx = Prisma.TransactionClient;

interface LockedJob extends ScheduleRow {
  schedule_id: number;
  job_id: string;
  name: string;
  type: JobTypeName;
  status: string;
  version: number;
  allow_scheduled: boolean;
  paused_at: Date | null;
  last_fire_at: Date | null;
  resume_policy: 'SKIP_MISSED' | 'RUN_ONCE' | 'REPLAY';
  misfire_max_catch_up: number;
  jitter_seconds: number;
  db_now: Date;
}

const lockColumns = SCHEDULE_COLUMNS.map((c) => `s.${c}`).join(', ');

/** A job without a schedule (it runs when triggered), locked: its job row alone. */
interface UnscheduledJob {
  schedule_id: null;
  job_id: string;
  name: string;
  type: JobTypeName;
  status: string;
  version: number;
  db_now: Date;
}

/**
 * Locks a job's schedule row (waiting for a scheduler that holds it) and reads job + schedule; a
 * job without a schedule is locked and read alone (`schedule_id` null).
 */
async function lockJob(tx: Tx, jobId: string): Promise<LockedJob | UnscheduledJob | null> {
  const rows = await tx.$queryRawUnsafe<LockedJob[]>(
    `SELECT s.id AS schedule_id, j.id AS job_id, ${lockColumns}, s.last_fire_at,
            s.resume_policy::text AS resume_policy, s.misfire_max_catch_up, s.jitter_seconds,
            j.name, j.type::text AS type, j.status::text AS status, j.version, j.allow_scheduled,
            j.paused_at, now() AS db_now
       FROM jobs j JOIN job_schedules s ON s.job_id = j.id
      WHERE j.id = $1
        FOR UPDATE OF s, j`,
    jobId,
  );
  if (rows[0]) return rows[0];
  const [unscheduled] = await tx.$queryRaw<UnscheduledJob[]>`
    SELECT NULL::int AS schedule_id, j.id AS job_id, j.name, j.type::text AS type, j.status::text AS status,
           j.version, now() AS db_now
      FROM jobs j
     WHERE j.id = ${jobId} AND NOT EXISTS (SELECT 1 FROM job_schedules s WHERE s.job_id = j.id)
       FOR UPDATE OF j`;
  return unscheduled ?? null;
}

/** True when the job's schedule should produce slots. */
function isActive(job: LockedJob): boolean {
  return job.allow_scheduled && !['PAUSED', 'CANCELLED', 'SUCCEEDED', 'FAILED'].includes(job.status);
}

/** First slot to plan for a schedule created or changed at `now`. */
export function firstFireAt(row: ScheduleRow, now: Date): Date | null {
  const spec = specOf({ ...row, next_fire_at: null });
  if (spec.type === 'ONCE') return spec.runAt;
  return nextFireTimes(spec, now, 1)[0] ?? null;
}

interface PendingSlot {
  id: string;
  idempotency_key: string;
  scheduled_time: Date;
}

/** Not-started scheduled slots of a job after `after` (the ones a change may invalidate). */
async function futureQueuedSlots(tx: Tx, jobId: string, after: Date): Promise<PendingSlot[]> {
  return tx.$queryRaw<PendingSlot[]>`
    SELECT id, idempotency_key, scheduled_time FROM job_runs
     WHERE job_id = ${jobId} AND status = 'QUEUED' AND trigger = 'SCHEDULED' AND start_time IS NULL
       AND scheduled_time > ${after}
     ORDER BY scheduled_time`;
}

/**
 * Runs outside the schedule (MANUAL, WEBHOOK, BACKFILL, RETRY, REPLAY) that wait and have not
 * started, with the BullMQ job id of each.
 */
async function waitingUnscheduledRuns(tx: Tx, jobId: string): Promise<{ id: string; bull_job_id: string }[]> {
  const rows = await tx.$queryRaw<{ id: string; idempotency_key: string; attempt: number }[]>`
    SELECT id, idempotency_key, attempt FROM job_runs
     WHERE job_id = ${jobId} AND status = 'QUEUED' AND trigger <> 'SCHEDULED' AND start_time IS NULL`;
  return rows.map((r) => ({ id: r.id, bull_job_id: bullJobId(r.idempotency_key, r.attempt) }));
}

async function skipSlots(tx: Tx, ids: string[], status: 'SKIPPED' | 'SKIPPED_PAUSED', reason: string) {
  if (ids.length === 0) return;
  await tx.$executeRaw`
    UPDATE job_runs SET status = ${status}::"RunStatus", reason = ${reason}, updated_at = now()
     WHERE id = ANY(${ids}::text[]) AND status = 'QUEUED' AND start_time IS NULL`;
}

/** Removes BullMQ jobs of slots that no longer apply; one already taken by a worker stays (the worker re-checks). */
async function removeFromQueue(deps: EngineDeps, type: JobTypeName, keys: string[]): Promise<void> {
  const queue = deps.queues.get(type);
  if (!queue || keys.length === 0) return;
  await Promise.all(keys.map((k) => queue.remove(k).catch(() => 0)));
}

async function setNextFire(tx: Tx, scheduleId: number, next: Date | null): Promise<void> {
  await tx.$executeRaw`UPDATE job_schedules SET next_fire_at = ${next}, updated_at = now() WHERE id = ${scheduleId}`;
}

export interface ReplanResult {
  /** Keys of enqueued future slots that no longer apply (removed from Redis, ledger says why). */
  removed: string[];
  nextFireAt: Date | null;
}

/**
 * Re-plans a job after its definition or schedule changed (call after committing the change):
 * future slots that no longer apply are marked SKIPPED ("schedule changed") and removed from Redis,
 * next_fire_at is recomputed from now, and schedulers are told at once.
 */
export async function replanJob(
  deps: EngineDeps,
  jobId: string,
  opts: {
    /**
     * Leave next_fire_at of an active job as it is: for a ONCE job whose `runAt`, long past, a
     * change kept — planned anew it would fire at once; still planned, it waits for a scheduler.
     */
    keepNextFireAt?: boolean;
  } = {},
): Promise<ReplanResult | null> {
  const out = await deps.db.$transaction(async (tx) => {
    const job = await lockJob(tx, jobId);
    if (!job) return null;
    const now = job.db_now;
    const future = await futureQueuedSlots(tx, jobId, now);
    if (job.schedule_id === null) {
      // The schedule was removed: none of its slots still ahead applies.
      await skipSlots(
        tx,
        future.map((f) => f.id),
        'SKIPPED',
        `schedule removed (definition v${job.version})`,
      );
      return { type: job.type, removed: future.map((f) => f.idempotency_key), nextFireAt: null };
    }
    const spec = specOf({ ...job, next_fire_at: null });
    let keep = new Set<number>();
    if (isActive(job) && future.length > 0) {
      const until = (future[future.length - 1] as PendingSlot).scheduled_time;
      const { times } = fireTimesBetween(spec, now, until, future.length + 1);
      keep = new Set(times.map((t) => t.getTime()));
    }
    const invalid = future.filter((f) => !keep.has(f.scheduled_time.getTime()));
    await skipSlots(
      tx,
      invalid.map((f) => f.id),
      'SKIPPED',
      `schedule changed (definition v${job.version})`,
    );
    let next: Date | null = null;
    if (isActive(job) && opts.keepNextFireAt) next = job.next_fire_at;
    else if (isActive(job)) {
      next = firstFireAt(job, now);
      // A ONCE slot already in the ledger is not planned again.
      if (next && spec.type === 'ONCE') {
        const exists = await tx.jobRun.findFirst({
          where: { idempotencyKey: slotKey(jobId, next), status: { not: 'SKIPPED' } },
          select: { id: true },
        });
        if (exists) next = null;
      }
    }
    await setNextFire(tx, job.schedule_id, next);
    return { type: job.type, removed: invalid.map((f) => f.idempotency_key), nextFireAt: next };
  });
  if (!out) return null;
  await removeFromQueue(deps, out.type, out.removed);
  await publishChange(deps.redis, deps.prefix, jobId);
  return { removed: out.removed, nextFireAt: out.nextFireAt };
}

export interface PauseResult {
  /** Keys of the enqueued future slots of the schedule that left Redis (resume plans them again). */
  removed: string[];
  /**
   * Ids of the waiting runs outside the schedule (MANUAL, WEBHOOK, BACKFILL, RETRY, REPLAY) that left
   * Redis, recorded SKIPPED_PAUSED: resume does not bring them back; trigger the job again.
   */
  skippedRuns: string[];
}

/**
 * Pauses a job: nothing of it starts until `resumeJob`. Its enqueued future slots are removed from
 * Redis and recorded SKIPPED_PAUSED ('job paused': resume re-plans them per its policy), its other
 * waiting runs — manual, webhook, backfill, a retry waiting for its backoff, a DLQ replay — likewise
 * (`PAUSED_BEFORE_START`: they stay skipped), and the schedule stops planning. A run whose queue job
 * a worker has already taken is refused by the gate (`startRun`), which records it the same way.
 */
export async function pauseJob(
  deps: EngineDeps,
  jobId: string,
  opts: { withinTransaction?: WithinTransaction<PauseResult> } = {},
): Promise<PauseResult | null> {
  const out = await deps.db.$transaction(async (tx) => {
    const job = await lockJob(tx, jobId);
    if (!job) return null;
    if (job.status === 'PAUSED') {
      const none: PauseResult = { removed: [], skippedRuns: [] };
      await opts.withinTransaction?.(tx, none);
      return { type: job.type, result: none, bullJobIds: [] as string[] };
    }
    const now = job.db_now;
    await tx.$executeRaw`UPDATE jobs SET status = 'PAUSED', paused_at = ${now}, updated_at = now() WHERE id = ${jobId}`;
    const future = await futureQueuedSlots(tx, jobId, now);
    await skipSlots(
      tx,
      future.map((f) => f.id),
      'SKIPPED_PAUSED',
      'job paused',
    );
    const unscheduled = await waitingUnscheduledRuns(tx, jobId);
    await skipSlots(
      tx,
      unscheduled.map((r) => r.id),
      'SKIPPED_PAUSED',
      PAUSED_BEFORE_START,
    );
    if (job.schedule_id !== null) await setNextFire(tx, job.schedule_id, null);
    const result: PauseResult = {
      removed: future.map((f) => f.idempotency_key),
      skippedRuns: unscheduled.map((r) => r.id),
    };
    await opts.withinTransaction?.(tx, result);
    return {
      type: job.type,
      result,
      bullJobIds: [...result.removed.map((k) => bullJobId(k)), ...unscheduled.map((r) => r.bull_job_id)],
    };
  });
  if (!out) return null;
  await removeFromQueue(deps, out.type, out.bullJobIds);
  await publishChange(deps.redis, deps.prefix, jobId);
  return out.result;
}

export interface ResumeResult {
  /** Slots that came due during the pause. */
  missed: number;
  /** Of those, queued to run now by the resume policy. */
  replayed: number;
  nextFireAt: Date | null;
}

/** Most missed slots one resume records; a longer pause of a very dense schedule keeps the rest unrecorded. */
const RESUME_SCAN_LIMIT = 100_000;

/**
 * Resumes a paused job. Slots that came due during the pause follow the schedule's resume policy:
 * SKIP_MISSED records them all SKIPPED_PAUSED; RUN_ONCE runs the latest now and skips the rest;
 * REPLAY runs them oldest first now, up to the catch-up cap, and skips the rest. Future slots skipped
 * by the pause run as planned again.
 */
export async function resumeJob(
  deps: EngineDeps,
  jobId: string,
  policy?: 'SKIP_MISSED' | 'RUN_ONCE' | 'REPLAY',
  opts: { withinTransaction?: WithinTransaction<ResumeResult> } = {},
): Promise<ResumeResult | null> {
  const out = await deps.db.$transaction(
    async (tx) => {
      const job = await lockJob(tx, jobId);
      if (!job) return null;
      const now = job.db_now;
      if (job.schedule_id === null) {
        // Nothing was planned, so nothing was missed: the job waits for triggers again.
        if (job.status === 'PAUSED')
          await tx.$executeRaw`UPDATE jobs SET status = 'PENDING', paused_at = NULL, updated_at = now() WHERE id = ${jobId}`;
        await opts.withinTransaction?.(tx, { missed: 0, replayed: 0, nextFireAt: null });
        return { type: job.type, items: [] as EnqueueItem[], missed: 0, replayed: 0, next: null };
      }
      if (job.status !== 'PAUSED') {
        await opts.withinTransaction?.(tx, { missed: 0, replayed: 0, nextFireAt: job.next_fire_at });
        return { type: job.type, items: [] as EnqueueItem[], missed: 0, replayed: 0, next: job.next_fire_at };
      }
      const resumePolicy = policy ?? job.resume_policy;
      const pausedAt = job.paused_at ?? now;
      await tx.$executeRaw`UPDATE jobs SET status = 'SCHEDULED', paused_at = NULL, updated_at = now() WHERE id = ${jobId}`;
      const spec = specOf({ ...job, next_fire_at: null });

      // Slots this pause skipped, and slots that came due while nothing was planned.
      const skipped = await tx.jobRun.findMany({
        where: {
          jobId,
          status: 'SKIPPED_PAUSED',
          reason: 'job paused',
          scheduledTime: { gte: pausedAt },
          startTime: null,
        },
        select: { id: true, idempotencyKey: true, scheduledTime: true },
        orderBy: { scheduledTime: 'asc' },
      });
      const recordedUntil = job.last_fire_at && job.last_fire_at > pausedAt ? job.last_fire_at : pausedAt;
      const { times: unrecorded } =
        spec.type === 'ONCE'
          ? { times: spec.runAt > recordedUntil && spec.runAt <= now ? [spec.runAt] : [] }
          : fireTimesBetween(spec, recordedUntil, now, RESUME_SCAN_LIMIT);

      const futureSkipped = skipped.filter((s) => s.scheduledTime > now);
      const missed = [
        ...skipped.filter((s) => s.scheduledTime <= now).map((s) => s.scheduledTime),
        ...unrecorded,
      ].sort((a, b) => a.getTime() - b.getTime());
      const runNow = new Set<number>();
      if (resumePolicy === 'RUN_ONCE' && missed.length > 0)
        runNow.add((missed[missed.length - 1] as Date).getTime());
      if (resumePolicy === 'REPLAY')
        for (const t of missed.slice(0, job.misfire_max_catch_up)) runNow.add(t.getTime());

      const records: SlotRecord[] = [];
      const record = (time: Date, queued: boolean, dueAt: Date, reason: string | null) =>
        records.push({
          jobId,
          key: slotKey(jobId, time),
          status: queued ? 'QUEUED' : 'SKIPPED_PAUSED',
          trigger: 'SCHEDULED',
          scheduledTime: time,
          dueAt,
          reason,
          definitionVersion: job.version,
        });
      for (const t of missed)
        record(
          t,
          runNow.has(t.getTime()),
          now,
          runNow.has(t.getTime()) ? `missed while paused: ${resumePolicy}` : 'missed while paused',
        );
      for (const s of futureSkipped) {
        const key = s.idempotencyKey;
        record(
          s.scheduledTime,
          true,
          new Date(s.scheduledTime.getTime() + jitterMs(key, job.jitter_seconds)),
          'resumed',
        );
      }
      const queued = await recordSlots(tx, records, ['SKIPPED_PAUSED']);
      const lastRecorded = records.reduce<Date | null>(
        (m, r) => (!m || r.scheduledTime > m ? r.scheduledTime : m),
        job.last_fire_at,
      );
      const after = lastRecorded && lastRecorded > now ? lastRecorded : now;
      // A ONCE slot still ahead that the pause kept from being recorded is planned again.
      const next =
        spec.type === 'ONCE'
          ? spec.runAt > after
            ? spec.runAt
            : null
          : (nextFireTimes(spec, after, 1)[0] ?? null);
      await tx.$executeRaw`
        UPDATE job_schedules SET next_fire_at = ${next}, last_fire_at = ${lastRecorded}, updated_at = now()
         WHERE id = ${job.schedule_id}`;
      await opts.withinTransaction?.(tx, { missed: missed.length, replayed: runNow.size, nextFireAt: next });
      return {
        type: job.type,
        items: queued.map((q) => ({
          type: job.type,
          runId: q.id,
          jobId,
          jobName: job.name,
          key: q.idempotency_key,
          scheduledTime: q.scheduled_time,
          dueAt: q.due_at,
        })),
        missed: missed.length,
        replayed: runNow.size,
        next,
      };
    },
    { timeout: 60_000 },
  );
  if (!out) return null;
  await enqueueRuns(deps.queues, out.items, Date.now());
  await publishChange(deps.redis, deps.prefix, jobId);
  return { missed: out.missed, replayed: out.replayed, nextFireAt: out.next };
}

/** Deletes a job (its ledger goes with it) and removes its not-started slots from Redis. */
export async function deleteJob(
  deps: EngineDeps,
  jobId: string,
  /** With the version deleted, locked: a caller's precondition (If-Match) checked there holds. */
  opts: { withinTransaction?: WithinTransaction<{ version: number }> } = {},
): Promise<boolean> {
  const out = await deps.db.$transaction(async (tx) => {
    const job = await lockJob(tx, jobId);
    if (!job) return null;
    const pending = await tx.jobRun.findMany({
      where: { jobId, status: 'QUEUED', startTime: null },
      select: { idempotencyKey: true },
    });
    await tx.job.delete({ where: { id: jobId } });
    await opts.withinTransaction?.(tx, { version: job.version });
    return { type: job.type as JobTypeName, keys: pending.map((p) => p.idempotencyKey) };
  });
  if (!out) return false;
  await removeFromQueue(deps, out.type, out.keys);
  await publishChange(deps.redis, deps.prefix, jobId);
  return true;
}

export interface BackfillResult {
  /** Slots queued by this backfill. */
  enqueued: number;
  /** Slots already in the ledger that ran or wait to run: not run again. */
  deduplicated: number;
  /** The range held more slots than the limit; the rest were not touched. */
  truncated: boolean;
}

/**
 * Enqueues every slot of the job's schedule in [from, to] (at most `limit`), with the same
 * idempotency keys as scheduled slots: a slot that already ran or waits is not duplicated; a slot
 * that was skipped (misfire, pause, overlap, change) runs now. A paused job is refused
 * (ConflictError), as a trigger is.
 */
export async function backfillJob(
  deps: EngineDeps,
  jobId: string,
  range: { from: Date; to: Date },
  limit = 1000,
  opts: { withinTransaction?: WithinTransaction<BackfillResult> } = {},
): Promise<BackfillResult | null> {
  const out = await deps.db.$transaction(
    async (tx) => {
      const job = await lockJob(tx, jobId);
      if (!job) return null;
      if (job.schedule_id === null)
        throw new ValidationError(`job ${jobId} has no schedule: there are no slots to backfill`, [
          {
            path: 'schedule',
            message: 'the job has no schedule (it runs when triggered); trigger it instead',
          },
        ]);
      // As a trigger is: a paused job starts nothing, so its backfill would only be recorded skipped.
      if (job.status === 'PAUSED') throw new ConflictError(`job ${jobId} is paused; resume it first`);
      const now = job.db_now;
      const to = range.to > now ? now : range.to;
      const spec = specOf({ ...job, next_fire_at: null });
      const { times, truncated } =
        spec.type === 'ONCE'
          ? { times: spec.runAt >= range.from && spec.runAt <= to ? [spec.runAt] : [], truncated: false }
          : fireTimesBetween(spec, new Date(range.from.getTime() - 1), to, limit);
      const queued = await recordSlots(
        tx,
        times.map((t) => ({
          jobId,
          key: slotKey(jobId, t),
          status: 'QUEUED' as const,
          trigger: 'BACKFILL' as const,
          scheduledTime: t,
          dueAt: now,
          reason: 'backfill',
          definitionVersion: job.version,
        })),
        ['SKIPPED', 'SKIPPED_MISFIRE', 'SKIPPED_PAUSED', 'SKIPPED_OVERLAP'],
      );
      const result = { enqueued: queued.length, deduplicated: times.length - queued.length, truncated };
      await opts.withinTransaction?.(tx, result);
      return { type: job.type, name: job.name, queued, result };
    },
    { timeout: 60_000 },
  );
  if (!out) return null;
  await enqueueRuns(
    deps.queues,
    out.queued.map((q) => ({
      type: out.type,
      runId: q.id,
      jobId,
      jobName: out.name,
      key: q.idempotency_key,
      scheduledTime: q.scheduled_time,
      dueAt: q.due_at,
    })),
    Date.now(),
  );
  return out.result;
}

/** The queue and BullMQ job id of a slot (for diagnostics and tests). */
export function bullJobKey(prefix: string, type: JobTypeName, key: string): string {
  return `${prefix}:${queueName(type)}:${key}`;
}

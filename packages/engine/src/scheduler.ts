import { closeAbandonedRuns } from './abandoned.ts';
import { isJobType, queueName, slotKey, type JobTypeName } from '@chronos/core';
import type { Db } from '@chronos/db';
import type { QueueSet } from '@chronos/queue';
import type { Redis } from 'ioredis';
import { bullJobId, enqueueRuns, type EnqueueItem } from './enqueue.ts';
import { recordSlots, type SlotRecord } from './ledger.ts';
import { planSlots, type MisfirePolicyName } from './planner.ts';
import { SCHEDULE_COLUMNS, specOf, type ScheduleRow } from './spec.ts';
import { changesChannel } from './changes.ts';
import { createPromoter } from './promoter.ts';

interface Log {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

/** How often RUNNING runs no worker will finish are looked for (`closeAbandonedRuns`). */
const ABANDONED_CHECK_MS = 60_000;

export interface SchedulerOptions {
  db: Db;
  queues: QueueSet;
  /** Redis for the change channel (a dedicated subscriber connection is duplicated from it). */
  redis: Redis;
  /** REDIS_PREFIX: names the change channel and the queues' keys. */
  prefix: string;
  log: Log;
  /** Shown in job_schedules.last_planned_by. */
  instanceId: string;
  /** @defaultValue 1000 */
  tickMs?: number;
  /** @defaultValue 60 */
  horizonSeconds?: number;
  /** Schedules claimed per transaction. @defaultValue 500 */
  batchSize?: number;
  /** @defaultValue 60 */
  misfireThresholdSeconds?: number;
  /** Slots recorded for one schedule per claim. @defaultValue 1000 */
  chunkLimit?: number;
  /** How often recorded slots are checked against Redis. @defaultValue 5000 */
  reconcileMs?: number;
  /**
   * The deployment's run timeout (DEFAULT_RUN_TIMEOUT_SECONDS): a run is looked at only once its
   * timeout and a minute more have passed. @defaultValue 3600
   */
  defaultRunTimeoutSeconds?: number;
  /** Called with each measured database-minus-process clock skew (ms). */
  onSkew?: (ms: number) => void;
  /**
   * Promote each enqueued slot at its exact due time instead of waiting for BullMQ's delayed-job
   * promotion (lower fire lateness). @defaultValue true
   */
  promoteOnTime?: boolean;
}

export interface TickResult {
  claimed: number;
  /** Slots queued (recorded QUEUED and added to BullMQ). */
  enqueued: number;
  /** Slots recorded with a skipped fate. */
  skipped: number;
  /** Slots whose key was already in the ledger. */
  deduplicated: number;
}

export interface Scheduler {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** One planning pass (claims until nothing is due); exposed for tests. */
  tick(): Promise<TickResult>;
  /** Re-adds recorded QUEUED slots whose BullMQ job is missing; returns how many. */
  reconcile(): Promise<number>;
  /** Last measured database-minus-process clock skew in ms. */
  readonly clockSkewMs: number;
}

interface ClaimedRow extends ScheduleRow {
  id: number;
  job_id: string;
  job_name: string;
  type: string;
  version: number;
  misfire_policy: MisfirePolicyName;
  misfire_threshold_seconds: number | null;
  misfire_max_catch_up: number;
  jitter_seconds: number;
  last_fire_at: Date | null;
  db_now: Date;
  db_clock: Date;
}

const claimColumns = SCHEDULE_COLUMNS.map((c) => `s.${c}`).join(', ');

/**
 * The scheduling engine: each tick claims due schedules (FOR UPDATE SKIP LOCKED, so any number of
 * schedulers can run side by side), records every slot inside the horizon in the ledger (job_runs)
 * with its idempotency key, advances next_fire_at, commits, then adds one delayed BullMQ job per
 * queued slot. Due-ness is decided on the database clock. A reconciler re-adds recorded slots whose
 * BullMQ job went missing (crash between commit and enqueue, Redis restart or FLUSHALL).
 */
export function createScheduler(opts: SchedulerOptions): Scheduler {
  const tickMs = opts.tickMs ?? 1000;
  const horizonMs = (opts.horizonSeconds ?? 60) * 1000;
  const batchSize = opts.batchSize ?? 500;
  const thresholdMs = (opts.misfireThresholdSeconds ?? 60) * 1000;
  const chunkLimit = opts.chunkLimit ?? 1000;
  const reconcileMs = opts.reconcileMs ?? 5000;
  const defaultRunTimeoutSeconds = opts.defaultRunTimeoutSeconds ?? 3600;
  const { db, queues, log } = opts;

  let skew = 0;
  let running = false;
  let stopping = false;
  let timer: NodeJS.Timeout | undefined;
  let lastReconcile = 0;
  let lastAbandonedCheck = Date.now();
  let wake: (() => void) | undefined;
  let loop: Promise<void> | undefined;
  let subscriber: Redis | undefined;
  const promoter =
    opts.promoteOnTime === false
      ? undefined
      : createPromoter(queues, (err) => log.warn({ err }, 'promotion failed'));

  async function claimOnce(): Promise<{
    result: TickResult;
    items: EnqueueItem[];
    dbNow: number;
    more: boolean;
  }> {
    const result: TickResult = { claimed: 0, enqueued: 0, skipped: 0, deduplicated: 0 };
    const items: EnqueueItem[] = [];
    let dbNow = Date.now() + skew;
    let claimedCount = 0;
    await db.$transaction(
      async (tx) => {
        const t0 = Date.now();
        const rows = await tx.$queryRawUnsafe<ClaimedRow[]>(
          `SELECT s.id, s.job_id, ${claimColumns}, s.misfire_policy::text AS misfire_policy,
                  s.misfire_threshold_seconds, s.misfire_max_catch_up, s.jitter_seconds, s.last_fire_at,
                  j.type::text AS type, j.name AS job_name, j.version, now() AS db_now,
                  clock_timestamp() AS db_clock
             FROM job_schedules s JOIN jobs j ON j.id = s.job_id
            WHERE s.next_fire_at <= now() + $1 * interval '1 millisecond'
            ORDER BY s.next_fire_at
            LIMIT $2
              FOR UPDATE OF s SKIP LOCKED`,
          horizonMs,
          batchSize,
        );
        const t1 = Date.now();
        claimedCount = rows.length;
        if (rows.length === 0) {
          const [r] = await tx.$queryRaw<{ now: Date }[]>`SELECT clock_timestamp() AS now`;
          if (r) skew = r.now.getTime() - (t0 + Date.now()) / 2;
          return;
        }
        const first = rows[0] as ClaimedRow;
        const now = first.db_now;
        skew = first.db_clock.getTime() - (t0 + t1) / 2;
        dbNow = now.getTime();
        // Catch-ups cut into chunks: the ledger row at last_fire_at of a late schedule says whether
        // the previous claim was already catching up (its reason starts with "misfire").
        const lateRows = rows.filter(
          (r) =>
            r.last_fire_at !== null &&
            (r.next_fire_at as Date).getTime() <
              now.getTime() -
                (r.misfire_threshold_seconds === null ? thresholdMs : r.misfire_threshold_seconds * 1000),
        );
        const continuing = new Set<string>();
        if (lateRows.length > 0) {
          const found = await tx.$queryRaw<{ job_id: string }[]>`
            SELECT job_id FROM job_runs
             WHERE idempotency_key = ANY(${lateRows.map((r) => slotKey(r.job_id, r.last_fire_at as Date))}::text[])
               AND attempt = 1 AND reason LIKE 'misfire%'`;
          for (const f of found) continuing.add(f.job_id);
        }
        const records: SlotRecord[] = [];
        const updates: { id: number; next: Date | null; last: Date | null }[] = [];
        for (const row of rows) {
          let plan;
          try {
            plan = planSlots({
              jobId: row.job_id,
              spec: specOf(row),
              from: row.next_fire_at as Date,
              lastFireAt: row.last_fire_at,
              continuingCatchUp: continuing.has(row.job_id),
              now,
              horizonMs,
              misfireThresholdMs:
                row.misfire_threshold_seconds === null ? thresholdMs : row.misfire_threshold_seconds * 1000,
              misfirePolicy: row.misfire_policy,
              maxCatchUp: row.misfire_max_catch_up,
              jitterSeconds: row.jitter_seconds,
              chunkLimit,
            });
          } catch (err) {
            // A schedule that cannot be computed (e.g. stored before validation existed) stops
            // firing and says why, instead of blocking the tick for everyone.
            log.error({ err, jobId: row.job_id }, 'schedule cannot be planned: disabled');
            updates.push({ id: row.id, next: null, last: row.last_fire_at });
            continue;
          }
          for (const s of plan.slots) {
            records.push({
              jobId: row.job_id,
              key: s.key,
              status: s.fate === 'ENQUEUE' ? 'QUEUED' : 'SKIPPED_MISFIRE',
              trigger: 'SCHEDULED',
              scheduledTime: s.time,
              dueAt: s.dueAt,
              reason: s.reason ?? null,
              definitionVersion: row.version,
            });
          }
          const last = plan.slots.at(-1)?.time ?? row.last_fire_at;
          updates.push({ id: row.id, next: plan.nextFireAt, last });
        }
        const queued = await recordSlots(tx, records);
        const jobOf = new Map(rows.map((r) => [r.job_id, r]));
        for (const q of queued) {
          const job = jobOf.get(q.job_id);
          if (!job || !isJobType(job.type)) continue;
          items.push({
            type: job.type as JobTypeName,
            runId: q.id,
            jobId: q.job_id,
            jobName: job.job_name,
            key: q.idempotency_key,
            scheduledTime: q.scheduled_time,
            dueAt: q.due_at,
          });
        }
        const recordedQueued = records.filter((r) => r.status === 'QUEUED').length;
        result.enqueued = queued.length;
        result.skipped = records.length - recordedQueued;
        result.deduplicated = Math.max(0, recordedQueued - queued.length);
        await tx.$executeRaw`
          UPDATE job_schedules s
             SET next_fire_at = v.next, last_fire_at = v.last, last_planned_by = ${opts.instanceId},
                 last_planned_at = now(), updated_at = now()
            FROM unnest(${updates.map((u) => u.id)}::int[], ${updates.map((u) => u.next)}::timestamptz[],
                        ${updates.map((u) => u.last)}::timestamptz[]) AS v(id, next, last)
           WHERE s.id = v.id`;
        await tx.$executeRaw`
          UPDATE jobs SET status = 'SCHEDULED', updated_at = now()
           WHERE id = ANY(${rows.map((r) => r.job_id)}::text[]) AND status = 'PENDING'`;
      },
      { timeout: 60_000, maxWait: 10_000 },
    );
    result.claimed = claimedCount;
    opts.onSkew?.(skew);
    return { result, items, dbNow, more: claimedCount === batchSize };
  }

  async function tick(): Promise<TickResult> {
    const total: TickResult = { claimed: 0, enqueued: 0, skipped: 0, deduplicated: 0 };
    for (;;) {
      const { result, items, more } = await claimOnce();
      if (items.length > 0) {
        await enqueueRuns(queues, items, Date.now() + skew);
        promoter?.schedule(items, skew, horizonMs);
        await db.$executeRaw`UPDATE job_runs SET enqueued_at = now() WHERE id = ANY(${items.map((i) => i.runId)}::text[])`;
      }
      total.claimed += result.claimed;
      total.enqueued += result.enqueued;
      total.skipped += result.skipped;
      total.deduplicated += result.deduplicated;
      // A scheduler far behind (more due than one batch) keeps claiming, but stops when asked to.
      if (!more || stopping) return total;
    }
  }

  async function reconcile(): Promise<number> {
    let readded = 0;
    let cursor: { due: Date; id: string } | null = null;
    for (;;) {
      const rows: {
        id: string;
        job_id: string;
        idempotency_key: string;
        attempt: number;
        scheduled_time: Date;
        due_at: Date;
        type: string;
        job_name: string;
      }[] = await db.$queryRaw`
          SELECT r.id, r.job_id, r.idempotency_key, r.attempt, r.scheduled_time, r.due_at, j.type::text AS type,
                 j.name AS job_name
            FROM job_runs r JOIN jobs j ON j.id = r.job_id
           WHERE r.status = 'QUEUED' AND r.due_at <= now() + ${horizonMs} * interval '1 millisecond'
             AND (${cursor === null} OR (r.due_at, r.id) > (${cursor?.due ?? new Date(0)}::timestamptz, ${cursor?.id ?? ''}))
           ORDER BY r.due_at, r.id
           LIMIT 2000`;
      if (rows.length === 0) return readded;
      const pipeline = opts.redis.pipeline();
      for (const r of rows) {
        if (!isJobType(r.type)) continue;
        pipeline.exists(`${opts.prefix}:${queueName(r.type)}:${bullJobId(r.idempotency_key, r.attempt)}`);
      }
      const exists = (await pipeline.exec()) ?? [];
      const missing: EnqueueItem[] = [];
      let i = 0;
      for (const r of rows) {
        if (!isJobType(r.type)) continue;
        const [, n] = exists[i++] ?? [null, 1];
        if (n === 0)
          missing.push({
            type: r.type,
            runId: r.id,
            jobId: r.job_id,
            jobName: r.job_name,
            key: r.idempotency_key,
            attempt: r.attempt,
            scheduledTime: r.scheduled_time,
            dueAt: r.due_at,
          });
      }
      if (missing.length > 0) {
        log.warn({ count: missing.length }, 'reconciler: re-adding recorded slots missing from Redis');
        await enqueueRuns(queues, missing, Date.now() + skew);
        await db.$executeRaw`UPDATE job_runs SET enqueued_at = now() WHERE id = ANY(${missing.map((m) => m.runId)}::text[])`;
        readded += missing.length;
      }
      const last = rows[rows.length - 1] as (typeof rows)[number];
      cursor = { due: last.due_at, id: last.id };
      if (rows.length < 2000) return readded;
    }
  }

  async function run(): Promise<void> {
    while (running) {
      try {
        await tick();
        if (Date.now() - lastReconcile >= reconcileMs) {
          lastReconcile = Date.now();
          await reconcile();
        }
        if (Date.now() - lastAbandonedCheck >= ABANDONED_CHECK_MS) {
          lastAbandonedCheck = Date.now();
          const closed = await closeAbandonedRuns(
            { db, queues, redis: opts.redis, prefix: opts.prefix },
            { defaultTimeoutSeconds: defaultRunTimeoutSeconds, graceMs: 60_000 },
          );
          if (closed > 0)
            log.warn({ closed }, 'closed RUNNING runs that no worker will finish (WORKER_LOST)');
        }
      } catch (err) {
        // A failed tick (database or Redis away) is logged and retried next tick, never fatal.
        log.error({ err }, 'scheduler tick failed');
      }
      if (!running) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, tickMs);
      });
      wake = undefined;
    }
  }

  return {
    get clockSkewMs() {
      return skew;
    },
    tick,
    reconcile,
    async start() {
      if (running) return;
      running = true;
      stopping = false;
      subscriber = opts.redis.duplicate();
      subscriber.on('error', (err) => log.warn({ err }, 'change subscriber error'));
      await subscriber.subscribe(changesChannel(opts.prefix));
      // A change (create, update, pause, resume, delete) plans at once instead of next tick.
      subscriber.on('message', () => {
        clearTimeout(timer);
        wake?.();
      });
      loop = run();
    },
    async stop() {
      running = false;
      stopping = true;
      clearTimeout(timer);
      wake?.();
      await loop;
      promoter?.clear();
      subscriber?.disconnect();
    },
  };
}

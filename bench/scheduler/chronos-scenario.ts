// Chronos end to end: a fresh migrated database, N DUMMY schedules, one scheduler (engine defaults)
// in this process, one BullMQ worker in another.

import { randomBytes } from 'node:crypto';
import { newId } from '@chronos/core';
import { createDb, migrate, type Db } from '@chronos/db';
import { createScheduler, type Scheduler } from '@chronos/engine';
import { closeQueues, createQueues, createRedis } from '@chronos/queue';
import pg from 'pg';
import { deleteKeysByPrefix, dropDatabase, withDatabase } from './cleanup.ts';
import { loopDelayText } from './loop-delay.ts';
import { measureWindow, summarize, type Window, type WindowResult } from './measure.ts';
import {
  firstSlotAfter,
  steadyWindow,
  waitForWindow,
  type ResultRow,
  type ScenarioOptions,
  type ScenarioOutcome,
} from './scenario.ts';
import { pipelineText, probePipelines } from './pipeline-probe.ts';
import { probePromotions } from './promote-probe.ts';
import { keepAllEvents, lateBreakdown, readJobEvents } from './queue-events.ts';
import { armSchedules, seedSchedules } from './seed.ts';
import { startWorkerProcess, type WorkerHandle } from './worker-handle.ts';
import { expectedKeys, layoutSchedules } from './workload.ts';

/** Which processor the worker runs (see protocol.ts). */
export type ChronosProcessor = 'pickup' | 'e2e';

const SYSTEM: Record<ChronosProcessor, string> = {
  pickup: 'Chronos, no-op processor',
  e2e: 'Chronos, run recorder',
};

/** The engine's log, counted; warnings and errors are printed (a few of each). */
function countingLog(print: (line: string) => void) {
  const counts = { warn: 0, error: 0 };
  let muted = false;
  const emit = (level: 'warn' | 'error', obj: object, msg?: string) => {
    // After the measurement, errors are the benchmark pulling the database away: not the engine's.
    if (muted) return;
    counts[level]++;
    if (counts[level] <= 5) {
      const err = (obj as { err?: Error }).err;
      print(`  scheduler ${level}: ${msg ?? ''}${err ? ` (${err.message})` : ''}`);
    }
  };
  return {
    counts,
    mute: () => {
      muted = true;
    },
    log: {
      info: () => undefined,
      debug: () => undefined,
      warn: (obj: object, msg?: string) => emit('warn', obj, msg),
      error: (obj: object, msg?: string) => emit('error', obj, msg),
    },
  };
}

/** start_time − scheduled_time of the runs due in the window, from the ledger. */
async function startsRecorded(
  client: pg.Client,
  window: Window,
  expected: ReadonlySet<string>,
): Promise<WindowResult> {
  const from = new Date(window.from).toISOString();
  const to = new Date(window.to).toISOString();
  const { rows } = await client.query<{ key: string; late: number }>(
    `SELECT idempotency_key AS key,
            (extract(epoch FROM start_time - scheduled_time) * 1000)::float8 AS late
       FROM job_runs
      WHERE trigger = 'SCHEDULED' AND start_time IS NOT NULL
        AND scheduled_time >= $1 AND scheduled_time < $2`,
    [from, to],
  );
  const started = rows.filter((r) => expected.has(r.key));
  const {
    rows: [inWindow],
  } = await client.query<{ n: string }>(
    `SELECT count(*) AS n FROM job_runs WHERE start_time >= $1 AND start_time < $2`,
    [from, to],
  );
  const seconds = (window.to - window.from) / 1000;
  return {
    lateness: summarize(started.map((r) => r.late)),
    offeredPerSecond: expected.size / seconds,
    firesPerSecond: Number(inWindow?.n ?? 0) / seconds,
    expected: expected.size,
    missed: expected.size - new Set(started.map((r) => r.key)).size,
    // (idempotency_key, attempt) is unique: the ledger cannot start a slot twice.
    duplicates: 0,
    unexpected: rows.length - started.length,
  };
}

/** How far ahead of their slot the scheduler had enqueued the window's runs; and their fates. */
async function ledgerNotes(client: pg.Client, window: Window): Promise<string> {
  const { rows } = await client.query<{
    slots: string;
    late_enqueued: string;
    min_lead_s: number | null;
    statuses: Record<string, number> | null;
  }>(
    `SELECT count(*) AS slots,
            count(*) FILTER (WHERE enqueued_at IS NULL OR enqueued_at > due_at) AS late_enqueued,
            min(extract(epoch FROM due_at - enqueued_at))::float8 AS min_lead_s,
            (SELECT jsonb_object_agg(status, n) FROM (
               SELECT status::text, count(*) AS n FROM job_runs
                WHERE scheduled_time >= $1 AND scheduled_time < $2 GROUP BY status) s) AS statuses
       FROM job_runs
      WHERE trigger = 'SCHEDULED' AND scheduled_time >= $1 AND scheduled_time < $2`,
    [new Date(window.from).toISOString(), new Date(window.to).toISOString()],
  );
  const r = rows[0];
  if (!r) return 'no ledger rows';
  return (
    `ledger: ${r.slots} slots in the window (${JSON.stringify(r.statuses ?? {})}); ` +
    `${r.late_enqueued} enqueued after their due time; smallest enqueue lead ${
      r.min_lead_s === null ? 'n/a' : `${r.min_lead_s.toFixed(1)} s`
    }`
  );
}

/** How long the benchmark waits for `scheduler.stop()` before moving on. */
const STOP_TIMEOUT_MS = 30_000;

/** True when the scheduler stopped in time. */
async function stopWithin(scheduler: Scheduler, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const done = scheduler.stop().then(
    () => true as const,
    () => true as const,
  );
  const stopped = await Promise.race([done, timeout]);
  clearTimeout(timer);
  return stopped;
}

/**
 * How far planning trails the horizon: a scheduler that keeps up has planned every slot due before
 * now + 60 s (less a tick), so the earliest unplanned slot is no earlier than that.
 */
async function planningLagText(client: pg.Client): Promise<string> {
  const { rows } = await client.query<{ lag_s: number | null }>(
    `SELECT (extract(epoch FROM (now() + interval '60 seconds') - min(next_fire_at)))::float8 AS lag_s
       FROM job_schedules WHERE next_fire_at IS NOT NULL`,
  );
  const lag = rows[0]?.lag_s ?? null;
  if (lag === null) return 'nothing left to plan';
  return lag <= 2
    ? 'planning kept up with the horizon'
    : `planning trailed the horizon by ${lag.toFixed(1)} s (earliest unplanned slot ${(60 - lag).toFixed(1)} s from now)`;
}

/** The scheduler's default horizon: a slot is planned (and its promotion armed) this far ahead. */
const HORIZON_MS = 60_000;

/**
 * The database-minus-process clock skew the scheduler measured on its claims: on its first tick, and
 * on the claims that planned the window's slots (every promotion timer is shifted by it).
 */
function skewText(skews: readonly { at: number; ms: number }[], startedAt: number, window: Window): string {
  const part = (xs: number[]) => {
    const s = summarize(xs);
    return s.count === 0 ? 'n/a' : `${s.min.toFixed(1)} / ${s.p50.toFixed(1)} / ${s.max.toFixed(1)} ms`;
  };
  const firstTick = skews.filter((s) => s.at - startedAt < 1000).map((s) => s.ms);
  const planning = skews.filter((s) => s.at >= window.from - HORIZON_MS && s.at < window.to).map((s) => s.ms);
  return (
    `measured clock skew min / p50 / max: first tick ${part(firstTick)}, ` +
    `claims that planned the window ${part(planning)}`
  );
}

export async function runChronos(
  opts: ScenarioOptions,
  processor: ChronosProcessor,
): Promise<ScenarioOutcome> {
  const tag = randomBytes(4).toString('hex');
  const dbName = `chronos_bench_${tag}`;
  const url = withDatabase(opts.postgresUrl, dbName);
  const prefix = `chronos-bench-${tag}`;
  const label = SYSTEM[processor];
  const notes: string[] = [];
  let client: pg.Client | undefined;
  let db: Db | undefined;
  let worker: WorkerHandle | undefined;
  let scheduler: Scheduler | undefined;
  const redis = createRedis(opts.redisUrl, { name: `chronos-bench-scheduler-${tag}` });
  const queues = createQueues({ connection: redis, prefix, types: ['DUMMY'] });
  const queue = queues.get('DUMMY');
  if (!queue) throw new Error('no DUMMY queue');
  const probe = probePromotions();
  const pipelines = probePipelines(redis);
  try {
    await keepAllEvents(queue, redis);
    await migrate(url);
    client = new pg.Client({ connectionString: url, application_name: 'chronos-bench-seed' });
    await client.connect();
    const schedules = layoutSchedules(
      Array.from({ length: opts.size }, () => newId()),
      opts.cronShare,
    );
    const seedStart = Date.now();
    await seedSchedules(client, schedules);
    opts.log(
      `  ${label}: seeded ${opts.size} schedules in ${((Date.now() - seedStart) / 1000).toFixed(1)} s`,
    );

    worker = await startWorkerProcess({
      mode: processor,
      redisUrl: opts.redisUrl,
      prefix,
      concurrency: opts.concurrency,
      workerId: `chronos-bench-worker-${tag}`,
      databaseUrl: url,
    });
    db = createDb(url, { applicationName: `chronos-bench-scheduler-${tag}` });
    const { counts, log, mute } = countingLog(opts.log);
    // The skew the scheduler measures on each claim shifts every promotion timer it arms then.
    const skews: { at: number; ms: number }[] = [];
    scheduler = createScheduler({
      db,
      queues,
      redis,
      prefix,
      log,
      instanceId: `chronos-bench-${tag}`,
      onSkew: (ms) => skews.push({ at: Date.now(), ms }),
    });

    const t0 = firstSlotAfter(opts.leadMs);
    const window = steadyWindow(t0, opts);
    await armSchedules(client, t0);
    if (Date.now() > t0) notes.push(`${label}: arming ${opts.size} schedules ended after the first slot`);
    const startedAt = Date.now();
    await scheduler.start();

    const expected = expectedKeys(schedules, t0, window.from, window.to);
    let planningLag = 'n/a';
    const { load1, loopDelay } = await waitForWindow(worker, window, expected.size, opts.signal, async () => {
      planningLag = await planningLagText(client as pg.Client);
    });
    const stopped = await stopWithin(scheduler, STOP_TIMEOUT_MS);
    mute();
    if (!stopped)
      notes.push(
        `${opts.size} / ${label}: scheduler.stop() had not returned after ${STOP_TIMEOUT_MS / 1000} s ` +
          '(its tick claims until nothing is due, which never happens while it is behind); left to fail with the database',
      );
    scheduler = undefined;
    const result = await worker.stop();
    worker = undefined;
    const events = await readJobEvents(queue, redis);

    const rows: ResultRow[] = [
      {
        size: opts.size,
        system: label,
        measure: 'pickup',
        window: measureWindow(result.pickups, expected, window),
        load1,
      },
    ];
    if (processor === 'e2e')
      rows.push({
        size: opts.size,
        system: label,
        measure: 'run start recorded in Postgres',
        window: await startsRecorded(client, window, expected),
        load1,
      });
    // Lateness of each window slot's first pickup, by due time.
    const byDue = new Map<number, number[]>();
    const firstPick = new Set<string>();
    for (const p of result.pickups) {
      if (!expected.has(p.key) || firstPick.has(p.key)) continue;
      firstPick.add(p.key);
      const list = byDue.get(p.scheduledMs) ?? [];
      list.push(p.pickedMs - p.scheduledMs);
      byDue.set(p.scheduledMs, list);
    }
    notes.push(
      `${opts.size} / ${label}: ${lateBreakdown(result.pickups, expected, events, probe.calls)}; ` +
        `${pipelineText(pipelines, byDue, window)}; ` +
        `${await ledgerNotes(client, window)}; at the window's end ${planningLag}; scheduler ${counts.error} errors, ` +
        `${counts.warn} warnings; ${skewText(skews, startedAt, window)}; event-loop delay of the scheduler ` +
        `${loopDelayText(loopDelay)}, of the worker ${loopDelayText(result.loopDelay)}; ` +
        `worker ${result.failed} failed jobs` +
        (result.errors.length > 0 ? ` (${result.errors.slice(0, 3).join(' | ')})` : ''),
    );
    return { rows, notes };
  } finally {
    probe.restore();
    if (scheduler) await stopWithin(scheduler, STOP_TIMEOUT_MS);
    worker?.kill();
    await closeQueues(queues).catch(() => undefined);
    redis.disconnect();
    await db?.$disconnect().catch(() => undefined);
    await client?.end().catch(() => undefined);
    await dropDatabase(opts.postgresUrl, dbName);
    const n = await deleteKeysByPrefix(opts.admin, prefix);
    opts.log(`  ${label}: dropped ${dbName}, deleted ${n} Redis keys under ${prefix}:`);
  }
}

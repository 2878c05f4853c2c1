// Where a Chronos run's time goes: the worker's per-run Postgres work (apps/worker/src/run-processor.ts
// for a DUMMY job), replayed in this process one run at a time on a fresh clone, each step timed and
// its SQL statements counted; then what one batched statement costs by batch size, next to the bare
// round trip and a bare commit.

import { performance } from 'node:perf_hooks';
import { createDb, type Db, type Pool } from '@chronos/db';
import {
  createRunLogger,
  createRunRecorder,
  createRunRecorderPool,
  recordSlots,
  resolveRunInputs,
  type RunRecorder,
} from '@chronos/engine';
import pg from 'pg';
import type { Template } from './fixture.ts';

export interface PhaseCost {
  name: string;
  /** Median and mean wall time per run, ms. */
  p50: number;
  mean: number;
  /** SQL round trips per run (BEGIN and COMMIT of a transaction included). */
  statements: number;
  /** Transactions committed per run (an autocommit statement is one). */
  commits: number;
}

/** One start statement and one finish statement carrying `size` runs each: median ms per statement. */
export interface BatchCost {
  size: number;
  startMs: number;
  finishMs: number;
}

export interface ProbeResult {
  runs: number;
  phases: PhaseCost[];
  total: { p50: number; mean: number; statements: number; commits: number };
  /** CPU this process used per run while replaying them (the engine's code, pg). */
  cpuMsPerRun: number;
  /** `SELECT 1` through pg: median ms, and this process' CPU ms per call. */
  roundTrip: { ms: number; cpuMs: number };
  /** A one-row UPDATE as a single autocommit statement (one round trip, one WAL flush), median ms. */
  autocommitUpdate: number;
  batches: BatchCost[];
}

export interface ProbeOptions {
  template: Template;
  /** Unique per benchmark run: names the probe's database. */
  label: string;
  /** Runs timed (after `warmup` untimed ones). */
  runs: number;
  warmup: number;
  log: (line: string) => void;
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : (s[Math.floor((s.length - 1) / 2)] as number);
};
const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

const PHASES = ['start', 'resolveRunInputs', 'executor + run log', 'finish (with the log lines)'];

/** Batch sizes whose statements are timed. */
const BATCH_SIZES = [1, 10, 100];
/** Statements timed per batch size and kind. */
const BATCH_REPEATS = 10;

/** QUEUED runs round robin over the template's jobs; returns their ids and jobs. */
async function queueRuns(
  db: Db,
  jobIds: readonly string[],
  n: number,
  keyPrefix: string,
): Promise<{ id: string; jobId: string }[]> {
  const now = new Date();
  const rows = await db.$transaction((tx) =>
    recordSlots(
      tx,
      Array.from({ length: n }, (_, i) => ({
        jobId: jobIds[i % jobIds.length] as string,
        key: `${keyPrefix}-${i}`,
        status: 'QUEUED' as const,
        trigger: 'MANUAL' as const,
        scheduledTime: now,
        dueAt: now,
        reason: null,
        definitionVersion: 1,
      })),
    ),
  );
  return rows.map((r) => ({ id: r.id, jobId: r.job_id }));
}

/**
 * What the worker's processor does for one DUMMY run, step by step (the DUMMY executor with no
 * metadata returns `{ ok: true }` at once, so it is stood in for; the BullMQ side is what the raw
 * baseline measures). `lap(i)` is called as step i ends.
 */
async function processRun(
  db: Db,
  recorder: RunRecorder,
  run: { id: string; jobId: string },
  lap: (phase: number) => void,
): Promise<void> {
  const decision = await recorder.start(run.id, { jobId: run.jobId });
  if (decision.action !== 'RUN') throw new Error(`probe run ${run.id}: ${decision.action}`);
  lap(0);
  const { run: row } = decision;
  const inputs = await resolveRunInputs(db, undefined, {
    job: { id: row.job.id, name: row.job.name, ownerId: row.job.ownerId },
    run: {
      id: run.id,
      scheduledTime: row.scheduledTime,
      attempt: row.attempt,
      idempotencyKey: row.idempotencyKey,
    },
    payload: row.payload,
    trigger: null,
  });
  lap(1);
  const runLog = createRunLogger(recorder.writeLog, run.id, { mask: (t) => inputs.masker.mask(t) });
  runLog.info('run started', { attempt: row.attempt, worker: 'probe', timeoutSeconds: 3600 });
  const output = { ok: true };
  runLog.info('run succeeded');
  const lines = await runLog.detach();
  lap(2);
  const fin = await recorder.finish(
    {
      runId: run.id,
      jobId: run.jobId,
      lockToken: decision.lockToken,
      status: 'SUCCESS',
      exitCode: null,
      output: inputs.masker.maskDeep(output) as never,
    },
    lines,
  );
  if (!fin.accepted) throw new Error(`probe run ${run.id}: finish not accepted`);
  lap(3);
}

/** Counts the statements sent through `pool` (its `query` calls) while it is installed. */
function countQueries(pool: Pool): { readonly count: number } {
  const counter = { count: 0 };
  const query = pool.query.bind(pool) as (...args: unknown[]) => unknown;
  pool.query = ((...args: unknown[]) => {
    counter.count++;
    return query(...args);
  }) as typeof pool.query;
  return counter;
}

/**
 * Prisma prints each statement with `console.log('prisma:query', sql)` when its log includes
 * 'query' (BEGIN is not printed, COMMIT is: one BEGIN per COMMIT is added). The recorder's own
 * statements are counted on its pool; each is an autocommit statement, one commit.
 */
async function countStatements(
  queries: { readonly count: number },
  f: (tick: (phase: number) => void) => Promise<void>,
): Promise<{ statements: number[]; commits: number[] }> {
  const statements = PHASES.map(() => 0);
  const commits = PHASES.map(() => 0);
  let prisma = 0;
  let prismaCommits = 0;
  let last = { statements: queries.count, commits: queries.count };
  const original = console.log;
  console.log = (...args: unknown[]) => {
    if (String(args[0]).includes('prisma:query')) {
      prisma++;
      if (/^\s*COMMIT/i.test(String(args[1] ?? ''))) {
        prismaCommits++;
        prisma++;
      }
    } else original(...args);
  };
  try {
    await f((phase) => {
      const now = { statements: queries.count + prisma, commits: queries.count + prismaCommits };
      statements[phase] = (statements[phase] ?? 0) + now.statements - last.statements;
      commits[phase] = (commits[phase] ?? 0) + now.commits - last.commits;
      last = now;
    });
  } finally {
    console.log = original;
  }
  return { statements, commits };
}

/** Starts and then finishes `size` runs submitted together (one statement each); ms per statement. */
async function timeBatch(recorder: RunRecorder, runs: readonly { id: string; jobId: string }[]) {
  const t0 = performance.now();
  const started = await Promise.all(runs.map((r) => recorder.start(r.id, { jobId: r.jobId })));
  const t1 = performance.now();
  await Promise.all(
    started.map((d) => {
      if (d.action !== 'RUN') throw new Error(`probe batch: ${d.action}`);
      return recorder.finish(
        { runId: d.runId, jobId: d.jobId, lockToken: d.lockToken, status: 'SUCCESS' },
        [],
      );
    }),
  );
  return { start: t1 - t0, finish: performance.now() - t1 };
}

export async function probeRunCost(opts: ProbeOptions): Promise<ProbeResult> {
  const database = await opts.template.clone(opts.label);
  const db = createDb(database.url, { maxConnections: 2, applicationName: 'chronos-bench-tp-probe' });
  const logged = createDb(database.url, {
    maxConnections: 2,
    applicationName: 'chronos-bench-tp-probe-count',
    log: ['query'],
  });
  // As the worker has it (apps/worker/src/worker.ts).
  const pool = createRunRecorderPool(database.url, { applicationName: 'chronos-bench-tp-probe-runs' });
  const queries = countQueries(pool);
  const recorder = createRunRecorder({ db, pool, workerId: 'probe', misfireThresholdSeconds: 60 });
  const counting = createRunRecorder({ db: logged, pool, workerId: 'probe', misfireThresholdSeconds: 60 });
  const client = new pg.Client({
    connectionString: database.url,
    application_name: 'chronos-bench-tp-probe-pg',
  });
  await client.connect();
  try {
    const jobIds = opts.template.jobIds;
    const runs = await queueRuns(db, jobIds, opts.warmup + opts.runs, 'probe');
    const counted = await queueRuns(db, jobIds, 20, 'count');

    const times = PHASES.map(() => [] as number[]);
    const totals: number[] = [];
    let cpu = process.cpuUsage();
    for (const [i, run] of runs.entries()) {
      if (i === opts.warmup) cpu = process.cpuUsage();
      const t0 = performance.now();
      let prev = t0;
      await processRun(db, recorder, run, (phase) => {
        const now = performance.now();
        if (i >= opts.warmup) times[phase]?.push(now - prev);
        prev = now;
      });
      if (i >= opts.warmup) totals.push(performance.now() - t0);
    }
    const used = process.cpuUsage(cpu);
    const cpuMsPerRun = (used.user + used.system) / 1000 / opts.runs;
    const { statements, commits } = await countStatements(queries, async (tick) => {
      for (const run of counted) await processRun(logged, counting, run, tick);
    });
    const phases: PhaseCost[] = PHASES.map((name, k) => ({
      name,
      p50: median(times[k] ?? []),
      mean: mean(times[k] ?? []),
      statements: (statements[k] ?? 0) / counted.length,
      commits: (commits[k] ?? 0) / counted.length,
    }));

    const batches: BatchCost[] = [];
    for (const size of BATCH_SIZES) {
      const pending = await queueRuns(db, jobIds, size * (BATCH_REPEATS + 1), `batch-${size}`);
      const start: number[] = [];
      const finish: number[] = [];
      for (let k = 0; k <= BATCH_REPEATS; k++) {
        const t = await timeBatch(recorder, pending.slice(k * size, (k + 1) * size));
        // The first of each size only warms up.
        if (k === 0) continue;
        start.push(t.start);
        finish.push(t.finish);
      }
      batches.push({ size, startMs: median(start), finishMs: median(finish) });
    }

    const rtt: number[] = [];
    const ROUND_TRIPS = 300;
    const mark = process.cpuUsage();
    for (let i = 0; i < ROUND_TRIPS; i++) {
      const t = performance.now();
      await client.query('SELECT 1');
      rtt.push(performance.now() - t);
    }
    const rttCpu = process.cpuUsage(mark);
    const auto: number[] = [];
    for (let i = 0; i < 100; i++) {
      const t = performance.now();
      await client.query('UPDATE jobs SET updated_at = now() WHERE id = $1', [jobIds[i % jobIds.length]]);
      auto.push(performance.now() - t);
    }

    return {
      runs: opts.runs,
      phases,
      total: {
        p50: median(totals),
        mean: mean(totals),
        statements: phases.reduce((a, p) => a + p.statements, 0),
        commits: phases.reduce((a, p) => a + p.commits, 0),
      },
      cpuMsPerRun,
      roundTrip: { ms: median(rtt), cpuMs: (rttCpu.user + rttCpu.system) / 1000 / ROUND_TRIPS },
      autocommitUpdate: median(auto),
      batches,
    };
  } finally {
    await client.end().catch(() => undefined);
    await recorder.drain().catch(() => undefined);
    await pool.end().catch(() => undefined);
    await db.$disconnect().catch(() => undefined);
    await logged.$disconnect().catch(() => undefined);
    await database.drop();
    opts.log(`    dropped ${database.name}`);
  }
}

// Where a Chronos run's time goes: the worker's per-run Postgres work (apps/worker/src/run-processor.ts
// for a DUMMY job), replayed in this process one run at a time on a fresh clone, each step timed and
// its SQL statements counted; next to the bare round trip and a batched alternative.

import { performance } from 'node:perf_hooks';
import { createDb, type Db } from '@chronos/db';
import {
  createRunLogger,
  finishRun,
  recordSlots,
  resolveRunInputs,
  startRun,
  type PayloadFields,
} from '@chronos/engine';
import pg from 'pg';
import type { Template } from './fixture.ts';

export interface PhaseCost {
  name: string;
  /** Median and mean wall time per run, ms. */
  p50: number;
  mean: number;
  /** SQL round trips per run (BEGIN and COMMIT included), from Prisma's query log. */
  statements: number;
  /** Transactions committed per run. */
  commits: number;
}

export interface ProbeResult {
  runs: number;
  phases: PhaseCost[];
  total: { p50: number; mean: number; statements: number; commits: number };
  /** CPU this process used per run while replaying them (Prisma, the engine's code, pg). */
  cpuMsPerRun: number;
  /** `SELECT 1` through Prisma (adapter-pg) and through a bare pg client: median ms, and this process' CPU ms per call. */
  roundTrip: { prisma: number; pg: number; prismaCpu: number; pgCpu: number };
  /** BEGIN; one-row UPDATE; COMMIT through Prisma, median ms. */
  smallTransaction: number;
  /** The same one-row UPDATE as a single autocommit statement through pg (one round trip, one WAL flush), median ms. */
  autocommitUpdate: number;
  /** Start and finish of `batch` runs as three set-based statements: ms per run. */
  batched: { batch: number; msPerRun: number };
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

const PHASES = [
  'startRun',
  'read run + job + payload',
  'resolveRunInputs',
  'executor + run log',
  'finishRun',
];

/** QUEUED runs round robin over the template's jobs; returns their ids. */
async function queueRuns(db: Db, jobIds: readonly string[], n: number, keyPrefix: string): Promise<string[]> {
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
  return rows.map((r) => r.id);
}

/**
 * What the worker's processor does for one DUMMY run, step by step (the DUMMY executor with no
 * metadata returns `{ ok: true }` at once, so it is stood in for; the BullMQ side is what the raw
 * baseline measures). `lap(i)` is called as step i ends.
 */
async function processRun(db: Db, runId: string, lap: (phase: number) => void): Promise<void> {
  const decision = await startRun(db, { runId, workerId: 'probe', misfireThresholdSeconds: 60 });
  if (decision.action !== 'RUN') throw new Error(`probe run ${runId}: ${decision.action}`);
  lap(0);
  const row = await db.jobRun.findUniqueOrThrow({
    where: { id: decision.runId },
    select: {
      scheduledTime: true,
      attempt: true,
      idempotencyKey: true,
      triggerPayload: true,
      job: { select: { id: true, name: true, ownerId: true, timeoutSeconds: true, payload: true } },
    },
  });
  lap(1);
  const { id: _id, jobId: _jobId, ...fields } = row.job.payload ?? ({} as Record<string, unknown>);
  const inputs = await resolveRunInputs(db, undefined, {
    job: { id: row.job.id, name: row.job.name, ownerId: row.job.ownerId },
    run: {
      id: decision.runId,
      scheduledTime: row.scheduledTime,
      attempt: row.attempt,
      idempotencyKey: row.idempotencyKey,
    },
    payload: fields as PayloadFields,
    trigger: null,
  });
  lap(2);
  const runLog = createRunLogger(db, decision.runId, { mask: (t) => inputs.masker.mask(t) });
  runLog.info('run started', { attempt: row.attempt, worker: 'probe', timeoutSeconds: 3600 });
  const output = { ok: true };
  runLog.info('run succeeded');
  await runLog.close();
  lap(3);
  const fin = await finishRun(db, {
    runId: decision.runId,
    lockToken: decision.lockToken,
    status: 'SUCCESS',
    exitCode: null,
    output: inputs.masker.maskDeep(output) as never,
  });
  if (!fin.accepted) throw new Error(`probe run ${runId}: finish not accepted`);
  lap(4);
}

/**
 * Prisma prints each statement with `console.log('prisma:query', sql)` when its log includes
 * 'query'; counting those calls is the one way to see its statements without changing the client
 * the worker uses. BEGIN is not printed (the adapter sends it), COMMIT is: one BEGIN per COMMIT is
 * added.
 */
async function countStatements(
  f: (tick: (phase: number) => void) => Promise<void>,
): Promise<{ statements: number[]; commits: number[] }> {
  const statements = PHASES.map(() => 0);
  const commits = PHASES.map(() => 0);
  let seen = 0;
  let seenCommits = 0;
  let last = 0;
  let lastCommits = 0;
  const original = console.log;
  console.log = (...args: unknown[]) => {
    if (String(args[0]).includes('prisma:query')) {
      seen++;
      if (/^\s*COMMIT/i.test(String(args[1] ?? ''))) {
        seenCommits++;
        seen++;
      }
    } else original(...args);
  };
  try {
    await f((phase) => {
      statements[phase] = (statements[phase] ?? 0) + seen - last;
      commits[phase] = (commits[phase] ?? 0) + seenCommits - lastCommits;
      last = seen;
      lastCommits = seenCommits;
    });
  } finally {
    console.log = original;
  }
  return { statements, commits };
}

export async function probeRunCost(opts: ProbeOptions): Promise<ProbeResult> {
  const database = await opts.template.clone(opts.label);
  const db = createDb(database.url, { maxConnections: 2, applicationName: 'chronos-bench-tp-probe' });
  const logged = createDb(database.url, {
    maxConnections: 2,
    applicationName: 'chronos-bench-tp-probe-count',
    log: ['query'],
  });
  const client = new pg.Client({
    connectionString: database.url,
    application_name: 'chronos-bench-tp-probe-pg',
  });
  await client.connect();
  try {
    const jobIds = opts.template.jobIds;
    const ids = await queueRuns(db, jobIds, opts.warmup + opts.runs, 'probe');
    const counted = await queueRuns(db, jobIds, 20, 'count');

    const times = PHASES.map(() => [] as number[]);
    const totals: number[] = [];
    let cpu = process.cpuUsage();
    for (const [i, id] of ids.entries()) {
      if (i === opts.warmup) cpu = process.cpuUsage();
      const t0 = performance.now();
      let prev = t0;
      await processRun(db, id, (phase) => {
        const now = performance.now();
        if (i >= opts.warmup) times[phase]?.push(now - prev);
        prev = now;
      });
      if (i >= opts.warmup) totals.push(performance.now() - t0);
    }
    const used = process.cpuUsage(cpu);
    const cpuMsPerRun = (used.user + used.system) / 1000 / opts.runs;
    const { statements, commits } = await countStatements(async (tick) => {
      for (const id of counted) await processRun(logged, id, tick);
    });
    const phases: PhaseCost[] = PHASES.map((name, k) => ({
      name,
      p50: median(times[k] ?? []),
      mean: mean(times[k] ?? []),
      statements: (statements[k] ?? 0) / counted.length,
      commits: (commits[k] ?? 0) / counted.length,
    }));

    const prismaRtt: number[] = [];
    const pgRtt: number[] = [];
    const ROUND_TRIPS = 300;
    let mark = process.cpuUsage();
    for (let i = 0; i < ROUND_TRIPS; i++) {
      const t = performance.now();
      await db.$queryRaw`SELECT 1`;
      prismaRtt.push(performance.now() - t);
    }
    const prismaCpu = process.cpuUsage(mark);
    mark = process.cpuUsage();
    for (let i = 0; i < ROUND_TRIPS; i++) {
      const t = performance.now();
      await client.query('SELECT 1');
      pgRtt.push(performance.now() - t);
    }
    const pgCpu = process.cpuUsage(mark);
    const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000 / ROUND_TRIPS;
    const tx: number[] = [];
    for (let i = 0; i < 100; i++) {
      const jobId = jobIds[i % jobIds.length] as string;
      const t = performance.now();
      await db.$transaction(async (q) => {
        await q.$executeRaw`UPDATE jobs SET updated_at = now() WHERE id = ${jobId}`;
      });
      tx.push(performance.now() - t);
    }
    const auto: number[] = [];
    for (let i = 0; i < 100; i++) {
      const t = performance.now();
      await client.query('UPDATE jobs SET updated_at = now() WHERE id = $1', [jobIds[i % jobIds.length]]);
      auto.push(performance.now() - t);
    }

    // The lever: the same ledger writes for a batch of runs as three set-based statements (start,
    // finish, statistics per job) in one transaction, as a worker that buffers its writes could.
    const batch = 100;
    const batchIds = await queueRuns(db, jobIds, batch * 5, 'batch');
    const perRun: number[] = [];
    for (let b = 0; b < 5; b++) {
      const chunk = batchIds.slice(b * batch, (b + 1) * batch);
      const t = performance.now();
      await db.$transaction(async (q) => {
        await q.$executeRaw`
          UPDATE job_runs SET status = 'RUNNING', start_time = now(), worker_id = 'probe',
                 lock_token = md5(id), updated_at = now()
           WHERE id = ANY(${chunk}::text[]) AND status = 'QUEUED'`;
        await q.$executeRaw`
          UPDATE job_runs SET status = 'SUCCESS', end_time = clock_timestamp(),
                 duration_ms = GREATEST(0, (EXTRACT(EPOCH FROM (clock_timestamp() - start_time)) * 1000)::int),
                 output = '{"ok":true}'::jsonb, updated_at = now()
           WHERE id = ANY(${chunk}::text[]) AND status = 'RUNNING'`;
        await q.$executeRaw`
          INSERT INTO job_stats (job_id, total_executions, successful_executions, total_duration_ms,
                                 last_execution_at, last_success_at, updated_at)
          SELECT job_id, count(*), count(*), coalesce(sum(duration_ms), 0), max(end_time), max(end_time), now()
            FROM job_runs WHERE id = ANY(${chunk}::text[]) GROUP BY job_id
          ON CONFLICT (job_id) DO UPDATE
             SET total_executions = job_stats.total_executions + EXCLUDED.total_executions,
                 successful_executions = job_stats.successful_executions + EXCLUDED.successful_executions,
                 total_duration_ms = job_stats.total_duration_ms + EXCLUDED.total_duration_ms,
                 last_execution_at = EXCLUDED.last_execution_at, last_success_at = EXCLUDED.last_success_at,
                 consecutive_failures = 0, updated_at = now()`;
      });
      perRun.push((performance.now() - t) / batch);
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
      roundTrip: {
        prisma: median(prismaRtt),
        pg: median(pgRtt),
        prismaCpu: cpuMs(prismaCpu),
        pgCpu: cpuMs(pgCpu),
      },
      smallTransaction: median(tx),
      autocommitUpdate: median(auto),
      batched: { batch, msPerRun: median(perRun) },
    };
  } finally {
    await client.end().catch(() => undefined);
    await db.$disconnect().catch(() => undefined);
    await logged.$disconnect().catch(() => undefined);
    await database.drop();
    opts.log(`    dropped ${database.name}`);
  }
}

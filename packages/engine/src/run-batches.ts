// The worker's hot path: starting and finishing many runs with one statement each (one round trip,
// one commit), for the common cases only. Every other case is answered "SLOW" and goes through the
// transactional `startRun` / `finishRun`, which record it in full.
//
// How these statements stay exact without a transaction around a lock: every start and finish of a
// run writes its job's row, here and in startRun / finishRun (the job's status follows its runs; the
// exceptions change nothing these statements decide from: a paused job, whose status stays PAUSED
// whatever its runs do and whose runs these statements never start, and a takeover, which swaps one
// running attempt for another). So a job row
// whose version (xmin) is the same in this statement's snapshot and when locked means that no other
// start or finish of the job committed in between: what the snapshot says about the job's other runs
// is current, and stays so until this statement commits. Where the versions differ the run is
// answered "RETRY" with nothing written, and goes again in the next statement, which has a newer
// snapshot.

import type { Pool, TriggerSource } from '@chronos/db';
import type { RunLogLine, RunLogSink } from './run-log.ts';
import { BUFFERED } from './runs.ts';
import type { PayloadFields } from './inputs.ts';
import { payloadFromColumns, type StartedRun } from './started-run.ts';

/** The answer of a batched start for one run. */
export type BatchStart =
  | {
      outcome: 'RUN';
      runId: string;
      jobId: string;
      attempt: number;
      lockToken: string;
      definitionVersion: number;
      run: StartedRun;
    }
  /**
   * RETRY: the job changed while the statement ran; nothing was written, try again. SLOW: not a
   * case this statement decides (see START_RUNS): use `startRun`.
   */
  | { outcome: 'RETRY' | 'SLOW' };

/** A successful run to record as finished, with the lines of its log not written yet. */
export interface BatchFinishItem {
  runId: string;
  lockToken: string;
  exitCode: number | null;
  /** The run's output as JSON text (masked), or null. */
  output: string | null;
  log: readonly RunLogLine[];
}

/**
 * DONE: finished, counted, its log written. STALE: the lock token is not the run's current one (or
 * the run is gone): nothing was written, the finish is refused. RETRY: the job changed while the
 * statement ran: nothing was written; try again. SLOW: not a case this statement decides (see
 * FINISH_RUNS): use `finishRun`.
 */
export type BatchFinish = 'DONE' | 'STALE' | 'RETRY' | 'SLOW';

/** Rows of job_run_logs from five parallel arrays starting at parameter `$first`, in their order. */
const logLineRows = (first: number) => `
  SELECT v.run_id, v.ts, v.level::"LogLevel", v.message, v.context::jsonb
    FROM unnest($${first}::bpchar[], $${first + 1}::timestamptz[], $${first + 2}::text[], $${first + 3}::text[],
                $${first + 4}::text[]) WITH ORDINALITY AS v(run_id, ts, level, message, context, n)`;

function logLineParams(items: readonly { runId: string; log: readonly RunLogLine[] }[]): unknown[] {
  const runIds: string[] = [];
  const ts: Date[] = [];
  const levels: string[] = [];
  const messages: string[] = [];
  const contexts: (string | null)[] = [];
  for (const { runId, log } of items)
    for (const l of log) {
      runIds.push(runId);
      ts.push(l.ts);
      levels.push(l.level);
      messages.push(l.message);
      contexts.push(l.context);
    }
  return [runIds, ts, levels, messages, contexts];
}

const INSERT_RUN_LOG = `
INSERT INTO job_run_logs (run_id, "timestamp", level, message, context)
${logLineRows(1)}
 ORDER BY v.n`;

/** Writes lines of run logs in one statement. */
export async function writeRunLogLines(
  pool: Pool,
  items: readonly { runId: string; log: readonly RunLogLine[] }[],
): Promise<void> {
  if (items.every((i) => i.log.length === 0)) return;
  await pool.query({ name: 'chronos_insert_run_log', text: INSERT_RUN_LOG, values: logLineParams(items) });
}

/** A run log's sink over `pool`: one statement per batch of lines (see createRunLogger). */
export const poolLogSink =
  (pool: Pool): RunLogSink =>
  (runId, lines) =>
    writeRunLogLines(pool, [{ runId, log: lines }]);

/**
 * $1 run ids, $2 worker id, $3 the deployment's misfire threshold (s), $4 and $5 per run id the job
 * id and definition version whose payload the worker already holds (or nulls). One row per run id:
 * outcome, and for a started run its lock token and what the worker needs to execute it — the
 * payload only when the worker does not hold the one of the version started (a job's payload
 * changes only with its version: see updateJob).
 *
 * Rows are reached by key (one index probe each, in a LATERAL subquery) and, once this statement
 * holds them, by row address (ctid): whatever the planner's statistics say, a statement costs what
 * its runs cost. (A generic plan made while job_runs' statistics were stale must not, say, scan the
 * backlog of QUEUED runs through the status index.)
 */
const START_RUNS = `
WITH input AS (
  SELECT * FROM unnest($1::bpchar[], $4::bpchar[], $5::int[]) AS i(id, known_job_id, known_version)
),
-- The runs this statement starts by itself: QUEUED; due (a scheduled slot promoted early is for
-- startRun to defer); of a job that is neither paused nor cancelled, whatever the run's trigger
-- (startRun records every run of a paused job SKIPPED_PAUSED: manual, webhook, backfill, retry and
-- replay runs as well as slots), and that lets the trigger through;
-- a scheduled slot planned under the job's current version (one the job changed under is for
-- startRun to check against the schedule as it is now);
-- not a misfire the policy would skip or collapse; and, unless the job allows overlapping runs, with
-- no run of the job active (then only the earliest of the batch's runs of the job, below). A run
-- with one active is for startRun whatever its trigger: there the overlap policy skips, buffers or
-- cancels — and a retry attempt waits (it continues a run that already started).
cand AS MATERIALIZED (
  SELECT r.ctid AS run_ctid, r.id, r.job_id, r.attempt, r.scheduled_time, r.idempotency_key, r.trigger,
         r.trigger_payload, j.xmin AS job_xmin, j.version AS job_version, j.allow_scheduled,
         j.overlap_policy = 'ALLOW_ALL' AS overlap_allowed,
         row_number() OVER (PARTITION BY r.job_id ORDER BY r.scheduled_time, r.id) AS nth
    FROM input i
   CROSS JOIN LATERAL (SELECT ctid, * FROM job_runs WHERE id = i.id LIMIT 1) r
   CROSS JOIN LATERAL (SELECT xmin, * FROM jobs WHERE id = r.job_id LIMIT 1) j
    LEFT JOIN LATERAL (SELECT * FROM job_schedules WHERE job_id = r.job_id LIMIT 1) s ON true
   WHERE r.status = 'QUEUED'
     AND j.status NOT IN ('PAUSED', 'CANCELLED')
     AND (r.trigger <> 'SCHEDULED' OR r.definition_version IS NULL OR r.definition_version = j.version)
     AND (r.trigger <> 'SCHEDULED'
          OR (j.allow_scheduled AND coalesce(r.due_at, r.scheduled_time) <= now()
              AND (s.misfire_policy IS NULL OR s.misfire_policy = 'RESCHEDULE' OR r.reason LIKE '${BUFFERED}%'
                   OR now() - coalesce(r.due_at, r.scheduled_time)
                      <= make_interval(secs => coalesce(s.misfire_threshold_seconds, $3)))))
     AND (j.overlap_policy = 'ALLOW_ALL'
          OR NOT EXISTS (SELECT 1 FROM job_runs x WHERE x.job_id = r.job_id AND x.status = 'RUNNING'))
),
pick AS (
  SELECT * FROM cand WHERE overlap_allowed OR nth = 1
),
-- The jobs, locked as they are now, in id order (as every batch locks them).
locked AS MATERIALIZED (
  SELECT l.*
    FROM (SELECT DISTINCT job_id FROM pick ORDER BY job_id) p
   CROSS JOIN LATERAL (SELECT ctid, xmin, id, version, overlap_policy, allow_scheduled, status, name, owner_id,
                              timeout_seconds
                         FROM jobs WHERE id = p.job_id FOR NO KEY UPDATE) l
),
-- A job unchanged since the snapshot; or, for ALLOW_ALL (whose runs need no check of the others),
-- one whose definition still lets its runs start.
ready AS (
  SELECT l.* FROM locked l
   WHERE EXISTS (SELECT 1 FROM pick p
                  WHERE p.job_id = l.id
                    AND (p.job_xmin = l.xmin
                         OR (l.overlap_policy = 'ALLOW_ALL' AND l.version = p.job_version
                             AND l.allow_scheduled = p.allow_scheduled AND l.status NOT IN ('PAUSED', 'CANCELLED'))))
),
-- A run changed since the snapshot has another ctid: it is left alone (and tried again).
started AS (
  UPDATE job_runs r
     SET status = 'RUNNING', start_time = now(), worker_id = $2, lock_token = gen_random_uuid()::text,
         definition_version = p.job_version, updated_at = now()
    FROM pick p
   WHERE r.ctid = p.run_ctid AND r.status = 'QUEUED' AND p.job_id IN (SELECT id FROM ready)
  RETURNING r.id, r.job_id, r.lock_token
),
-- The job's status follows its runs. Its row is written even when nothing changes: that is what
-- tells a concurrent statement about this one (see the top of this file). updated_at is left alone:
-- it dates changes to the job, not its runs (and no index holds status: the update is HOT).
held AS (
  UPDATE jobs j
     SET status = CASE WHEN j.id IN (SELECT job_id FROM started) THEN 'RUNNING' ELSE j.status END
    FROM ready r
   WHERE j.ctid = r.ctid
)
SELECT i.id::text, s.lock_token, p.job_id, p.attempt, p.scheduled_time, p.idempotency_key, p.trigger::text,
       p.trigger_payload,
       p.job_version, l.name AS job_name, l.owner_id, l.timeout_seconds,
       coalesce(p.job_id = i.known_job_id AND p.job_version = i.known_version, false) AS payload_known,
       to_jsonb(pl) AS payload,
       CASE WHEN s.id IS NOT NULL THEN 'RUN' WHEN c.id IS NOT NULL THEN 'RETRY' ELSE 'SLOW' END AS outcome
  FROM input i
  LEFT JOIN started s ON s.id = i.id
  LEFT JOIN cand c ON c.id = i.id
  LEFT JOIN pick p ON p.id = s.id
  LEFT JOIN locked l ON l.id = p.job_id
  LEFT JOIN LATERAL (SELECT * FROM job_payloads
                      WHERE job_id = p.job_id
                        AND NOT coalesce(p.job_id = i.known_job_id AND p.job_version = i.known_version, false)
                      LIMIT 1) pl ON true`;

interface StartRow {
  id: string;
  outcome: 'RUN' | 'RETRY' | 'SLOW';
  lock_token: string | null;
  job_id: string;
  attempt: number;
  scheduled_time: Date;
  idempotency_key: string;
  trigger: TriggerSource;
  trigger_payload: unknown;
  job_version: number;
  job_name: string;
  owner_id: string;
  timeout_seconds: number | null;
  payload_known: boolean;
  payload: Record<string, unknown> | null;
}

/** A run to start, with the payload the worker already holds for its job (if any). */
export interface StartItem {
  runId: string;
  known?: KnownPayload | undefined;
}

/** A job's payload at one definition version. */
export interface KnownPayload {
  jobId: string;
  version: number;
  payload: PayloadFields;
}

/** The items whose key has not come before (a run sent twice in one batch goes in once). */
function firstOfEach<T>(items: readonly T[], key: (item: T) => string): Set<T> {
  const keys = new Set<string>();
  return new Set(items.filter((i) => !keys.has(key(i)) && Boolean(keys.add(key(i)))));
}

/**
 * Starts the common cases among `runIds` with one statement: QUEUED runs that are due, of a live
 * job, not misfired, and with no other run of the job active unless its overlap policy is
 * ALLOW_ALL. Answers in the order of `runIds` (a run id given twice: SLOW for the repeat).
 */
export async function startRunsBatch(
  pool: Pool,
  items: readonly StartItem[],
  opts: { workerId: string; misfireThresholdSeconds: number },
): Promise<BatchStart[]> {
  const first = firstOfEach(items, (i) => i.runId);
  const unique = [...first];
  const { rows } = await pool.query<StartRow>({
    name: 'chronos_start_runs',
    text: START_RUNS,
    values: [
      unique.map((i) => i.runId),
      opts.workerId,
      opts.misfireThresholdSeconds,
      unique.map((i) => i.known?.jobId ?? null),
      unique.map((i) => i.known?.version ?? null),
    ],
  });
  const byId = new Map(rows.map((r) => [r.id, r]));
  return items.map((item): BatchStart => {
    const id = item.runId;
    const r = first.has(item) ? byId.get(id) : undefined;
    if (!r) return { outcome: 'SLOW' };
    if (r.outcome !== 'RUN') return { outcome: r.outcome };
    // payload_known: the statement matched the held payload's job and version, and left it out.
    const payload = r.payload_known && item.known ? item.known.payload : payloadFromColumns(r.payload);
    return {
      outcome: 'RUN',
      runId: id,
      jobId: r.job_id,
      attempt: r.attempt,
      lockToken: r.lock_token as string,
      definitionVersion: r.job_version,
      run: {
        scheduledTime: r.scheduled_time,
        attempt: r.attempt,
        idempotencyKey: r.idempotency_key,
        trigger: r.trigger,
        triggerPayload: r.trigger_payload,
        job: { id: r.job_id, name: r.job_name, ownerId: r.owner_id, timeoutSeconds: r.timeout_seconds },
        payload,
      },
    };
  });
}

/**
 * $1 run ids, $2 lock tokens, $3 exit codes, $4 outputs (JSON text), $5–$9 the log lines (see
 * logLineRows). One row per run id with its outcome (BatchFinish). Rows are reached as in START_RUNS.
 */
const FINISH_RUNS = `
WITH input AS (
  SELECT * FROM unnest($1::bpchar[], $2::text[], $3::int[], $4::text[]) AS i(id, lock_token, exit_code, output)
),
-- The fence: only a RUNNING run whose lock token is the one presented is finished; locked and read
-- as it is now. With it, its job's row version in this statement's snapshot.
cand AS MATERIALIZED (
  SELECT r.ctid AS run_ctid, r.id, r.job_id, i.exit_code, i.output, j.xmin AS job_xmin,
         GREATEST(0, (EXTRACT(EPOCH FROM (now() - r.start_time)) * 1000)::int) AS duration_ms
    FROM input i
   CROSS JOIN LATERAL (SELECT ctid, id, job_id, start_time FROM job_runs
                        WHERE id = i.id AND status = 'RUNNING' AND lock_token = i.lock_token
                          FOR NO KEY UPDATE) r
   CROSS JOIN LATERAL (SELECT xmin FROM jobs WHERE id = r.job_id LIMIT 1) j
),
-- Their jobs, locked as they are now, in id order (as every batch locks them) ...
locked AS MATERIALIZED (
  SELECT l.*
    FROM (SELECT DISTINCT job_id FROM cand ORDER BY job_id) c
   CROSS JOIN LATERAL (SELECT ctid, xmin, id, status, allow_scheduled FROM jobs WHERE id = c.job_id FOR NO KEY UPDATE) l
),
-- ... and the ones unchanged since the snapshot: what it says of their other runs is current.
current AS (
  SELECT l.* FROM locked l WHERE EXISTS (SELECT 1 FROM cand c WHERE c.job_id = l.id AND c.job_xmin = l.xmin)
),
-- A ONCE job ends with its run, a fixed-delay schedule plans from it: finishRun does both.
ready AS (
  SELECT c.id FROM current c
    LEFT JOIN LATERAL (SELECT schedule_type, interval_mode FROM job_schedules WHERE job_id = c.id LIMIT 1) s ON true
   WHERE s.schedule_type IS DISTINCT FROM 'ONCE'
     AND NOT coalesce(s.schedule_type = 'INTERVAL' AND s.interval_mode = 'FIXED_DELAY', false)
),
agg AS (
  SELECT job_id, count(*)::int AS n, sum(duration_ms)::bigint AS total_ms
    FROM cand WHERE job_id IN (SELECT id FROM ready)
   GROUP BY job_id
   ORDER BY job_id
),
-- Statistics, added to the row as it is now (no lost update). A job whose failure alert is open is
-- left to finishRun, which closes the alert with its recovery notice.
counted AS (
  INSERT INTO job_stats AS st (job_id, total_executions, successful_executions, total_duration_ms,
                               avg_duration_ms, last_execution_at, last_success_at, updated_at)
  SELECT job_id, n, n, total_ms, total_ms::float8 / n, now(), now(), now() FROM agg
  ON CONFLICT (job_id) DO UPDATE
     SET total_executions = st.total_executions + EXCLUDED.total_executions,
         successful_executions = st.successful_executions + EXCLUDED.successful_executions,
         total_duration_ms = st.total_duration_ms + EXCLUDED.total_duration_ms,
         avg_duration_ms = (st.total_duration_ms + EXCLUDED.total_duration_ms)::float8
                           / (st.total_executions + EXCLUDED.total_executions),
         last_execution_at = EXCLUDED.last_execution_at, last_success_at = EXCLUDED.last_success_at,
         consecutive_failures = 0, updated_at = now()
   WHERE NOT st.alert_open
  RETURNING job_id
),
finished AS (
  UPDATE job_runs r
     SET status = 'SUCCESS', end_time = now(), duration_ms = c.duration_ms, exit_code = c.exit_code,
         output = c.output::jsonb, error_message = NULL, error_code = NULL, updated_at = now()
    FROM cand c
   WHERE r.ctid = c.run_ctid AND c.job_id IN (SELECT job_id FROM counted)
  RETURNING r.id, r.job_id
),
logged AS (
  INSERT INTO job_run_logs (run_id, "timestamp", level, message, context)
  ${logLineRows(5)}
   WHERE v.run_id IN (SELECT id FROM finished)
   ORDER BY v.n
),
-- The job's status follows its runs: RUNNING while another one runs (besides the ones finished
-- here, which this statement's snapshot still sees RUNNING; read through the index of runs in
-- flight), else SCHEDULED when a schedule plans its runs, PENDING when nothing does (no schedule, or
-- scheduled runs off: the rule finishRun in runs.ts applies). A paused job stays PAUSED. Written
-- even when unchanged (see the top of this file); updated_at is left alone (see held in START_RUNS).
settle AS (
  SELECT c.ctid,
         CASE WHEN c.status = 'PAUSED' THEN c.status
              WHEN EXISTS (SELECT 1 FROM job_runs x
                            WHERE x.job_id = c.id AND x.status = 'RUNNING' AND x.id NOT IN (SELECT id FROM finished))
                THEN 'RUNNING'::"JobStatus"
              WHEN c.allow_scheduled AND EXISTS (SELECT 1 FROM job_schedules s WHERE s.job_id = c.id)
                THEN 'SCHEDULED'::"JobStatus"
              ELSE 'PENDING'::"JobStatus" END AS status
    FROM current c WHERE c.id IN (SELECT job_id FROM finished)
),
settled AS (
  UPDATE jobs j SET status = s.status
    FROM settle s
   WHERE j.ctid = s.ctid
)
SELECT i.id::text,
       CASE WHEN f.id IS NOT NULL THEN 'DONE'
            WHEN c.id IS NULL THEN 'STALE'
            WHEN c.job_id NOT IN (SELECT id FROM current) THEN 'RETRY'
            ELSE 'SLOW' END AS outcome
  FROM input i LEFT JOIN finished f ON f.id = i.id LEFT JOIN cand c ON c.id = i.id`;

/**
 * Records successful runs as finished with one statement: the fence (RUNNING under the presented
 * lock token), job_stats, the job's status and the runs' remaining log lines. Jobs with a ONCE or
 * fixed-delay schedule, or an open failure alert, are left to `finishRun` (SLOW). Answers in the
 * order of `items` (a run id given twice: SLOW for the repeat).
 */
export async function finishRunsBatch(pool: Pool, items: readonly BatchFinishItem[]): Promise<BatchFinish[]> {
  const first = firstOfEach(items, (i) => i.runId);
  const unique = [...first];
  const { rows } = await pool.query<{ id: string; outcome: BatchFinish }>({
    name: 'chronos_finish_runs',
    text: FINISH_RUNS,
    values: [
      unique.map((i) => i.runId),
      unique.map((i) => i.lockToken),
      unique.map((i) => i.exitCode),
      unique.map((i) => i.output),
      ...logLineParams(unique),
    ],
  });
  const byId = new Map(rows.map((r) => [r.id, r.outcome]));
  return items.map((i) => (first.has(i) ? byId.get(i.runId) : undefined) ?? 'SLOW');
}

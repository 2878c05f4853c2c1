import { isJobType, type JobTypeName } from '@chronos/core';
import { cancelRequestKey } from './changes.ts';
import { bullJobId } from './enqueue.ts';
import { finishCancelled } from './cancel.ts';
import { bullJobKey, type EngineDeps } from './job-changes.ts';
import { finishRun } from './runs.ts';

/** The longest timeout a payload or job may set. */
const MAX_TIMEOUT_SECONDS = 86_400;

/** RUNNING runs read per statement of a sweep. */
const PAGE = 500;

interface RunningRow {
  id: string;
  idempotency_key: string;
  attempt: number;
  lock_token: string | null;
  start_time: Date;
  type: string;
}

/**
 * Closes RUNNING runs that no worker will ever finish, and returns how many it closed. A run is
 * carried by a BullMQ job — the one of its attempt, or of an earlier attempt it took over from — and
 * its worker records the run's end before that job ends. So a RUNNING run all of whose possible
 * BullMQ jobs have ended (completed or failed: BullMQ fails a job that stalled too often, or whose
 * processor could not record the end, say while Postgres was down) or are gone, will never be
 * finished by anyone. Each is closed as FAILURE / WORKER_LOST through `finishRun`, fenced by the lock
 * token read here (a worker that finishes it meanwhile wins), so the retry policy, the DLQ,
 * statistics and the job's status follow as after any failure — or CANCELLED when a cancel of the
 * run was requested (`requestCancel`): not retried, not dead-lettered.
 *
 * A BullMQ job also ends while its worker still runs it when the worker stopped renewing its lock
 * (a blocked event loop, Redis away) long enough to be stalled twice. That worker aborts the run at
 * its timeout at the latest, so a run is looked at only once its timeout (the payload's, else the
 * job's, else `defaultTimeoutSeconds`; the longest possible when the job changed since the run
 * started, as its timeout may have) and `graceMs` more have passed since it started: it is never
 * closed, and perhaps retried, while an executor may still be running it.
 */
export async function closeAbandonedRuns(
  deps: EngineDeps,
  opts: { defaultTimeoutSeconds: number; graceMs: number },
): Promise<number> {
  const finishDeps = { redis: deps.redis, prefix: deps.prefix, queues: deps.queues };
  let closed = 0;
  let cursor: { start: Date; id: string } | null = null;
  for (;;) {
    const rows: RunningRow[] = await deps.db.$queryRaw`
      SELECT r.id, r.idempotency_key, r.attempt, r.lock_token, r.start_time, j.type::text AS type
        FROM job_runs r JOIN jobs j ON j.id = r.job_id LEFT JOIN job_payloads p ON p.job_id = j.id
       WHERE r.status = 'RUNNING'
         AND r.start_time < now() - make_interval(secs => CASE
               -- A timeout changes only with the version: the run's own, unless the job changed since.
               WHEN r.definition_version = j.version THEN coalesce(p.timeout_seconds, j.timeout_seconds, ${opts.defaultTimeoutSeconds})
               ELSE ${Math.max(MAX_TIMEOUT_SECONDS, opts.defaultTimeoutSeconds)} END)
                                  - ${opts.graceMs} * interval '1 millisecond'
         AND (${cursor === null} OR (r.start_time, r.id) > (${cursor?.start ?? new Date(0)}::timestamptz, ${cursor?.id ?? ''}))
       ORDER BY r.start_time, r.id
       LIMIT ${PAGE}`;
    if (rows.length === 0) return closed;
    const candidates = rows.filter((r) => r.lock_token !== null && isJobType(r.type));
    // Every BullMQ job that may carry each run: created (timestamp) and ended (finishedOn), or gone.
    const pipeline = deps.redis.pipeline();
    for (const r of candidates) {
      pipeline.exists(cancelRequestKey(deps.prefix, r.id));
      for (let a = 1; a <= r.attempt; a++)
        pipeline.hmget(
          bullJobKey(deps.prefix, r.type as JobTypeName, bullJobId(r.idempotency_key, a)),
          'timestamp',
          'finishedOn',
          'failedReason',
        );
    }
    const answers = (await pipeline.exec()) ?? [];
    let i = 0;
    for (const r of candidates) {
      const cancelRequested = answers[i++]?.[1] === 1;
      let open = false;
      const reasons: string[] = [];
      for (let a = 1; a <= r.attempt; a++) {
        const [err, fields] = answers[i++] ?? [null, null];
        const [timestamp, finishedOn, failedReason] = (fields ?? []) as (string | null)[];
        if (err || (timestamp !== null && finishedOn === null)) open = true;
        // Each attempt's BullMQ job named: an earlier attempt's job also ends failed when its run's
        // failure was recorded (and retried), which says nothing about this attempt.
        if (failedReason) reasons.push(`${r.attempt > 1 ? `attempt ${a} ` : ''}failed: ${failedReason}`);
      }
      if (open) continue;
      const why = reasons.length > 0 ? reasons.join('; ') : 'completed or removed';
      const ended = `its queue job ended (${why}) without the run's end being recorded`;
      const run = { runId: r.id, lockToken: r.lock_token as string };
      const accepted = cancelRequested
        ? await finishCancelled(deps.db, run, `cancelled; ${ended}`, finishDeps)
        : (
            await finishRun(
              deps.db,
              {
                ...run,
                status: 'FAILURE',
                errorCode: 'WORKER_LOST',
                errorMessage: `${ended}: no worker will finish it`,
              },
              finishDeps,
            )
          ).accepted;
      if (accepted) closed++;
    }
    const last = rows[rows.length - 1] as RunningRow;
    cursor = { start: last.start_time, id: last.id };
    if (rows.length < PAGE) return closed;
  }
}

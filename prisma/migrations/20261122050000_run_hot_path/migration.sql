-- The worker's hot path: every run is written twice (start, finish) and so is its job's row (its
-- status follows its runs). A non-HOT update adds an entry to every index of the table, so
-- indexes on job_runs are kept to the ones a query uses, and no index of jobs holds a column a run
-- changes (status; updated_at, which run-driven status changes no longer touch): those updates are
-- HOT, with room left on each page for them (fillfactor 80).

-- job_runs: (status) and (job_id) are prefixes of (status, end_time) / (status, due_at) and
-- (job_id, scheduled_time); no query looks runs up by worker_id.
DROP INDEX "job_runs_status_idx";
DROP INDEX "job_runs_job_id_idx";
DROP INDEX "job_runs_worker_id_idx";

-- Retries and DLQ replays are few: only their rows get an entry.
DROP INDEX "job_runs_retry_of_id_idx";
CREATE INDEX "job_runs_retry_of_id_idx" ON "job_runs"("retry_of_id") WHERE "retry_of_id" IS NOT NULL;
DROP INDEX "job_runs_dlq_event_id_idx";
CREATE INDEX "job_runs_dlq_event_id_idx" ON "job_runs"("dlq_event_id") WHERE "dlq_event_id" IS NOT NULL;

-- The reconciler's scan of QUEUED runs that are due, and finished runs by status: partial, so a
-- run's start and finish (to RUNNING, then to an end state with end_time) add no entry to the first,
-- and its start none to the second.
DROP INDEX "job_runs_status_due_at_idx";
CREATE INDEX "job_runs_queued_due_at_idx" ON "job_runs"("due_at") WHERE "status" = 'QUEUED';
DROP INDEX "job_runs_status_end_time_idx";
CREATE INDEX "job_runs_status_end_time_idx" ON "job_runs"("status", "end_time" DESC) WHERE "end_time" IS NOT NULL;

-- A job's runs in flight (the overlap policy; the job's status when a run ends).
CREATE INDEX "job_runs_running_job_id_idx" ON "job_runs"("job_id") WHERE "status" = 'RUNNING';

-- job_run_logs: lines are read per run, in order ((run_id, id)); every run writes some.
DROP INDEX "job_run_logs_timestamp_idx";
DROP INDEX "job_run_logs_level_idx";

-- jobs: status filters go through the owner's or the type's index.
DROP INDEX "jobs_status_idx";
DROP INDEX "jobs_status_type_created_at_idx";
DROP INDEX "jobs_owner_id_status_updated_at_idx";

-- CreateIndex
CREATE INDEX "jobs_owner_id_updated_at_idx" ON "jobs"("owner_id", "updated_at");

ALTER TABLE "jobs" SET (fillfactor = 80);

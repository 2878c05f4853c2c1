-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "public";

-- CreateEnum
CREATE TYPE "JobType" AS ENUM ('HTTP', 'DATABASE', 'FILE_SYSTEM', 'MESSAGE_QUEUE', 'CACHE', 'EMAIL', 'REPORT', 'SCRIPT', 'DUMMY', 'DB_TO_KAFKA');

-- CreateEnum
CREATE TYPE "JobStatus" AS ENUM ('PENDING', 'SCHEDULED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED', 'PAUSED');

-- CreateEnum
CREATE TYPE "JobPriority" AS ENUM ('LOW', 'MEDIUM', 'HIGH');

-- CreateEnum
CREATE TYPE "ScheduleType" AS ENUM ('ONCE', 'CRON', 'INTERVAL');

-- CreateEnum
CREATE TYPE "MisfirePolicy" AS ENUM ('FIRE_NOW', 'IGNORE', 'RESCHEDULE');

-- CreateEnum
CREATE TYPE "IntervalMode" AS ENUM ('FIXED_RATE', 'FIXED_DELAY');

-- CreateEnum
CREATE TYPE "DstGapPolicy" AS ENUM ('SKIP', 'SHIFT');

-- CreateEnum
CREATE TYPE "DstRepeatPolicy" AS ENUM ('FIRST', 'LAST', 'BOTH');

-- CreateEnum
CREATE TYPE "ResumePolicy" AS ENUM ('SKIP_MISSED', 'RUN_ONCE', 'REPLAY');

-- CreateEnum
CREATE TYPE "OverlapPolicy" AS ENUM ('SKIP', 'BUFFER_ONE', 'BUFFER_ALL', 'CANCEL_OTHER', 'ALLOW_ALL');

-- CreateEnum
CREATE TYPE "BackoffStrategy" AS ENUM ('FIXED', 'EXPONENTIAL');

-- CreateEnum
CREATE TYPE "RunStatus" AS ENUM ('QUEUED', 'RUNNING', 'SUCCESS', 'FAILURE', 'TIMEOUT', 'CANCELLED', 'SKIPPED_OVERLAP', 'SKIPPED_MISFIRE', 'SKIPPED_PAUSED', 'SKIPPED', 'DEDUPLICATED');

-- CreateEnum
CREATE TYPE "TriggerSource" AS ENUM ('SCHEDULED', 'MANUAL', 'WEBHOOK', 'RETRY', 'REPLAY', 'BACKFILL');

-- CreateEnum
CREATE TYPE "LogLevel" AS ENUM ('TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR');

-- CreateEnum
CREATE TYPE "NotificationChannel" AS ENUM ('EMAIL', 'WEBHOOK', 'SMS');

-- CreateEnum
CREATE TYPE "NotificationStatus" AS ENUM ('PENDING', 'SENT', 'FAILED', 'CANCELLED');

-- CreateEnum
CREATE TYPE "DlqStatus" AS ENUM ('PENDING', 'RESOLVED', 'IGNORED');

-- CreateEnum
CREATE TYPE "VariableScope" AS ENUM ('GLOBAL', 'JOB');

-- CreateTable
CREATE TABLE "users" (
    "id" CHAR(26) NOT NULL,
    "email" VARCHAR(255) NOT NULL,
    "password_hash" VARCHAR(255) NOT NULL,
    "display_name" VARCHAR(255),
    "is_active" BOOLEAN NOT NULL DEFAULT true,
    "token_version" INTEGER NOT NULL DEFAULT 0,
    "last_login_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "users_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "roles" (
    "id" SERIAL NOT NULL,
    "name" VARCHAR(64) NOT NULL,
    "description" TEXT,
    "permissions" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "is_builtin" BOOLEAN NOT NULL DEFAULT false,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "roles_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "user_roles" (
    "user_id" CHAR(26) NOT NULL,
    "role_id" INTEGER NOT NULL,
    "assigned_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "assigned_by" CHAR(26),

    CONSTRAINT "user_roles_pkey" PRIMARY KEY ("user_id","role_id")
);

-- CreateTable
CREATE TABLE "jobs" (
    "id" CHAR(26) NOT NULL,
    "owner_id" CHAR(26) NOT NULL,
    "name" VARCHAR(255) NOT NULL,
    "description" TEXT,
    "type" "JobType" NOT NULL,
    "status" "JobStatus" NOT NULL DEFAULT 'PENDING',
    "priority" "JobPriority" NOT NULL DEFAULT 'MEDIUM',
    "version" INTEGER NOT NULL DEFAULT 1,
    "overlap_policy" "OverlapPolicy" NOT NULL DEFAULT 'SKIP',
    "timeout_seconds" INTEGER,
    "alert_threshold" INTEGER NOT NULL DEFAULT 3,
    "allow_scheduled" BOOLEAN NOT NULL DEFAULT true,
    "allow_manual" BOOLEAN NOT NULL DEFAULT true,
    "allow_webhook" BOOLEAN NOT NULL DEFAULT false,
    "notification_settings" JSONB,
    "paused_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "jobs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "job_schedules" (
    "id" SERIAL NOT NULL,
    "job_id" CHAR(26) NOT NULL,
    "schedule_type" "ScheduleType" NOT NULL,
    "run_at" TIMESTAMPTZ(3),
    "cron_expression" VARCHAR(255),
    "interval_seconds" INTEGER,
    "interval_mode" "IntervalMode" NOT NULL DEFAULT 'FIXED_RATE',
    "anchor_at" TIMESTAMPTZ(3),
    "timezone" VARCHAR(64) NOT NULL DEFAULT 'UTC',
    "misfire_policy" "MisfirePolicy" NOT NULL DEFAULT 'FIRE_NOW',
    "misfire_threshold_seconds" INTEGER,
    "misfire_max_catch_up" INTEGER NOT NULL DEFAULT 100,
    "dst_gap_policy" "DstGapPolicy" NOT NULL DEFAULT 'SHIFT',
    "dst_repeat_policy" "DstRepeatPolicy" NOT NULL DEFAULT 'FIRST',
    "resume_policy" "ResumePolicy" NOT NULL DEFAULT 'SKIP_MISSED',
    "jitter_seconds" INTEGER NOT NULL DEFAULT 0,
    "start_at" TIMESTAMPTZ(3),
    "end_at" TIMESTAMPTZ(3),
    "next_fire_at" TIMESTAMPTZ(3),
    "last_fire_at" TIMESTAMPTZ(3),
    "last_planned_by" VARCHAR(255),
    "last_planned_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "job_schedules_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "job_payloads" (
    "id" SERIAL NOT NULL,
    "job_id" CHAR(26) NOT NULL,
    "type" "JobType" NOT NULL,
    "timeout_seconds" INTEGER,
    "http_url" VARCHAR(2048),
    "http_method" VARCHAR(10),
    "http_headers" JSONB,
    "http_body" TEXT,
    "http_query_params" JSONB,
    "http_auth" JSONB,
    "http_expected_statuses" JSONB,
    "http_follow_redirects" BOOLEAN NOT NULL DEFAULT true,
    "script_content" TEXT,
    "script_interpreter" VARCHAR(32),
    "script_env" JSONB,
    "database_url" VARCHAR(2048),
    "query" TEXT,
    "parameters" JSONB,
    "query_timeout_seconds" INTEGER,
    "max_rows" INTEGER,
    "read_only" BOOLEAN NOT NULL DEFAULT true,
    "transaction_isolation" VARCHAR(50),
    "queue_name" VARCHAR(255),
    "operation_type" VARCHAR(50),
    "message_body" TEXT,
    "message_group_id" VARCHAR(255),
    "queue_config" JSONB,
    "batch_size" INTEGER,
    "cache_region" VARCHAR(255),
    "cache_operation" VARCHAR(50),
    "cache_keys" JSONB,
    "time_to_live_seconds" INTEGER,
    "skip_if_exists" BOOLEAN NOT NULL DEFAULT false,
    "source_region" VARCHAR(255),
    "cache_config" JSONB,
    "async" BOOLEAN NOT NULL DEFAULT false,
    "file_path" VARCHAR(2048),
    "file_operation" VARCHAR(50),
    "target_path" VARCHAR(2048),
    "file_content" TEXT,
    "create_directories" BOOLEAN NOT NULL DEFAULT false,
    "overwrite" BOOLEAN NOT NULL DEFAULT false,
    "file_pattern" VARCHAR(1024),
    "recursive" BOOLEAN NOT NULL DEFAULT false,
    "compression_format" VARCHAR(16),
    "file_processing" JSONB,
    "email_to" JSONB,
    "email_cc" JSONB,
    "email_bcc" JSONB,
    "email_subject" VARCHAR(998),
    "email_body" TEXT,
    "email_html" BOOLEAN NOT NULL DEFAULT false,
    "email_attachments" JSONB,
    "report_type" VARCHAR(50),
    "report_format" VARCHAR(16),
    "report_query" TEXT,
    "report_template" TEXT,
    "report_recipients" JSONB,
    "kafka_topic" VARCHAR(255),
    "kafka_key_field" VARCHAR(255),
    "include_metadata" BOOLEAN NOT NULL DEFAULT false,
    "skip_on_error" BOOLEAN NOT NULL DEFAULT false,
    "field_mappings" JSONB,
    "excluded_fields" JSONB,
    "metadata" JSONB,

    CONSTRAINT "job_payloads_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "retry_policies" (
    "id" SERIAL NOT NULL,
    "job_id" CHAR(26) NOT NULL,
    "max_attempts" INTEGER NOT NULL DEFAULT 1,
    "backoff_strategy" "BackoffStrategy" NOT NULL DEFAULT 'FIXED',
    "backoff_seconds" INTEGER NOT NULL DEFAULT 60,
    "retry_on" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "jitter" BOOLEAN NOT NULL DEFAULT true,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "retry_policies_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "job_runs" (
    "id" CHAR(26) NOT NULL,
    "job_id" CHAR(26) NOT NULL,
    "idempotency_key" VARCHAR(255) NOT NULL,
    "attempt" INTEGER NOT NULL DEFAULT 1,
    "status" "RunStatus" NOT NULL DEFAULT 'QUEUED',
    "trigger" "TriggerSource" NOT NULL DEFAULT 'SCHEDULED',
    "scheduled_time" TIMESTAMPTZ(3) NOT NULL,
    "due_at" TIMESTAMPTZ(3),
    "enqueued_at" TIMESTAMPTZ(3),
    "start_time" TIMESTAMPTZ(3),
    "end_time" TIMESTAMPTZ(3),
    "duration_ms" INTEGER,
    "exit_code" INTEGER,
    "error_message" TEXT,
    "error_code" VARCHAR(64),
    "reason" TEXT,
    "worker_id" VARCHAR(255),
    "lock_token" VARCHAR(64),
    "definition_version" INTEGER,
    "output" JSONB,
    "trigger_payload" JSONB,
    "retry_of_id" CHAR(26),
    "dlq_event_id" CHAR(26),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "job_runs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "job_run_logs" (
    "id" BIGSERIAL NOT NULL,
    "run_id" CHAR(26) NOT NULL,
    "timestamp" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "level" "LogLevel" NOT NULL DEFAULT 'INFO',
    "message" TEXT NOT NULL,
    "context" JSONB,

    CONSTRAINT "job_run_logs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "notifications" (
    "id" SERIAL NOT NULL,
    "user_id" CHAR(26) NOT NULL,
    "job_id" CHAR(26),
    "run_id" CHAR(26),
    "channel" "NotificationChannel" NOT NULL,
    "target" VARCHAR(255) NOT NULL,
    "template_code" VARCHAR(50) NOT NULL,
    "payload" JSONB,
    "status" "NotificationStatus" NOT NULL DEFAULT 'PENDING',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "last_error" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "sent_at" TIMESTAMPTZ(3),

    CONSTRAINT "notifications_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "dlq_events" (
    "id" CHAR(26) NOT NULL,
    "job_id" CHAR(26) NOT NULL,
    "run_id" CHAR(26),
    "failure_reason" TEXT NOT NULL,
    "status" "DlqStatus" NOT NULL DEFAULT 'PENDING',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "resolved_at" TIMESTAMPTZ(3),
    "resolution_notes" TEXT,
    "resolved_by" VARCHAR(255),
    "replay_count" INTEGER NOT NULL DEFAULT 0,

    CONSTRAINT "dlq_events_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "audit_events" (
    "id" CHAR(26) NOT NULL,
    "entity_type" VARCHAR(50) NOT NULL,
    "entity_id" VARCHAR(255) NOT NULL,
    "action" VARCHAR(50) NOT NULL,
    "user_id" CHAR(26),
    "user_email" VARCHAR(255),
    "ip_address" VARCHAR(64),
    "user_agent" VARCHAR(512),
    "timestamp" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "details" JSONB,

    CONSTRAINT "audit_events_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "variables" (
    "id" CHAR(26) NOT NULL,
    "name" VARCHAR(255) NOT NULL,
    "value" TEXT NOT NULL,
    "is_sensitive" BOOLEAN NOT NULL DEFAULT false,
    "key_id" VARCHAR(64),
    "scope" "VariableScope" NOT NULL DEFAULT 'GLOBAL',
    "owner_id" CHAR(26) NOT NULL,
    "job_id" CHAR(26),
    "description" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "variables_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "job_stats" (
    "job_id" CHAR(26) NOT NULL,
    "total_executions" INTEGER NOT NULL DEFAULT 0,
    "successful_executions" INTEGER NOT NULL DEFAULT 0,
    "failed_executions" INTEGER NOT NULL DEFAULT 0,
    "total_duration_ms" BIGINT NOT NULL DEFAULT 0,
    "avg_duration_ms" DOUBLE PRECISION,
    "last_execution_at" TIMESTAMPTZ(3),
    "last_success_at" TIMESTAMPTZ(3),
    "last_failure_at" TIMESTAMPTZ(3),
    "consecutive_failures" INTEGER NOT NULL DEFAULT 0,
    "alert_open" BOOLEAN NOT NULL DEFAULT false,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "job_stats_pkey" PRIMARY KEY ("job_id")
);

-- CreateTable
CREATE TABLE "webhooks" (
    "id" CHAR(26) NOT NULL,
    "job_id" CHAR(26) NOT NULL,
    "secret" TEXT NOT NULL,
    "previous_secret" TEXT,
    "previous_secret_expires_at" TIMESTAMPTZ(3),
    "key_id" VARCHAR(64),
    "enabled" BOOLEAN NOT NULL DEFAULT true,
    "rate_limit_per_minute" INTEGER NOT NULL DEFAULT 60,
    "forward_headers" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "last_triggered_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "webhooks_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "users_email_key" ON "users"("email");

-- CreateIndex
CREATE INDEX "users_created_at_idx" ON "users"("created_at");

-- CreateIndex
CREATE UNIQUE INDEX "roles_name_key" ON "roles"("name");

-- CreateIndex
CREATE INDEX "user_roles_role_id_idx" ON "user_roles"("role_id");

-- CreateIndex
CREATE INDEX "jobs_type_idx" ON "jobs"("type");

-- CreateIndex
CREATE INDEX "jobs_status_idx" ON "jobs"("status");

-- CreateIndex
CREATE INDEX "jobs_priority_idx" ON "jobs"("priority");

-- CreateIndex
CREATE INDEX "jobs_created_at_idx" ON "jobs"("created_at");

-- CreateIndex
CREATE INDEX "jobs_status_type_created_at_idx" ON "jobs"("status", "type", "created_at");

-- CreateIndex
CREATE INDEX "jobs_owner_id_status_updated_at_idx" ON "jobs"("owner_id", "status", "updated_at");

-- CreateIndex
CREATE UNIQUE INDEX "jobs_id_type_key" ON "jobs"("id", "type");

-- CreateIndex
CREATE UNIQUE INDEX "jobs_owner_id_name_key" ON "jobs"("owner_id", "name");

-- CreateIndex
CREATE UNIQUE INDEX "job_schedules_job_id_key" ON "job_schedules"("job_id");

-- CreateIndex
CREATE INDEX "job_schedules_run_at_idx" ON "job_schedules"("run_at");

-- CreateIndex
CREATE INDEX "job_schedules_schedule_type_idx" ON "job_schedules"("schedule_type");

-- CreateIndex
CREATE INDEX "job_schedules_next_fire_at_id_idx" ON "job_schedules"("next_fire_at", "id");

-- CreateIndex
CREATE UNIQUE INDEX "job_payloads_job_id_key" ON "job_payloads"("job_id");

-- CreateIndex
CREATE INDEX "job_payloads_type_idx" ON "job_payloads"("type");

-- CreateIndex
CREATE UNIQUE INDEX "job_payloads_job_id_type_key" ON "job_payloads"("job_id", "type");

-- CreateIndex
CREATE UNIQUE INDEX "retry_policies_job_id_key" ON "retry_policies"("job_id");

-- CreateIndex
CREATE INDEX "job_runs_job_id_idx" ON "job_runs"("job_id");

-- CreateIndex
CREATE INDEX "job_runs_scheduled_time_idx" ON "job_runs"("scheduled_time");

-- CreateIndex
CREATE INDEX "job_runs_status_idx" ON "job_runs"("status");

-- CreateIndex
CREATE INDEX "job_runs_worker_id_idx" ON "job_runs"("worker_id");

-- CreateIndex
CREATE INDEX "job_runs_job_id_scheduled_time_idx" ON "job_runs"("job_id", "scheduled_time" DESC);

-- CreateIndex
CREATE INDEX "job_runs_status_end_time_idx" ON "job_runs"("status", "end_time" DESC);

-- CreateIndex
CREATE INDEX "job_runs_status_due_at_idx" ON "job_runs"("status", "due_at");

-- CreateIndex
CREATE INDEX "job_runs_retry_of_id_idx" ON "job_runs"("retry_of_id");

-- CreateIndex
CREATE INDEX "job_runs_dlq_event_id_idx" ON "job_runs"("dlq_event_id");

-- CreateIndex
CREATE UNIQUE INDEX "job_runs_idempotency_key_attempt_key" ON "job_runs"("idempotency_key", "attempt");

-- CreateIndex
CREATE INDEX "job_run_logs_run_id_id_idx" ON "job_run_logs"("run_id", "id");

-- CreateIndex
CREATE INDEX "job_run_logs_timestamp_idx" ON "job_run_logs"("timestamp");

-- CreateIndex
CREATE INDEX "job_run_logs_level_idx" ON "job_run_logs"("level");

-- CreateIndex
CREATE INDEX "notifications_user_id_idx" ON "notifications"("user_id");

-- CreateIndex
CREATE INDEX "notifications_job_id_idx" ON "notifications"("job_id");

-- CreateIndex
CREATE INDEX "notifications_run_id_idx" ON "notifications"("run_id");

-- CreateIndex
CREATE INDEX "notifications_status_idx" ON "notifications"("status");

-- CreateIndex
CREATE INDEX "notifications_created_at_idx" ON "notifications"("created_at");

-- CreateIndex
CREATE INDEX "notifications_user_id_status_created_at_idx" ON "notifications"("user_id", "status", "created_at" DESC);

-- CreateIndex
CREATE INDEX "dlq_events_job_id_idx" ON "dlq_events"("job_id");

-- CreateIndex
CREATE INDEX "dlq_events_run_id_idx" ON "dlq_events"("run_id");

-- CreateIndex
CREATE INDEX "dlq_events_status_idx" ON "dlq_events"("status");

-- CreateIndex
CREATE INDEX "dlq_events_created_at_idx" ON "dlq_events"("created_at");

-- CreateIndex
CREATE INDEX "dlq_events_status_created_at_idx" ON "dlq_events"("status", "created_at" DESC);

-- CreateIndex
CREATE INDEX "audit_events_entity_type_entity_id_idx" ON "audit_events"("entity_type", "entity_id");

-- CreateIndex
CREATE INDEX "audit_events_user_email_idx" ON "audit_events"("user_email");

-- CreateIndex
CREATE INDEX "audit_events_user_id_idx" ON "audit_events"("user_id");

-- CreateIndex
CREATE INDEX "audit_events_timestamp_idx" ON "audit_events"("timestamp");

-- CreateIndex
CREATE INDEX "audit_events_action_idx" ON "audit_events"("action");

-- CreateIndex
CREATE INDEX "audit_events_entity_type_entity_id_timestamp_idx" ON "audit_events"("entity_type", "entity_id", "timestamp" DESC);

-- CreateIndex
CREATE INDEX "variables_owner_id_scope_idx" ON "variables"("owner_id", "scope");

-- CreateIndex
CREATE UNIQUE INDEX "variables_job_id_name_key" ON "variables"("job_id", "name");

-- CreateIndex
CREATE INDEX "webhooks_job_id_idx" ON "webhooks"("job_id");

-- AddForeignKey
ALTER TABLE "user_roles" ADD CONSTRAINT "user_roles_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "user_roles" ADD CONSTRAINT "user_roles_role_id_fkey" FOREIGN KEY ("role_id") REFERENCES "roles"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "user_roles" ADD CONSTRAINT "user_roles_assigned_by_fkey" FOREIGN KEY ("assigned_by") REFERENCES "users"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "jobs" ADD CONSTRAINT "jobs_owner_id_fkey" FOREIGN KEY ("owner_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "job_schedules" ADD CONSTRAINT "job_schedules_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "job_payloads" ADD CONSTRAINT "job_payloads_job_id_type_fkey" FOREIGN KEY ("job_id", "type") REFERENCES "jobs"("id", "type") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "retry_policies" ADD CONSTRAINT "retry_policies_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "job_runs" ADD CONSTRAINT "job_runs_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "job_runs" ADD CONSTRAINT "job_runs_retry_of_id_fkey" FOREIGN KEY ("retry_of_id") REFERENCES "job_runs"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "job_runs" ADD CONSTRAINT "job_runs_dlq_event_id_fkey" FOREIGN KEY ("dlq_event_id") REFERENCES "dlq_events"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "job_run_logs" ADD CONSTRAINT "job_run_logs_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "job_runs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "notifications" ADD CONSTRAINT "notifications_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "notifications" ADD CONSTRAINT "notifications_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "jobs"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "notifications" ADD CONSTRAINT "notifications_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "job_runs"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "dlq_events" ADD CONSTRAINT "dlq_events_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "dlq_events" ADD CONSTRAINT "dlq_events_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "job_runs"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "audit_events" ADD CONSTRAINT "audit_events_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "variables" ADD CONSTRAINT "variables_owner_id_fkey" FOREIGN KEY ("owner_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "variables" ADD CONSTRAINT "variables_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "job_stats" ADD CONSTRAINT "job_stats_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "webhooks" ADD CONSTRAINT "webhooks_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- =============================================================================================
-- Hand-written: what Prisma's schema language cannot express. Everything above this line is
-- exactly diffSchemas(null, prisma/schema.prisma) (packages/db tests check it).
-- =============================================================================================

-- CHECK constraints -----------------------------------------------------------------------------

-- A schedule carries the field its type fires on.
ALTER TABLE "job_schedules"
    ADD CONSTRAINT "job_schedules_consistency_check" CHECK (
        ("schedule_type" = 'ONCE' AND "run_at" IS NOT NULL)
        OR ("schedule_type" = 'CRON' AND "cron_expression" IS NOT NULL)
        OR ("schedule_type" = 'INTERVAL' AND "interval_seconds" IS NOT NULL)
    ),
    ADD CONSTRAINT "job_schedules_interval_positive_check" CHECK ("interval_seconds" IS NULL OR "interval_seconds" > 0),
    ADD CONSTRAINT "job_schedules_window_check" CHECK ("end_at" IS NULL OR "start_at" IS NULL OR "end_at" > "start_at"),
    ADD CONSTRAINT "job_schedules_jitter_check" CHECK ("jitter_seconds" BETWEEN 0 AND 3600),
    ADD CONSTRAINT "job_schedules_misfire_check" CHECK (
        ("misfire_threshold_seconds" IS NULL OR "misfire_threshold_seconds" >= 0)
        AND "misfire_max_catch_up" >= 1
    );

ALTER TABLE "retry_policies"
    ADD CONSTRAINT "retry_policies_sanity_check" CHECK (
        "max_attempts" BETWEEN 1 AND 10 AND "backoff_seconds" BETWEEN 0 AND 3600
    );

ALTER TABLE "jobs"
    ADD CONSTRAINT "jobs_alert_threshold_check" CHECK ("alert_threshold" >= 1),
    ADD CONSTRAINT "jobs_timeout_check" CHECK ("timeout_seconds" IS NULL OR "timeout_seconds" > 0);

ALTER TABLE "job_payloads"
    ADD CONSTRAINT "job_payloads_timeout_check" CHECK ("timeout_seconds" IS NULL OR "timeout_seconds" > 0);

-- The idempotency key is also the BullMQ job id, and BullMQ job ids may not contain ':'.
ALTER TABLE "job_runs"
    ADD CONSTRAINT "job_runs_attempt_check" CHECK ("attempt" >= 1),
    ADD CONSTRAINT "job_runs_idempotency_key_check" CHECK ("idempotency_key" NOT LIKE '%:%'),
    ADD CONSTRAINT "job_runs_duration_check" CHECK ("duration_ms" IS NULL OR "duration_ms" >= 0);

-- GLOBAL variables belong to no job, JOB variables to exactly one; names are usable in {{var.NAME}}.
ALTER TABLE "variables"
    ADD CONSTRAINT "variables_scope_check" CHECK (
        ("scope" = 'GLOBAL' AND "job_id" IS NULL) OR ("scope" = 'JOB' AND "job_id" IS NOT NULL)
    ),
    ADD CONSTRAINT "variables_name_check" CHECK ("name" ~ '^[A-Za-z_][A-Za-z0-9_.]*$');

ALTER TABLE "webhooks"
    ADD CONSTRAINT "webhooks_rate_limit_check" CHECK ("rate_limit_per_minute" >= 1);

ALTER TABLE "job_stats"
    ADD CONSTRAINT "job_stats_counts_check" CHECK (
        "total_executions" >= 0
        AND "successful_executions" >= 0
        AND "failed_executions" >= 0
        AND "total_duration_ms" >= 0
        AND "consecutive_failures" >= 0
        AND "successful_executions" + "failed_executions" <= "total_executions"
    );

ALTER TABLE "users"
    ADD CONSTRAINT "users_email_check" CHECK (position('@' in "email") > 1);

-- Partial unique index --------------------------------------------------------------------------

-- JOB variables are unique per job by variables_job_id_name_key; GLOBAL ones (job_id NULL, which a
-- plain unique index never compares) per owner by this index.
CREATE UNIQUE INDEX "variables_global_name_key" ON "variables"("owner_id", "name") WHERE "scope" = 'GLOBAL';

-- Views (the `view` blocks of schema.prisma; columns and types must match them) -----------------

-- Only runs that executed count: QUEUED/RUNNING rows and skipped or deduplicated ledger slots do
-- not. The LATERAL aggregate is computed per job row, so a filtered or paginated read of the view
-- touches only the runs of the jobs it returns (job_runs_job_id_idx).
CREATE VIEW "job_summary" AS
SELECT
    j."id",
    j."name",
    j."type",
    j."status",
    j."priority",
    j."owner_id",
    u."email" AS "owner_email",
    s."schedule_type",
    s."run_at",
    s."cron_expression",
    s."next_fire_at",
    r."total_runs",
    r."last_run_time",
    r."avg_duration_ms"
FROM "jobs" j
LEFT JOIN "users" u ON u."id" = j."owner_id"
LEFT JOIN "job_schedules" s ON s."job_id" = j."id"
LEFT JOIN LATERAL (
    SELECT
        COUNT(*)::BIGINT AS "total_runs",
        MAX(x."end_time")::TIMESTAMPTZ(3) AS "last_run_time",
        AVG(x."duration_ms")::DOUBLE PRECISION AS "avg_duration_ms"
    FROM "job_runs" x
    WHERE x."job_id" = j."id"
      AND x."status" IN ('SUCCESS', 'FAILURE', 'TIMEOUT', 'CANCELLED')
) r ON TRUE;

-- Finished runs per UTC day of their slot, job type and outcome.
CREATE VIEW "execution_stats" AS
SELECT
    (r."scheduled_time" AT TIME ZONE 'UTC')::DATE AS "execution_date",
    j."type" AS "job_type",
    r."status" AS "outcome",
    COUNT(*)::BIGINT AS "execution_count",
    AVG(r."duration_ms")::DOUBLE PRECISION AS "avg_duration_ms",
    MIN(r."duration_ms") AS "min_duration_ms",
    MAX(r."duration_ms") AS "max_duration_ms"
FROM "job_runs" r
JOIN "jobs" j ON j."id" = r."job_id"
WHERE r."end_time" IS NOT NULL
GROUP BY 1, 2, 3;

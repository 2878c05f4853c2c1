// Response shapes of runs, run logs and DLQ entries, with the Prisma `select` that reads exactly
// those columns: a row read with the select is the response (Dates serialize as ISO-8601 UTC).
import { DlqStatus, LogLevel, RunStatus, TriggerSource, type Prisma } from '@chronos/db';
import type { RunContext } from '@chronos/engine';
import { z } from 'zod';
import { timestamp } from '../http/schemas.ts';

export const runSchema = z
  .object({
    id: z.string(),
    jobId: z.string(),
    idempotencyKey: z.string().describe('The slot key (also the BullMQ job id of attempt 1)'),
    attempt: z.number().int(),
    status: z.enum(RunStatus),
    trigger: z.enum(TriggerSource),
    scheduledTime: timestamp.describe('The nominal slot time'),
    dueAt: timestamp.nullable().describe('When it was due to start (slot + jitter, or retry backoff)'),
    enqueuedAt: timestamp.nullable(),
    startTime: timestamp.nullable(),
    endTime: timestamp.nullable(),
    durationMs: z.number().int().nullable(),
    exitCode: z.number().int().nullable(),
    errorMessage: z.string().nullable(),
    errorCode: z.string().nullable().describe('Classified failure: TIMEOUT, NETWORK, HTTP_5XX, …'),
    reason: z.string().nullable().describe('Why it was skipped, deduplicated or cancelled'),
    workerId: z.string().nullable(),
    definitionVersion: z.number().int().nullable(),
    output: z
      .unknown()
      .describe('Output summary (secrets masked); the full context is at /runs/{id}/context'),
    retryOfId: z.string().nullable().describe('The failed run this attempt retries'),
    dlqEventId: z.string().nullable().describe('The DLQ entry this run replays'),
    createdAt: timestamp,
    updatedAt: timestamp,
  })
  .meta({ id: 'Run' });

/** The public columns of a run: never the fencing token, nor the raw trigger input. */
export const runSelect = {
  id: true,
  jobId: true,
  idempotencyKey: true,
  attempt: true,
  status: true,
  trigger: true,
  scheduledTime: true,
  dueAt: true,
  enqueuedAt: true,
  startTime: true,
  endTime: true,
  durationMs: true,
  exitCode: true,
  errorMessage: true,
  errorCode: true,
  reason: true,
  workerId: true,
  definitionVersion: true,
  output: true,
  retryOfId: true,
  dlqEventId: true,
  createdAt: true,
  updatedAt: true,
} satisfies Record<keyof z.output<typeof runSchema>, true> & Prisma.JobRunSelect;

export type RunRow = Prisma.JobRunGetPayload<{ select: typeof runSelect }>;

/** Statuses after which a run changes no more (everything but QUEUED and RUNNING). */
export function isFinished(status: RunStatus): boolean {
  return status !== 'QUEUED' && status !== 'RUNNING';
}

export const runLogSchema = z
  .object({
    id: z.number().int().describe('Increasing within a run: the order of the lines, and the SSE event id'),
    timestamp,
    level: z.enum(LogLevel),
    message: z.string(),
    context: z.unknown().describe('Structured context of the line, if any'),
  })
  .meta({ id: 'RunLogLine' });

/** Severities in increasing order. */
const LEVELS = Object.values(LogLevel);

/** `level` filters are a minimum: WARN means WARN and ERROR. */
export function levelsFrom(min: LogLevel | undefined): LogLevel[] | undefined {
  return min ? LEVELS.slice(LEVELS.indexOf(min)) : undefined;
}

export const runLogSelect = {
  id: true,
  timestamp: true,
  level: true,
  message: true,
  context: true,
} satisfies Prisma.JobRunLogSelect;

type RunLogRow = Prisma.JobRunLogGetPayload<{ select: typeof runLogSelect }>;

/** A log line as the API answers it (`runLogSchema`; not the engine's RunLogLine, which is a stored line). */
export type RunLogLineOut = Omit<RunLogRow, 'id'> & { id: number };

/** Log ids are BIGINT (JSON has no such thing); a run's lines stay far below 2^53. */
export function toRunLogLine(row: RunLogRow): RunLogLineOut {
  return { ...row, id: Number(row.id) };
}

export const dlqEventSchema = z
  .object({
    id: z.string(),
    jobId: z.string(),
    jobName: z.string(),
    runId: z.string().nullable().describe('The run whose last failure was dead-lettered'),
    failureReason: z.string(),
    status: z.enum(DlqStatus),
    replayCount: z.number().int(),
    createdAt: timestamp,
    resolvedAt: timestamp.nullable(),
    resolutionNotes: z.string().nullable(),
    resolvedBy: z.string().nullable().describe('E-mail of who resolved or ignored it'),
  })
  .meta({ id: 'DlqEvent' });

export const dlqEventSelect = {
  id: true,
  jobId: true,
  runId: true,
  failureReason: true,
  status: true,
  replayCount: true,
  createdAt: true,
  resolvedAt: true,
  resolutionNotes: true,
  resolvedBy: true,
  job: { select: { name: true } },
} satisfies Prisma.DlqEventSelect;

export type DlqEventRow = Prisma.DlqEventGetPayload<{ select: typeof dlqEventSelect }>;

/** A DLQ entry as the API answers it (`dlqEventSchema`). */
export type DlqEventOut = Omit<DlqEventRow, 'job'> & { jobName: string };

export function toDlqEvent({ job, ...row }: DlqEventRow): DlqEventOut {
  return { ...row, jobName: job.name };
}

export const runContextSchema = z
  .object({
    runId: z.string(),
    jobId: z.string(),
    attempt: z.number().int(),
    definitionVersion: z.number().int().nullable(),
    trigger: z.enum(TriggerSource),
    inputs: z.record(z.string(), z.unknown()).describe('The resolved payload, secrets masked'),
    output: z.unknown(),
    status: z.enum(RunStatus),
    error: z.object({ message: z.string(), code: z.string().nullable() }).nullable(),
    startedAt: timestamp.nullable(),
    endedAt: timestamp.nullable(),
  })
  .meta({ id: 'RunContext' });

// The documented shape and the engine's document type must not drift apart.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const contextMatchesEngine: Same<z.output<typeof runContextSchema>, RunContext> = true;
void contextMatchesEngine;

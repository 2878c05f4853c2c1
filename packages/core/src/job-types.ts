/** Every job type Chronos knows; the order is the one the schema declares. */
export const JOB_TYPES = [
  'HTTP',
  'DATABASE',
  'FILE_SYSTEM',
  'MESSAGE_QUEUE',
  'CACHE',
  'EMAIL',
  'REPORT',
  'SCRIPT',
  'DUMMY',
  'DB_TO_KAFKA',
] as const;

export type JobTypeName = (typeof JOB_TYPES)[number];

export function isJobType(value: string): value is JobTypeName {
  return (JOB_TYPES as readonly string[]).includes(value);
}

/**
 * The job types this version can run: each has a payload schema (packages/core payloads) and an
 * executor (the worker's registry), and both are typed against this list, so adding a type here
 * without them fails the build. The others (MESSAGE_QUEUE, EMAIL, REPORT, DB_TO_KAFKA) exist in
 * the schema only: a definition of one is refused, no worker serves them and no queue is made
 * for them. The one list config (WORKER_TYPES=all), the worker, the scheduler and the API use.
 */
export const RUNNABLE_JOB_TYPES = [
  'HTTP',
  'DATABASE',
  'FILE_SYSTEM',
  'CACHE',
  'SCRIPT',
  'DUMMY',
] as const satisfies readonly JobTypeName[];

export type RunnableJobType = (typeof RUNNABLE_JOB_TYPES)[number];

export function isRunnableJobType(value: string): value is RunnableJobType {
  return (RUNNABLE_JOB_TYPES as readonly string[]).includes(value);
}

/**
 * The BullMQ queue of a job type (one queue per type, so each type's workers scale on their own):
 * `HTTP` → `chronos-http`, `DB_TO_KAFKA` → `chronos-db-to-kafka`.
 */
export function queueName(type: JobTypeName): string {
  return `chronos-${type.toLowerCase().replaceAll('_', '-')}`;
}

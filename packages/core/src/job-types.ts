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
 * The BullMQ queue of a job type (one queue per type, so each type's workers scale on their own):
 * `HTTP` → `chronos-http`, `DB_TO_KAFKA` → `chronos-db-to-kafka`.
 */
export function queueName(type: JobTypeName): string {
  return `chronos-${type.toLowerCase().replaceAll('_', '-')}`;
}

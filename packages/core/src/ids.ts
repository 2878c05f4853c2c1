import { monotonicFactory } from 'ulid';

const nextUlid = monotonicFactory();

/** A new ULID (time-ordered, 26 characters), the id of jobs, runs, users, DLQ and audit rows. */
export function newId(now: number = Date.now()): string {
  return nextUlid(now);
}

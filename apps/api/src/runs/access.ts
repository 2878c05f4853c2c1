// Object-level authorization of runs, logs and DLQ entries: they belong to whoever owns their job.
// A lookup that misses (absent, or another owner's) throws NotFoundError, so both answer 404.
import { NotFoundError } from '@chronos/core';
import type { Db } from '@chronos/db';
import type { Principal } from '../auth/principal.ts';
import { dlqEventSelect, runSelect, type RunRow } from './schemas.ts';

/** The `where` part for rows reached through their job: nothing for ADMIN, else the caller's jobs. */
export function throughOwnedJob(p: Principal): { job?: { ownerId: string } } {
  return p.isAdmin ? {} : { job: { ownerId: p.userId } };
}

/** A run the caller may see, with its public columns. */
export async function findOwnedRun(db: Db, p: Principal, runId: string): Promise<RunRow> {
  const run = await db.jobRun.findFirst({ where: { id: runId, ...throughOwnedJob(p) }, select: runSelect });
  if (!run) throw new NotFoundError('run', runId);
  return run;
}

/** A DLQ entry the caller may see. */
export async function findOwnedDlqEvent(db: Db, p: Principal, id: string) {
  const ev = await db.dlqEvent.findFirst({ where: { id, ...throughOwnedJob(p) }, select: dlqEventSelect });
  if (!ev) throw new NotFoundError('DLQ event', id);
  return ev;
}

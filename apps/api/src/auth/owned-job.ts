// The one object-level check of jobs: a job the caller may see. Another owner's job is "not
// found", exactly like one that does not exist (404 either way).
import { NotFoundError } from '@chronos/core';
import type { Db, Prisma } from '@chronos/db';
import { ownedBy, type Principal } from './principal.ts';

/** What of the job to read: a Prisma `select`, or an `include` of relations. */
type JobShape = { select: Prisma.JobSelect } | { include: Prisma.JobInclude };

/** The caller's job `id`, read as `shape` says (only the columns a route needs). */
export async function findOwnedJob<S extends JobShape>(
  db: Db,
  principal: Principal,
  id: string,
  shape: S,
): Promise<Prisma.JobGetPayload<S>> {
  const args: Prisma.JobFindFirstArgs = { where: { id, ...ownedBy(principal) }, ...shape };
  const job = await db.job.findFirst(args);
  if (!job) throw new NotFoundError('job', id);
  return job as Prisma.JobGetPayload<S>;
}

/** Only that the caller may see the job (actions that need nothing else of it). */
export const JOB_ID = { select: { id: true } } as const;

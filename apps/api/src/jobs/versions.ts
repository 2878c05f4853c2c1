// Every version of a job's definition as a document in object storage
// (`jobs/<id>/definitions/v<N>.json`): the Job document of that version, secrets masked.
import { JOB_DEFINITION_INCLUDE } from '@chronos/engine';
import { definitionVersionOf, jobDefinitionKey, jobDefinitionsPrefix, jobPrefix } from '@chronos/storage';
import type { ApiDeps } from '../deps.ts';
import { toJobDto } from './definition.ts';
import type { JobDto } from './schemas.ts';

/**
 * Stores the document of `job.version`. Called after the change committed: a storage failure is
 * logged, not answered (the change stands); the current version's document is written again the
 * next time it is read (`readVersion`).
 */
export async function saveVersion(deps: ApiDeps, job: JobDto): Promise<void> {
  try {
    await deps.storage.putJson(jobDefinitionKey(job.id, job.version), job);
  } catch (err) {
    deps.log.error(
      { err, jobId: job.id, version: job.version },
      'storing the job definition document failed',
    );
  }
}

/** Version numbers with a stored document, newest first (S3 lists `v10` before `v2`: sort by number). */
export async function storedVersions(deps: ApiDeps, jobId: string): Promise<number[]> {
  const keys = await deps.storage.list(jobDefinitionsPrefix(jobId));
  return keys
    .map(definitionVersionOf)
    .filter((v): v is number => v !== undefined)
    .sort((a, b) => b - a);
}

/**
 * The document of version `n`, or null. The current version is rebuilt from the database (and
 * stored) when its document is missing, e.g. because storage was down when it was saved.
 */
export async function readVersion(
  deps: ApiDeps,
  jobId: string,
  n: number,
  currentVersion: number,
): Promise<JobDto | null> {
  const doc = await deps.storage.getJson<JobDto>(jobDefinitionKey(jobId, n));
  if (doc || n !== currentVersion) return doc;
  const job = await deps.db.job.findUnique({ where: { id: jobId }, include: JOB_DEFINITION_INCLUDE });
  if (!job || job.version !== n) return null;
  const dto = toJobDto(job);
  await saveVersion(deps, dto);
  return dto;
}

/**
 * Removes a deleted job's documents. Deleting a job removes its history with it (its runs and
 * variables go with the row too); the audit trail keeps who deleted which version.
 */
export async function removeVersions(deps: ApiDeps, jobId: string): Promise<void> {
  try {
    await deps.storage.remove(jobPrefix(jobId));
  } catch (err) {
    deps.log.error({ err, jobId }, 'removing the deleted job’s documents failed');
  }
}

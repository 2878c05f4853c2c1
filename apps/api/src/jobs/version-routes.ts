// GET /jobs/{id}/versions[/{n}]: the stored documents of a job's definition versions.
import { NotFoundError } from '@chronos/core';
import { jobDefinitionKey } from '@chronos/storage';
import { z } from 'zod';
import type { ApiDeps } from '../deps.ts';
import { pageOf, pageQuery, paginate, type PageArgs } from '../http/pagination.ts';
import type { ApiRouter } from '../http/route.ts';
import { idParams } from '../http/schemas.ts';
import { findOwnedJob } from '../auth/owned-job.ts';
import { jobSchema } from './schemas.ts';
import { readVersion, storedVersions } from './versions.ts';

const versionItem = z
  .object({
    version: z.int(),
    key: z.string().describe('Object key in the definitions bucket'),
    current: z.boolean(),
  })
  .meta({ id: 'JobVersion' });

export function registerJobVersionRoutes(api: ApiRouter, deps: ApiDeps): void {
  api.add({
    method: 'get',
    path: '/jobs/:id/versions',
    tag: 'jobs',
    summary: 'A job’s definition versions, newest first',
    description:
      'One per creation and change, each a full Job document in object storage (`jobs/<id>/definitions/v<N>.json`).',
    permission: 'job:read',
    params: idParams,
    query: pageQuery,
    responses: { 200: { description: 'A page of versions', schema: pageOf(versionItem) } },
    handler: async ({ params, query, principal }) => {
      const job = await findOwnedJob(deps.db, principal, params.id, {
        select: { id: true, version: true },
      });
      // The current version is readable even when storing its document failed (readVersion rebuilds it).
      const versions = [...new Set([job.version, ...(await storedVersions(deps, job.id))])].sort(
        (a, b) => b - a,
      );
      return paginate(
        query,
        async ({ take, cursor }: PageArgs<number>) =>
          versions
            .filter((v) => cursor === undefined || v < cursor.id)
            .slice(0, take)
            .map((v) => ({ id: v })),
        ({ id: version }) => ({
          version,
          key: jobDefinitionKey(job.id, version),
          current: version === job.version,
        }),
        'int',
      );
    },
  });

  api.add({
    method: 'get',
    path: '/jobs/:id/versions/:n',
    tag: 'jobs',
    summary: 'One version of a job’s definition',
    description: 'The Job document as it was at that version (secrets masked).',
    permission: 'job:read',
    params: idParams.extend({ n: z.coerce.number().int().min(1).max(1_000_000_000) }),
    responses: { 200: { description: 'The document', schema: jobSchema } },
    handler: async ({ params, principal }) => {
      const job = await findOwnedJob(deps.db, principal, params.id, {
        select: { id: true, version: true },
      });
      const doc = await readVersion(deps, job.id, params.n, job.version);
      if (!doc) throw new NotFoundError('job version', `${job.id} v${params.n}`);
      return doc;
    },
  });
}

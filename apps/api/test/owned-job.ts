// A job created straight through the engine (not the jobs API), for tests of the areas that hang
// off a job: variables, webhooks.
import { newId } from '@chronos/core';
import { createJob } from '@chronos/engine';
import type { TestApi } from './harness.ts';

/** A DUMMY job of `ownerId` that runs once, a year from now (nothing fires during the test). */
export async function ownedJob(t: TestApi, ownerId: string): Promise<string> {
  const { id } = await createJob(t.deps.engine, {
    ownerId,
    name: `job-${newId()}`,
    type: 'DUMMY',
    schedule: { type: 'ONCE', runAt: new Date(Date.now() + 365 * 24 * 3600_000) },
  });
  return id;
}

// Test data for the run and DLQ suites: runs / log lines / DLQ entries written straight to Postgres
// (the worker is not part of these tests); jobs come from `ownedJob` (through the engine).
import { newId } from '@chronos/core';
import type { Prisma } from '@chronos/db';
import { expect } from 'vitest';
import type { TestApi } from './harness.ts';

type RunFields = Partial<Omit<Prisma.JobRunUncheckedCreateInput, 'jobId'>>;

/** One run row of `jobId` (QUEUED, scheduled now, unless told otherwise). */
export async function makeRun(t: TestApi, jobId: string, fields: RunFields = {}) {
  const scheduledTime = new Date();
  return t.db.jobRun.create({
    data: {
      id: newId(),
      jobId,
      idempotencyKey: `${jobId}-${newId()}`,
      scheduledTime,
      dueAt: scheduledTime,
      ...fields,
    },
  });
}

/** Appends log lines to a run; returns their ids in order. */
export async function addLogs(
  t: TestApi,
  runId: string,
  lines: { level?: 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR'; message: string }[],
): Promise<number[]> {
  const rows = await t.db.jobRunLog.createManyAndReturn({
    data: lines.map((l) => ({ runId, level: l.level ?? 'INFO', message: l.message })),
    select: { id: true },
  });
  return rows.map((r) => Number(r.id)).sort((a, b) => a - b);
}

/** A failed run of `jobId` and its DLQ entry. */
export async function makeDlqEvent(
  t: TestApi,
  jobId: string,
  fields: Partial<Omit<Prisma.DlqEventUncheckedCreateInput, 'jobId'>> = {},
) {
  const run = await makeRun(t, jobId, { status: 'FAILURE', errorMessage: 'boom', endTime: new Date() });
  return t.db.dlqEvent.create({
    data: { id: newId(), jobId, runId: run.id, failureReason: 'boom: upstream said 503', ...fields },
  });
}

/** A user whose only role grants no permission at all (for 403 on read endpoints). */
export async function userWithoutPermissions(t: TestApi) {
  await t.db.role.upsert({
    where: { name: 'NOTHING' },
    create: { name: 'NOTHING', description: 'grants nothing', permissions: [] },
    update: {},
  });
  return t.user(['NOTHING']);
}

/** Tokens for `expectRefusals`. */
export interface RefusalTokens {
  /** Owns the object: an unknown id in its place must answer 404. */
  owner: string;
  /** Another non-admin owner: must get 404, not the object and not 403. */
  other: string;
  /** A role without the route's permission: 403. */
  forbidden: string;
}

/**
 * The refusals every run / DLQ route owes on the object `id` in `path`: 401 without a token, 403 for a
 * role without the permission, 404 problems for another owner and for an unknown id.
 */
export async function expectRefusals(
  t: TestApi,
  method: string,
  path: string,
  id: string,
  tokens: RefusalTokens,
  body?: unknown,
): Promise<void> {
  expect((await t.call(method, path, { body })).status).toBe(401);
  expect((await t.call(method, path, { token: tokens.forbidden, body })).status).toBe(403);
  const other = await t.call(method, path, { token: tokens.other, body });
  expect(other.status).toBe(404);
  expect(other.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const unknown = path.replace(id, newId());
  expect((await t.call(method, unknown, { token: tokens.owner, body })).status).toBe(404);
}

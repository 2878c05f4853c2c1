// SCRIPT jobs for fault tests run by real worker processes (fleet.start('worker')): owners with a
// built-in role, jobs that only run when triggered, runs triggered at once, what a run logged, and
// the processes of a run — found by the CHRONOS_RUN_ID in their environment (root reads every one).
import { readdir, readFile } from 'node:fs/promises';
import { BUILTIN_ROLES, newId } from '@chronos/core';
import { createJob, triggerRun, type EngineDeps } from '@chronos/engine';
import { closeQueues, createQueues } from '@chronos/queue';
import type { Fleet } from './fleet.ts';

async function withDeps<T>(fleet: Fleet, fn: (deps: EngineDeps) => Promise<T>): Promise<T> {
  const queues = createQueues({ connection: fleet.redis, prefix: fleet.prefix, types: ['SCRIPT'] });
  try {
    return await fn({ db: fleet.tdb.db, queues, redis: fleet.redis, prefix: fleet.prefix });
  } finally {
    await closeQueues(queues);
  }
}

/** A user holding one built-in role (created as the API seeds it, when missing). */
export async function ownerWithRole(fleet: Fleet, roleName: 'USER' | 'ADMIN'): Promise<string> {
  const builtin = BUILTIN_ROLES.find((r) => r.name === roleName);
  if (!builtin) throw new Error(`no built-in role ${roleName}`);
  const role = await fleet.tdb.db.role.upsert({
    where: { name: roleName },
    create: { name: roleName, permissions: [...builtin.permissions], isBuiltin: true },
    update: {},
  });
  const id = newId();
  await fleet.tdb.db.user.create({
    data: {
      id,
      email: `${roleName.toLowerCase()}-${id.toLowerCase()}@example.test`,
      passwordHash: 'x',
      roles: { create: { roleId: role.id } },
    },
  });
  return id;
}

/** A SCRIPT job of `ownerId` whose only slot is an hour away: it runs when triggered. */
export function scriptJob(
  fleet: Fleet,
  ownerId: string,
  name: string,
  scriptContent: string,
  scriptEnv: Record<string, string> = {},
): Promise<string> {
  return withDeps(fleet, async (deps) => {
    const { id } = await createJob(deps, {
      ownerId,
      name,
      type: 'SCRIPT',
      schedule: { type: 'ONCE', runAt: new Date(Date.now() + 3_600_000) },
      payload: { scriptContent, scriptEnv },
    });
    return id;
  });
}

/** Queues a MANUAL run of `jobId` now; returns its run id. */
export function triggerNow(fleet: Fleet, jobId: string): Promise<string> {
  return withDeps(fleet, async (deps) => (await triggerRun(deps, { jobId, trigger: 'MANUAL' })).runId);
}

/** The job's attempts in order: [attempt, status, worker, error code]. */
export async function attemptsOf(
  fleet: Fleet,
  jobId: string,
): Promise<[number, string, string | null, string | null][]> {
  const rows = await fleet.tdb.db.jobRun.findMany({ where: { jobId }, orderBy: { attempt: 'asc' } });
  return rows.map((r) => [r.attempt, r.status, r.workerId, r.errorCode]);
}

/** Everything a run logged, in order. */
export async function runLog(fleet: Fleet, runId: string): Promise<string[]> {
  const lines = await fleet.tdb.db.jobRunLog.findMany({ where: { runId }, orderBy: { id: 'asc' } });
  return lines.map((l) => l.message);
}

/** Live processes (zombies excluded) whose environment holds CHRONOS_RUN_ID=<runId>. */
export async function processesOfRun(runId: string): Promise<number[]> {
  const marker = `\0CHRONOS_RUN_ID=${runId}\0`;
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'latin1');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      if (`\0${await readFile(`/proc/${entry}/environ`, 'latin1')}`.includes(marker))
        found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '@chronos/config';
import type { JobTypeName, RunnableJobType } from '@chronos/core';
import {
  createCacheExecutor,
  createDatabaseExecutor,
  createFileSystemExecutor,
  createScriptExecutor,
  parseVisiblePath,
  runDummy,
  runHttp,
} from '@chronos/executors';
import type { ExecutorFn } from './run-processor.ts';

/** The executors of a worker process, built once from its configuration. */
export interface ExecutorRegistry {
  executorFor(type: JobTypeName): ExecutorFn | undefined;
  /** Closes what the executors hold (pooled connections). */
  close(): Promise<void>;
  /** Why this worker would refuse every run of a type it serves whatever the job, by type. */
  problems(types: readonly JobTypeName[]): Promise<Partial<Record<JobTypeName, string>>>;
}

/** The worker's code (the repository or image root this file runs from). */
const APP_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/**
 * What a sandboxed script must never see even where a visible path holds it: the data folder, the
 * worker's folder and code (where its configuration lives), FILE_SYSTEM jobs' root (other owners'
 * files), and SCRIPT_HIDDEN_PATHS.
 */
function scriptHiddenPaths(config: Config): string[] {
  return [
    resolve(config.dataDir),
    process.cwd(),
    APP_ROOT,
    ...(config.worker.fileJobsRoot ? [resolve(config.worker.fileJobsRoot)] : []),
    ...config.worker.scriptHiddenPaths,
  ];
}

/**
 * One executor per job type this version runs (`RUNNABLE_JOB_TYPES`): the map's type makes a
 * forgotten wiring a compile error. Config refuses to serve any other type; a run of one that still
 * reaches a worker fails with "no executor for … jobs".
 */
export function createExecutorRegistry(config: Config): ExecutorRegistry {
  // Guarded SQL (COPY … PROGRAM, server files, CALL, …) and superuser accounts are refused unless
  // configured: see README "DATABASE". CACHE's WARM from a database reads through it too.
  const database = createDatabaseExecutor({
    allowedSql: config.worker.databaseAllowedSql,
    allowSuperuser: config.worker.databaseAllowSuperuser,
  });
  const cache = createCacheExecutor({
    databaseExecutor: database,
    defaultUrl: config.worker.cacheRedisUrl ?? config.redis.url,
    // The queues live under REDIS_PREFIX: no cache region may reach into them.
    forbiddenPrefixes: [`${config.redis.prefix}:`],
  });
  const script = createScriptExecutor({
    enabled: config.worker.scriptEnabled,
    runAs: config.worker.scriptRunAs ?? null,
    isolation: config.worker.scriptIsolation,
    visiblePaths: config.worker.scriptVisiblePaths.map(parseVisiblePath),
    hiddenPaths: scriptHiddenPaths(config),
  });
  const map: Record<RunnableJobType, ExecutorFn> = {
    HTTP: runHttp as ExecutorFn,
    DUMMY: runDummy as ExecutorFn,
    CACHE: cache as ExecutorFn,
    DATABASE: database as ExecutorFn,
    // Every path stays inside FILE_JOBS_ROOT; without one, FILE_SYSTEM runs fail saying so.
    FILE_SYSTEM: createFileSystemExecutor({ root: config.worker.fileJobsRoot }) as ExecutorFn,
    // An unprivileged user in namespaces of its own: see README "What SCRIPT isolation is".
    SCRIPT: script as ExecutorFn,
  };
  return {
    executorFor: (type) => (type in map ? map[type as RunnableJobType] : undefined),
    async problems(types) {
      const problem = types.includes('SCRIPT') ? await script.preflight() : null;
      return problem ? { SCRIPT: problem } : {};
    },
    async close() {
      await cache.close();
    },
  };
}

import type { Config } from '@chronos/config';
import type { JobTypeName } from '@chronos/core';
import {
  createCacheExecutor,
  createDatabaseExecutor,
  createFileSystemExecutor,
  createScriptExecutor,
  runDummy,
  runHttp,
} from '@chronos/executors';
import type { ExecutorFn } from './run-processor.ts';

/** The executors of a worker process, built once from its configuration. */
export interface ExecutorRegistry {
  executorFor(type: JobTypeName): ExecutorFn | undefined;
  /** Closes what the executors hold (pooled connections). */
  close(): Promise<void>;
}

/**
 * One executor per job type this version implements; a type without one fails its runs with
 * "no executor for … jobs". The map's type makes a forgotten wiring visible in review.
 */
export function createExecutorRegistry(config: Config): ExecutorRegistry {
  const cache = createCacheExecutor({
    defaultUrl: config.worker.cacheRedisUrl ?? config.redis.url,
    // The queues live under REDIS_PREFIX: no cache region may reach into them.
    forbiddenPrefixes: [`${config.redis.prefix}:`],
  });
  const map: Partial<Record<JobTypeName, ExecutorFn>> = {
    HTTP: runHttp as ExecutorFn,
    DUMMY: runDummy as ExecutorFn,
    CACHE: cache as ExecutorFn,
    // Guarded SQL (COPY … PROGRAM, server files, CALL, …) and superuser accounts are refused unless
    // configured: see README "DATABASE".
    DATABASE: createDatabaseExecutor({
      allowedSql: config.worker.databaseAllowedSql,
      allowSuperuser: config.worker.databaseAllowSuperuser,
    }) as ExecutorFn,
    // Every path stays inside FILE_JOBS_ROOT; without one, FILE_SYSTEM runs fail saying so.
    FILE_SYSTEM: createFileSystemExecutor({ root: config.worker.fileJobsRoot }) as ExecutorFn,
    // A process with limits, not a container: see README "SCRIPT isolation".
    SCRIPT: createScriptExecutor({
      enabled: config.worker.scriptEnabled,
      runAs: config.worker.scriptRunAs ?? null,
    }) as ExecutorFn,
  };
  return {
    executorFor: (type) => map[type],
    async close() {
      await cache.close();
    },
  };
}

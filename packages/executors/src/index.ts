import type { DummyPayloadInput, HttpPayloadInput } from '@chronos/core';
import { runDummy } from './dummy.ts';
import { runHttp } from './http.ts';
import type { Executor } from './types.ts';

export type { ExecContext, ExecLogger, ExecResult, Executor, OutboundPolicy } from './types.ts';
export {
  CircuitBreakers,
  type CircuitBreakersOptions,
  type CircuitPermit,
  type CircuitSnapshot,
  type CircuitState,
} from './circuit-breakers.ts';
export {
  CircuitOpenError,
  EXEC_ERROR_CODES,
  OutboundRefusedError,
  PermanentHttpError,
  RetryableHttpError,
  type ExecErrorCode,
  type HttpErrorDetails,
  type HttpErrorResponse,
} from './errors.ts';
export { abortableSleep, runDummy } from './dummy.ts';
export { createHttpExecutor, runHttp, type HttpExecutorOptions, type HttpOutput } from './http.ts';
export { OAuth2TokenCache, type OAuth2TokenCacheOptions } from './oauth2.ts';
export { CompiledOutboundPolicy, compileOutboundPolicy, type LookupFunction } from './outbound-guard.ts';
export { classifyIp, parseIp, parseCidr, type AddressClass, type Classification } from './ip-address.ts';

/** The executors of this version, by job type. */
export const executors: { HTTP: Executor<HttpPayloadInput>; DUMMY: Executor<DummyPayloadInput> } = {
  HTTP: runHttp,
  DUMMY: runDummy,
};

export * from './cache.ts';
export {
  createDatabaseExecutor,
  redactDatabaseUrl,
  type DatabaseOutput,
  type DatabaseField,
} from './database.ts';
export {
  createFileSystemExecutor,
  FILE_SYSTEM_ERROR_CODES,
  type FileSystemExecutorOptions,
  type FileSystemOutput,
} from './file-system.ts';
export {
  createScriptExecutor,
  runScript,
  DEFAULT_SCRIPT_LIMITS,
  DEFAULT_SCRIPT_USER,
  SCRIPT_ERROR_CODES,
  SCRIPT_ISOLATIONS,
  parseVisiblePath,
  type ScriptExecutorOptions,
  type ScriptIsolation,
  type ScriptExecutor,
  type ScriptOutput,
  type ScriptVisiblePath,
} from './script.ts';

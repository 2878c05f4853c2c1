import { PermanentJobError, RetryableJobError } from '@chronos/core';

/** The codes SCRIPT runs fail with, besides INVALID_PAYLOAD and the abort's own reason. */
export const SCRIPT_ERROR_CODES = [
  'SCRIPT_DISABLED',
  'INTERPRETER_MISSING',
  'PRLIMIT_MISSING',
  'RUN_AS_FAILED',
  'ISOLATION_UNAVAILABLE',
  'SPAWN_FAILED',
  'EXIT_CODE',
  'CPU_LIMIT',
  'FILE_SIZE_LIMIT',
  'OUTPUT_LIMIT',
  'KILLED',
] as const;
export type ScriptErrorCode = (typeof SCRIPT_ERROR_CODES)[number];

/**
 * The script exited with a non-zero code; `exitCode` is what retry_on's `EXIT_CODE:n` matches.
 * `stderrTail` holds the end of its stderr.
 */
export class ScriptExitError extends RetryableJobError {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly stderrTail: string,
  ) {
    super(message, 'EXIT_CODE');
  }
}

/** The script hit one of its limits (CPU_LIMIT, FILE_SIZE_LIMIT, OUTPUT_LIMIT): retrying hits it again. */
export class ScriptLimitError extends PermanentJobError {
  constructor(
    message: string,
    code: 'CPU_LIMIT' | 'FILE_SIZE_LIMIT' | 'OUTPUT_LIMIT',
    readonly signal: NodeJS.Signals | null,
    readonly stderrTail: string,
  ) {
    super(message, code);
  }
}

/** The script was killed by a signal nobody in Chronos sent (OOM killer, an operator, SIGSEGV, ...). */
export class ScriptKilledError extends RetryableJobError {
  constructor(
    message: string,
    readonly signal: NodeJS.Signals,
    readonly stderrTail: string,
  ) {
    super(message, 'KILLED');
  }
}

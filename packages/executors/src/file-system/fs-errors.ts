import { ChronosError, PermanentJobError, RetryableJobError } from '@chronos/core';

/**
 * The stable codes a FILE_SYSTEM run fails with (besides INVALID_PAYLOAD). Retryable: FILE_NOT_FOUND
 * (the file may appear later), PATH_CHANGED, NO_SPACE and FILE_IO; every other one is permanent.
 */
export const FILE_SYSTEM_ERROR_CODES = [
  'FILE_JOBS_ROOT_UNSET',
  'FILE_JOBS_ROOT_INVALID',
  'PATH_OUTSIDE_ROOT',
  'SYMLINK_LOOP',
  'INVALID_PATH',
  'INVALID_TARGET',
  'FILE_NOT_FOUND',
  'PARENT_NOT_FOUND',
  'TARGET_EXISTS',
  'NOT_A_FILE',
  'NOT_A_DIRECTORY',
  'RECURSIVE_REQUIRED',
  'TOO_MANY_ENTRIES',
  'PERMISSION_DENIED',
  'PATH_CHANGED',
  'NO_SPACE',
  'FILE_IO',
  'ARCHIVE_INVALID',
  'ARCHIVE_UNSUPPORTED',
  'ARCHIVE_UNSAFE_ENTRY',
  'ARCHIVE_TOO_LARGE',
  'PARSE_ERROR',
  'SHEET_NOT_FOUND',
  'COLUMN_NOT_FOUND',
  'CONVERSION_FAILED',
] as const;
export type FileSystemErrorCode = (typeof FILE_SYSTEM_ERROR_CODES)[number];

const RETRYABLE: ReadonlySet<FileSystemErrorCode> = new Set([
  'FILE_NOT_FOUND',
  'PATH_CHANGED',
  'NO_SPACE',
  'FILE_IO',
]);

/** A FILE_SYSTEM failure; retryable or permanent according to its code. */
export function fileError(
  code: FileSystemErrorCode,
  message: string,
  cause?: unknown,
): PermanentJobError | RetryableJobError {
  const options = cause === undefined ? undefined : { cause };
  return RETRYABLE.has(code)
    ? new RetryableJobError(message, code, options)
    : new PermanentJobError(message, code, options);
}

/** The refusal of a path that leads out of FILE_JOBS_ROOT; `detail` says how. */
export function outsideRoot(path: string, detail: string): PermanentJobError {
  return fileError(
    'PATH_OUTSIDE_ROOT',
    `path ${JSON.stringify(path)} refused, it leads outside FILE_JOBS_ROOT: ${detail}`,
  ) as PermanentJobError;
}

/** Quotes a root-relative path for messages (`.` for the root itself). */
export function quote(rel: string): string {
  return JSON.stringify(rel === '' ? '.' : rel);
}

/**
 * A Node file-system error as a Chronos failure naming the path (`rel`, relative to the root) and
 * what was being done. Chronos errors pass through unchanged.
 */
export function fromFsError(err: unknown, action: string, rel: string): Error {
  if (err instanceof ChronosError) return err;
  const code = (err as NodeJS.ErrnoException | null)?.code;
  const what = `${action} ${quote(rel)}`;
  switch (code) {
    case 'ENOENT':
      return fileError('FILE_NOT_FOUND', `${what}: no such file or directory`, err);
    case 'EEXIST':
      return fileError('TARGET_EXISTS', `${what}: it already exists`, err);
    case 'ENOTDIR':
      return fileError('NOT_A_DIRECTORY', `${what}: a component of the path is not a directory`, err);
    case 'EISDIR':
      return fileError('NOT_A_FILE', `${what}: it is a directory`, err);
    case 'ENOTEMPTY':
      return fileError('RECURSIVE_REQUIRED', `${what}: the directory is not empty`, err);
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return fileError('PERMISSION_DENIED', `${what}: permission denied (${code})`, err);
    case 'ELOOP':
      // Our paths hold no symlinks once checked: one appeared since (O_NOFOLLOW refused it).
      return fileError('PATH_CHANGED', `${what}: a symlink appeared at the path while the run used it`, err);
    case 'ENOSPC':
    case 'EDQUOT':
      return fileError('NO_SPACE', `${what}: no space left on the device`, err);
    default:
      return fileError('FILE_IO', `${what} failed: ${err instanceof Error ? err.message : String(err)}`, err);
  }
}

export function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

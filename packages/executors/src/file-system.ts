import {
  fieldIssues,
  fileSystemPayloadSchema,
  type FileOperation,
  type FileSystemPayloadInput,
} from '@chronos/core';
import { invalidPayload } from './errors.ts';
import {
  compressOperation,
  decompressOperation,
  type CompressOutput,
  type DecompressOutput,
} from './file-system/archive-operations.ts';
import {
  appendOperation,
  deleteOperation,
  listOperation,
  mkdirOperation,
  readOperation,
  writeOperation,
  type AppendOutput,
  type DeleteOutput,
  type ListOutput,
  type MkdirOutput,
  type ReadOutput,
  type WriteOutput,
} from './file-system/basic-operations.ts';
import { fromFsError } from './file-system/fs-errors.ts';
import {
  DEFAULT_LIMITS,
  type FileOperationContext,
  type FileSystemLimits,
} from './file-system/operation-context.ts';
import { processOperation, type ProcessOutput } from './file-system/process-operation.ts';
import { SafeRoot } from './file-system/safe-root.ts';
import { copyOperation, moveOperation, type TransferOutput } from './file-system/transfer-operations.ts';
import type { ExecContext, ExecResult, Executor } from './types.ts';

export { FILE_SYSTEM_ERROR_CODES, type FileSystemErrorCode } from './file-system/fs-errors.ts';
export type { FileSystemLimits } from './file-system/operation-context.ts';
export type { ReadFileOutput, ListEntry } from './file-system/basic-operations.ts';
export type { ProcessSheetOutput } from './file-system/process-operation.ts';
export type {
  AppendOutput,
  CompressOutput,
  DecompressOutput,
  DeleteOutput,
  ListOutput,
  MkdirOutput,
  ProcessOutput,
  ReadOutput,
  TransferOutput,
  WriteOutput,
};

/** The run output of a FILE_SYSTEM job, by operation (paths relative to FILE_JOBS_ROOT). */
export type FileSystemOutput =
  | ReadOutput
  | WriteOutput
  | AppendOutput
  | TransferOutput
  | DeleteOutput
  | ListOutput
  | MkdirOutput
  | CompressOutput
  | DecompressOutput
  | ProcessOutput;

export interface FileSystemExecutorOptions extends Partial<FileSystemLimits> {
  /**
   * FILE_JOBS_ROOT: the directory every path of every FILE_SYSTEM job is resolved in (its real
   * path; nothing outside it is ever read or written). Unset, every run fails with
   * FILE_JOBS_ROOT_UNSET.
   */
  root: string | null | undefined;
}

const OPERATIONS: { [O in FileOperation]: (op: FileOperationContext) => Promise<FileSystemOutput> } = {
  READ: readOperation,
  WRITE: writeOperation,
  APPEND: appendOperation,
  COPY: copyOperation,
  MOVE: moveOperation,
  DELETE: deleteOperation,
  LIST: listOperation,
  MKDIR: mkdirOperation,
  COMPRESS: compressOperation,
  DECOMPRESS: decompressOperation,
  PROCESS: processOperation,
};

/** The numbers of an output worth a log line (no contents, no long lists). */
function summary(output: FileSystemOutput): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(output)) {
    if (key === 'content' || key === 'operation') continue;
    if (Array.isArray(value)) out[key] = value.length;
    else out[key] = value;
  }
  return out;
}

/**
 * FILE_SYSTEM: READ, WRITE, APPEND, COPY, MOVE, DELETE, LIST, MKDIR, COMPRESS (zip / gzip),
 * DECOMPRESS and PROCESS (CSV/XLSX rows through transforms), every path confined to `root`.
 *
 * All paths of an operation (sources, glob matches, targets, archive entries) are checked before
 * anything is touched: absolute paths, `..` and symlinks leading out of the root fail the run with
 * PATH_OUTSIDE_ROOT. Files are written under a hidden temporary name and renamed into place, so a
 * failed or aborted run leaves no partial output. Failures carry the codes of FILE_SYSTEM_ERROR_CODES.
 */
export function createFileSystemExecutor(
  options: FileSystemExecutorOptions,
): Executor<FileSystemPayloadInput> {
  const { root, ...overrides } = options;
  const limits: FileSystemLimits = { ...DEFAULT_LIMITS };
  for (const [key, value] of Object.entries(overrides) as [keyof FileSystemLimits, number | undefined][]) {
    if (value !== undefined) limits[key] = value;
  }
  return async function runFileSystem(input: FileSystemPayloadInput, ctx: ExecContext): Promise<ExecResult> {
    const safeRoot = await SafeRoot.open(root);
    // A path leading out of the root is PATH_OUTSIDE_ROOT (naming it), not just a bad payload.
    for (const field of ['filePath', 'targetPath', 'filePattern'] as const) {
      const value = (input as Partial<Record<typeof field, unknown>> | null | undefined)?.[field];
      if (typeof value === 'string' && value !== '') SafeRoot.normalize(value);
    }
    const parsed = fileSystemPayloadSchema.safeParse(input ?? {});
    if (!parsed.success) {
      const issues = fieldIssues(parsed.error);
      throw invalidPayload(
        `invalid FILE_SYSTEM payload: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`,
      );
    }
    const payload = parsed.data;
    if (ctx.signal.aborted) throw ctx.signal.reason;
    const op: FileOperationContext = { root: safeRoot, payload, signal: ctx.signal, log: ctx.log, limits };
    let output: FileSystemOutput;
    try {
      output = await OPERATIONS[payload.fileOperation](op);
    } catch (err) {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      throw fromFsError(err, payload.fileOperation, payload.filePath);
    }
    const target = payload.targetPath ? ` -> ${payload.targetPath}` : '';
    ctx.log.info(`FILE_SYSTEM ${payload.fileOperation} ${payload.filePath}${target}`, summary(output));
    return { output };
  };
}

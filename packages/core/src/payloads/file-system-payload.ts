import { z } from 'zod';

export const FILE_OPERATIONS = [
  'READ',
  'WRITE',
  'APPEND',
  'COPY',
  'MOVE',
  'DELETE',
  'LIST',
  'MKDIR',
  'COMPRESS',
  'DECOMPRESS',
  'PROCESS',
] as const;
export type FileOperation = (typeof FILE_OPERATIONS)[number];

export const COMPRESSION_FORMATS = ['zip', 'gzip'] as const;
export type CompressionFormat = (typeof COMPRESSION_FORMATS)[number];

/** Operations that write to `targetPath`. */
const NEEDS_TARGET: ReadonlySet<FileOperation> = new Set([
  'COPY',
  'MOVE',
  'COMPRESS',
  'DECOMPRESS',
  'PROCESS',
]);

/**
 * Why `path` cannot name something inside FILE_JOBS_ROOT, or null when it is acceptable as written:
 * absolute paths (POSIX, drive letters, UNC) and `..` segments are refused. Symlinks can only be
 * judged on disk, by the executor.
 */
export function relativePathProblem(path: string): string | null {
  if (path.includes('\0')) return 'must not contain NUL characters';
  if (path.startsWith('/') || path.startsWith('\\') || /^[A-Za-z]:/.test(path)) {
    return 'must be relative to FILE_JOBS_ROOT, not an absolute path';
  }
  if (path.split(/[\\/]/).includes('..'))
    return "must not contain '..' segments (paths stay inside FILE_JOBS_ROOT)";
  return null;
}

const relativePath = (max: number) =>
  z
    .string()
    .min(1, 'is required')
    .max(max, `must be at most ${max} characters`)
    .superRefine((value, ctx) => {
      const problem = relativePathProblem(value);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    });

export const CSV_DELIMITERS = [',', ';', '\t'] as const;
export type CsvDelimiter = (typeof CSV_DELIMITERS)[number];
const delimiter = z.enum(CSV_DELIMITERS, { error: 'must be one of ",", ";" or a tab' });

const columnName = z.string().min(1, 'must not be empty').max(256);

/** Excel refuses these characters in sheet names, and names longer than 31 characters. */
const sheetName = z
  .string()
  .min(1, 'must not be empty')
  .max(31, 'must be at most 31 characters (an Excel limit)')
  .regex(/^[^[\]:*?/\\]+$/, 'must not contain [ ] : * ? / or \\');

export const fileProcessingInputSchema = z.discriminatedUnion('format', [
  z.strictObject({
    format: z.literal('csv'),
    /** Detected from the first line (the most frequent of `,` `;` tab) when absent. */
    delimiter: delimiter.optional(),
    /** The first row names the columns. @defaultValue true */
    header: z.boolean().default(true),
  }),
  z.strictObject({
    format: z.literal('xlsx'),
    /**
     * `'*'` for every sheet, a sheet name, or a 0-based index in tab order (0 is the first tab).
     * @defaultValue '*'
     */
    sheet: z
      .union([z.literal('*'), z.int().min(0, 'must be a 0-based sheet index').max(10_000), sheetName])
      .default('*'),
    /** The first row of each sheet names the columns. @defaultValue true */
    header: z.boolean().default(true),
  }),
]);

const filterValue = z.union([z.string().max(10_000), z.number(), z.boolean(), z.null()]);

export const FILTER_OPS = ['eq', 'ne', 'gt', 'gte', 'lt', 'lte', 'contains', 'empty', 'notEmpty'] as const;
export type FilterOp = (typeof FILTER_OPS)[number];

export const CONVERSION_TYPES = ['number', 'integer', 'boolean', 'date', 'string'] as const;
export type ConversionType = (typeof CONVERSION_TYPES)[number];

export const fileTransformSchema = z.discriminatedUnion('type', [
  z
    .strictObject({
      type: z.literal('mapColumns'),
      /** `{ from: to }`: renames columns; a column missing from the input fails the run. */
      mapping: z
        .record(columnName, columnName)
        .refine((m) => Object.keys(m).length > 0, 'must map at least one column'),
      /**
       * Keep the columns the mapping does not name, where they are; when false only the mapped columns
       * are kept, in the mapping's order. @defaultValue true
       */
      keepUnmapped: z.boolean().default(true),
    })
    .superRefine((t, ctx) => {
      const targets = Object.values(t.mapping);
      const dup = targets.find((name, i) => targets.indexOf(name) !== i);
      if (dup !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['mapping'], message: `maps two columns to "${dup}"` });
      }
    }),
  z.strictObject({
    type: z.literal('convert'),
    column: columnName,
    to: z.enum(CONVERSION_TYPES),
    /**
     * What a value that does not convert does: fail the run (naming the row), become empty, or drop
     * its row. Empty values always become empty. @defaultValue 'fail'
     */
    onError: z.enum(['fail', 'null', 'skipRow']).default('fail'),
  }),
  z
    .strictObject({
      type: z.literal('filter'),
      column: columnName,
      /** Rows for which the comparison holds are kept. */
      op: z.enum(FILTER_OPS),
      value: filterValue.optional(),
    })
    .superRefine((t, ctx) => {
      if (t.op === 'empty' || t.op === 'notEmpty') return;
      if (t.value === undefined) {
        ctx.addIssue({ code: 'custom', path: ['value'], message: `is required for op "${t.op}"` });
      } else if (t.op === 'contains' && typeof t.value !== 'string') {
        ctx.addIssue({ code: 'custom', path: ['value'], message: 'must be a string for op "contains"' });
      } else if (
        ['gt', 'gte', 'lt', 'lte'].includes(t.op) &&
        typeof t.value !== 'number' &&
        typeof t.value !== 'string'
      ) {
        ctx.addIssue({
          code: 'custom',
          path: ['value'],
          message: `must be a number or a string for op "${t.op}"`,
        });
      }
    }),
]);
export type FileTransform = z.infer<typeof fileTransformSchema>;

export const fileProcessingOutputSchema = z.discriminatedUnion('format', [
  z.strictObject({
    format: z.literal('csv'),
    /** @defaultValue ',' */
    delimiter: delimiter.default(','),
    /** Write a header row. @defaultValue the input's `header` */
    header: z.boolean().optional(),
  }),
  z.strictObject({
    format: z.literal('xlsx'),
    /**
     * The sheet's name when the output has one sheet (CSV input, or one selected sheet); with several
     * sheets each keeps its input name. @defaultValue the input sheet's name, or 'Sheet1'
     */
    sheetName: sheetName.optional(),
    /** Write a header row. @defaultValue the input's `header` */
    header: z.boolean().optional(),
  }),
]);

/** The `fileProcessing` column: how PROCESS reads, transforms and writes CSV/XLSX rows. */
export const fileProcessingSchema = z.strictObject({
  input: fileProcessingInputSchema,
  /** Applied in order; a column is named as the previous transforms left it. */
  transforms: z.array(fileTransformSchema).max(100, 'must hold at most 100 transforms').default([]),
  output: fileProcessingOutputSchema,
});
export type FileProcessing = z.infer<typeof fileProcessingSchema>;
export type FileProcessingInput = z.input<typeof fileProcessingSchema>;

/**
 * A FILE_SYSTEM job's payload: the `file*` columns of job_payloads plus `timeoutSeconds` and
 * `metadata`. Every path is relative to the worker's FILE_JOBS_ROOT; absolute paths and `..` are
 * refused here and again, with symlinks resolved, by the executor.
 */
export const fileSystemPayloadSchema = z
  .object({
    fileOperation: z.enum(FILE_OPERATIONS, {
      error: `must be one of ${FILE_OPERATIONS.join(', ')}`,
    }),
    /** The source: a relative path, or a glob (`in/**\/*.csv`) for the operations that take several. */
    filePath: relativePath(2048),
    /** Where COPY, MOVE, COMPRESS, DECOMPRESS and PROCESS write; never a glob. */
    targetPath: relativePath(2048).nullish(),
    /** What WRITE writes / APPEND appends (UTF-8). */
    fileContent: z
      .string()
      .max(10 * 1024 * 1024, 'must be at most 10 MiB')
      .nullish(),
    /** Create missing parent directories of the target. @defaultValue false */
    createDirectories: z.boolean().default(false),
    /** Replace existing target files; otherwise the run fails with TARGET_EXISTS. @defaultValue false */
    overwrite: z.boolean().default(false),
    /** A glob matched inside the directory `filePath` (with `recursive`, at any depth). */
    filePattern: relativePath(1024).nullish(),
    /** Descend into directories (LIST, COPY, COMPRESS, filePattern); DELETE of a non-empty directory needs it. @defaultValue false */
    recursive: z.boolean().default(false),
    /** COMPRESS: from the target's extension (`.gz` → gzip, else zip); DECOMPRESS: from the file's magic bytes. */
    compressionFormat: z.enum(COMPRESSION_FORMATS, { error: 'must be "zip" or "gzip"' }).nullish(),
    fileProcessing: fileProcessingSchema.nullish(),
    timeoutSeconds: z.int().min(1).max(86_400).nullish(),
    metadata: z.record(z.string(), z.unknown()).nullish(),
  })
  .superRefine((p, ctx) => {
    if (NEEDS_TARGET.has(p.fileOperation) && (p.targetPath === undefined || p.targetPath === null)) {
      ctx.addIssue({ code: 'custom', path: ['targetPath'], message: `is required for ${p.fileOperation}` });
    }
    if ((p.fileOperation === 'WRITE' || p.fileOperation === 'APPEND') && typeof p.fileContent !== 'string') {
      ctx.addIssue({ code: 'custom', path: ['fileContent'], message: `is required for ${p.fileOperation}` });
    }
    if (p.fileOperation === 'PROCESS' && !p.fileProcessing) {
      ctx.addIssue({ code: 'custom', path: ['fileProcessing'], message: 'is required for PROCESS' });
    }
  });
export type FileSystemPayload = z.infer<typeof fileSystemPayloadSchema>;
export type FileSystemPayloadInput = z.input<typeof fileSystemPayloadSchema>;

import { describe, expect, it } from 'vitest';
import { fileSystemPayloadSchema, relativePathProblem } from '../../src/payloads/file-system-payload.ts';

/** `path → message` of every issue, for compact assertions. */
function issues(input: unknown): Record<string, string> {
  const result = fileSystemPayloadSchema.safeParse(input);
  if (result.success) return {};
  return Object.fromEntries(result.error.issues.map((i) => [i.path.join('.'), i.message]));
}

const csvToXlsx = {
  input: { format: 'csv' },
  output: { format: 'xlsx' },
} as const;

describe('fileSystemPayloadSchema', () => {
  it('accepts a minimal payload and applies defaults', () => {
    expect(fileSystemPayloadSchema.parse({ fileOperation: 'READ', filePath: 'in/a.txt' })).toEqual({
      fileOperation: 'READ',
      filePath: 'in/a.txt',
      createDirectories: false,
      overwrite: false,
      recursive: false,
    });
  });

  it('accepts nulls as stored in job_payloads', () => {
    expect(
      issues({
        fileOperation: 'LIST',
        filePath: '.',
        targetPath: null,
        fileContent: null,
        filePattern: null,
        compressionFormat: null,
        fileProcessing: null,
        timeoutSeconds: null,
        metadata: null,
      }),
    ).toEqual({});
  });

  it('names the field at fault for a missing or unknown operation and a missing path', () => {
    expect(issues({})).toEqual({
      fileOperation: expect.stringContaining('must be one of READ, WRITE'),
      filePath: expect.any(String),
    });
    expect(issues({ fileOperation: 'CHMOD', filePath: 'x' })).toEqual({
      fileOperation: expect.stringContaining('must be one of'),
    });
    expect(issues({ fileOperation: 'READ', filePath: '' })).toEqual({ filePath: 'is required' });
  });

  it('refuses absolute paths and .. segments in every path field', () => {
    expect(issues({ fileOperation: 'READ', filePath: '/etc/passwd' })).toEqual({
      filePath: 'must be relative to FILE_JOBS_ROOT, not an absolute path',
    });
    expect(issues({ fileOperation: 'READ', filePath: '../x' })).toEqual({
      filePath: expect.stringContaining("must not contain '..' segments"),
    });
    expect(issues({ fileOperation: 'READ', filePath: 'a/../../x' })).toEqual({
      filePath: expect.stringContaining("'..'"),
    });
    expect(issues({ fileOperation: 'COPY', filePath: 'a', targetPath: '/tmp/x' })).toEqual({
      targetPath: expect.stringContaining('absolute'),
    });
    expect(issues({ fileOperation: 'LIST', filePath: 'a', filePattern: '../*.csv' })).toEqual({
      filePattern: expect.stringContaining("'..'"),
    });
    expect(issues({ fileOperation: 'READ', filePath: 'C:\\Windows\\win.ini' })).toEqual({
      filePath: expect.stringContaining('absolute'),
    });
    expect(issues({ fileOperation: 'READ', filePath: 'a\\..\\..\\x' })).toEqual({
      filePath: expect.stringContaining("'..'"),
    });
    // '..' inside a name is just a name.
    expect(issues({ fileOperation: 'READ', filePath: 'a/..b/c..' })).toEqual({});
    expect(relativePathProblem('in/**/*.csv')).toBeNull();
  });

  it('requires targetPath for COPY, MOVE, COMPRESS, DECOMPRESS and PROCESS', () => {
    for (const op of ['COPY', 'MOVE', 'COMPRESS', 'DECOMPRESS']) {
      expect(issues({ fileOperation: op, filePath: 'a' })).toEqual({ targetPath: `is required for ${op}` });
    }
    expect(issues({ fileOperation: 'PROCESS', filePath: 'a.csv', fileProcessing: csvToXlsx })).toEqual({
      targetPath: 'is required for PROCESS',
    });
    expect(issues({ fileOperation: 'DELETE', filePath: 'a' })).toEqual({});
  });

  it('requires fileContent for WRITE and APPEND (empty content allowed)', () => {
    expect(issues({ fileOperation: 'WRITE', filePath: 'a' })).toEqual({
      fileContent: 'is required for WRITE',
    });
    expect(issues({ fileOperation: 'APPEND', filePath: 'a', fileContent: null })).toEqual({
      fileContent: 'is required for APPEND',
    });
    expect(issues({ fileOperation: 'WRITE', filePath: 'a', fileContent: '' })).toEqual({});
  });

  it('checks compressionFormat', () => {
    expect(
      issues({ fileOperation: 'COMPRESS', filePath: 'a', targetPath: 'a.zip', compressionFormat: 'zip' }),
    ).toEqual({});
    expect(
      issues({ fileOperation: 'COMPRESS', filePath: 'a', targetPath: 'a.gz', compressionFormat: 'gzip' }),
    ).toEqual({});
    expect(
      issues({ fileOperation: 'COMPRESS', filePath: 'a', targetPath: 'a.7z', compressionFormat: '7z' }),
    ).toEqual({
      compressionFormat: 'must be "zip" or "gzip"',
    });
  });

  describe('fileProcessing', () => {
    const process = (fileProcessing: unknown) =>
      issues({ fileOperation: 'PROCESS', filePath: 'in.csv', targetPath: 'out.xlsx', fileProcessing });

    it('is required for PROCESS and gets its defaults', () => {
      expect(issues({ fileOperation: 'PROCESS', filePath: 'a', targetPath: 'b' })).toEqual({
        fileProcessing: 'is required for PROCESS',
      });
      const parsed = fileSystemPayloadSchema.parse({
        fileOperation: 'PROCESS',
        filePath: 'in.xlsx',
        targetPath: 'out.csv',
        fileProcessing: { input: { format: 'xlsx' }, output: { format: 'csv' } },
      });
      expect(parsed.fileProcessing).toEqual({
        input: { format: 'xlsx', sheet: '*', header: true },
        transforms: [],
        output: { format: 'csv', delimiter: ',' },
      });
    });

    it('accepts the delimiters, sheet selectors and transforms of the spec', () => {
      for (const delimiter of [',', ';', '\t']) {
        expect(
          process({ input: { format: 'csv', delimiter }, output: { format: 'csv', delimiter } }),
        ).toEqual({});
      }
      for (const sheet of ['*', 'Sales 2024', 0, 3]) {
        expect(process({ input: { format: 'xlsx', sheet }, output: { format: 'csv' } })).toEqual({});
      }
      expect(
        process({
          input: { format: 'csv', header: true },
          transforms: [
            { type: 'mapColumns', mapping: { 'Customer ID': 'id', Amount: 'amount' } },
            { type: 'convert', column: 'amount', to: 'number', onError: 'null' },
            { type: 'convert', column: 'id', to: 'integer' },
            { type: 'filter', column: 'amount', op: 'gte', value: 10 },
            { type: 'filter', column: 'id', op: 'notEmpty' },
          ],
          output: { format: 'xlsx', sheetName: 'Clean' },
        }),
      ).toEqual({});
    });

    it('names the field path of a bad option', () => {
      expect(process({ input: { format: 'csv', delimiter: '|' }, output: { format: 'csv' } })).toEqual({
        'fileProcessing.input.delimiter': 'must be one of ",", ";" or a tab',
      });
      expect(process({ input: { format: 'json' }, output: { format: 'csv' } })).toHaveProperty(
        'fileProcessing.input.format',
      );
      expect(process({ input: { format: 'csv', sheet: 1 }, output: { format: 'csv' } })).toEqual({
        'fileProcessing.input': expect.stringContaining('sheet'),
      });
      expect(process({ input: { format: 'xlsx', sheet: -1 }, output: { format: 'csv' } })).toHaveProperty(
        'fileProcessing.input.sheet',
      );
      expect(process({ ...csvToXlsx, output: { format: 'xlsx', sheetName: 'a/b' } })).toEqual({
        'fileProcessing.output.sheetName': 'must not contain [ ] : * ? / or \\',
      });
      expect(
        process({ ...csvToXlsx, transforms: [{ type: 'convert', column: 'a', to: 'money' }] }),
      ).toHaveProperty('fileProcessing.transforms.0.to');
      expect(process({ ...csvToXlsx, transforms: [{ type: 'filter', column: 'a', op: 'gt' }] })).toEqual({
        'fileProcessing.transforms.0.value': 'is required for op "gt"',
      });
      expect(
        process({ ...csvToXlsx, transforms: [{ type: 'filter', column: 'a', op: 'contains', value: 3 }] }),
      ).toEqual({ 'fileProcessing.transforms.0.value': 'must be a string for op "contains"' });
      expect(
        process({ ...csvToXlsx, transforms: [{ type: 'mapColumns', mapping: { a: 'x', b: 'x' } }] }),
      ).toEqual({ 'fileProcessing.transforms.0.mapping': 'maps two columns to "x"' });
      expect(process({ ...csvToXlsx, transforms: [{ type: 'mapColumns', mapping: {} }] })).toEqual({
        'fileProcessing.transforms.0.mapping': 'must map at least one column',
      });
      expect(process({ ...csvToXlsx, transforms: [{ type: 'sort', column: 'a' }] })).toHaveProperty(
        'fileProcessing.transforms.0.type',
      );
    });
  });
});

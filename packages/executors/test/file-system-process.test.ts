import { createWriteStream } from 'node:fs';
import { readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { FileSystemPayloadInput } from '@chronos/core';
import ExcelJS from 'exceljs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ProcessOutput } from '../src/file-system.ts';
import { executor, put, refused, run, sandbox, text, type Sandbox } from './file-system-helpers.ts';
import { makeCtx, rejection } from './helpers.ts';

/** `gc()` (V8 exposes it on request; the flag only applies to contexts created afterwards). */
function forceGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

let box: Sandbox;
beforeEach(async () => {
  box = await sandbox();
});
afterEach(async () => {
  await box.cleanup();
});

type Processing = NonNullable<FileSystemPayloadInput['fileProcessing']>;

function processPayload(
  filePath: string,
  targetPath: string,
  fileProcessing: Processing,
  extra: Partial<FileSystemPayloadInput> = {},
): FileSystemPayloadInput {
  return { fileOperation: 'PROCESS', filePath, targetPath, fileProcessing, ...extra };
}

async function processed(
  filePath: string,
  targetPath: string,
  fileProcessing: Processing,
  extra: Partial<FileSystemPayloadInput> = {},
): Promise<ProcessOutput> {
  return (await run(box.root, processPayload(filePath, targetPath, fileProcessing, extra))) as ProcessOutput;
}

/** Writes a workbook fixture: sheet name → rows. */
async function workbook(rel: string, sheets: Record<string, unknown[][]>): Promise<void> {
  const wb = new ExcelJS.Workbook();
  for (const [name, rows] of Object.entries(sheets)) wb.addWorksheet(name).addRows(rows);
  await wb.xlsx.writeFile(path.join(box.root, rel));
}

/** Reads a workbook back: sheet name → row values (1-based arrays flattened to 0-based). */
async function readWorkbook(rel: string): Promise<Record<string, unknown[][]>> {
  const wb = new ExcelJS.Workbook();
  await wb.xlsx.readFile(path.join(box.root, rel));
  const out: Record<string, unknown[][]> = {};
  wb.eachSheet((ws) => {
    const rows: unknown[][] = [];
    ws.eachRow((row) => rows.push((row.values as unknown[]).slice(1)));
    out[ws.name] = rows;
  });
  return out;
}

const people = 'name,age,city\nAda,36,London\nAlan,41,Wilmslow\nGrace,85,Arlington\n';

describe('PROCESS: CSV', () => {
  it('reads a comma CSV and writes it back, counting rows', async () => {
    await put(box.root, 'in/people.csv', people);
    const out = await processed(
      'in/people.csv',
      'out/people.csv',
      { input: { format: 'csv' }, output: { format: 'csv' } },
      { createDirectories: true },
    );
    expect(out).toEqual({
      operation: 'PROCESS',
      rowsRead: 3,
      rowsWritten: 3,
      rowsFiltered: 0,
      rowsSkipped: 0,
      outputPath: 'out/people.csv',
      outputPaths: ['out/people.csv'],
      sheets: [
        {
          input: 'in/people.csv',
          sheet: null,
          output: 'out/people.csv',
          rowsRead: 3,
          rowsWritten: 3,
          rowsFiltered: 0,
          rowsSkipped: 0,
        },
      ],
    });
    expect(await text(box.root, 'out/people.csv')).toBe(people);
    expect(await readdir(path.join(box.root, 'out'))).toEqual(['people.csv']);
  });

  it.each([
    ['semicolon', ';'],
    ['tab', '\t'],
  ] as const)('reads a %s CSV, detected or given, and converts the delimiter', async (_name, delimiter) => {
    const body = people.replaceAll(',', delimiter);
    await put(box.root, 'in.csv', body);
    await processed('in.csv', 'detected.csv', { input: { format: 'csv' }, output: { format: 'csv' } });
    expect(await text(box.root, 'detected.csv')).toBe(people);
    await processed('in.csv', 'given.csv', {
      input: { format: 'csv', delimiter },
      output: { format: 'csv', delimiter: ';' },
    });
    expect(await text(box.root, 'given.csv')).toBe(people.replaceAll(',', ';'));
  });

  it('keeps quoted delimiters, quotes and newlines intact', async () => {
    const body = 'id;note\n1;"a;b"\n2;"say ""hi"""\n3;"two\nlines"\n';
    await put(box.root, 'q.csv', `\uFEFF${body}`);
    const out = await processed('q.csv', 'q-out.csv', {
      input: { format: 'csv' },
      output: { format: 'csv', delimiter: ';' },
    });
    expect(out.rowsRead).toBe(3);
    expect(await text(box.root, 'q-out.csv')).toBe(body);
  });

  it('writes CSV rows to XLSX', async () => {
    await put(box.root, 'people.csv', people);
    await processed('people.csv', 'people.xlsx', {
      input: { format: 'csv' },
      transforms: [{ type: 'convert', column: 'age', to: 'integer' }],
      output: { format: 'xlsx', sheetName: 'People' },
    });
    expect(await readWorkbook('people.xlsx')).toEqual({
      People: [
        ['name', 'age', 'city'],
        ['Ada', 36, 'London'],
        ['Alan', 41, 'Wilmslow'],
        ['Grace', 85, 'Arlington'],
      ],
    });
  });

  it('fails with PARSE_ERROR on a row wider than the header, writing nothing', async () => {
    await put(box.root, 'bad.csv', 'a,b\n1,2\n1,2,3\n');
    const err = await refused(
      box,
      processPayload('bad.csv', 'out.csv', { input: { format: 'csv' }, output: { format: 'csv' } }),
    );
    expect(err.code).toBe('PARSE_ERROR');
    expect(err.message).toContain('row 3: 3 fields, but the header has 2');
  });

  it('processes every file of a glob into the target directory', async () => {
    await put(box.root, 'in/2024/a.csv', 'x\n1\n2\n');
    await put(box.root, 'in/2025/b.csv', 'x\n3\n');
    const out = await processed(
      'in/**/*.csv',
      'out',
      { input: { format: 'csv' }, output: { format: 'xlsx' } },
      { createDirectories: true },
    );
    expect(out).toMatchObject({
      rowsRead: 3,
      rowsWritten: 3,
      outputPaths: ['out/2024/a.xlsx', 'out/2025/b.xlsx'],
    });
    expect(await readWorkbook('out/2025/b.xlsx')).toEqual({ Sheet1: [['x'], ['3']] });
  });

  it('refuses to replace an output unless overwrite', async () => {
    await put(box.root, 'people.csv', people);
    await put(box.root, 'out.csv', 'old');
    const spec: Processing = { input: { format: 'csv' }, output: { format: 'csv' } };
    const err = await refused(box, processPayload('people.csv', 'out.csv', spec));
    expect(err.code).toBe('TARGET_EXISTS');
    await processed('people.csv', 'out.csv', spec, { overwrite: true });
    expect(await text(box.root, 'out.csv')).toBe(people);
    const same = await refused(box, processPayload('people.csv', 'people.csv', spec, { overwrite: true }));
    expect(same.code).toBe('INVALID_TARGET');
  });
});

describe('PROCESS: XLSX', () => {
  beforeEach(async () => {
    await workbook('book.xlsx', {
      Sales: [
        ['region', 'amount', 'day'],
        ['north', 10, new Date(Date.UTC(2025, 0, 2))],
        ['south', 25.5, new Date(Date.UTC(2025, 0, 3))],
      ],
      Costs: [
        ['region', 'amount'],
        ['north', 4],
      ],
      'Q&A <notes>': [['note'], ['a & b']],
    });
  });

  it('reads all sheets into one workbook', async () => {
    const out = await processed('book.xlsx', 'copy.xlsx', {
      input: { format: 'xlsx' },
      output: { format: 'xlsx' },
    });
    expect(out).toMatchObject({ rowsRead: 4, rowsWritten: 4, outputPaths: ['copy.xlsx'] });
    expect(out.sheets.map((s) => [s.sheet, s.rowsRead])).toEqual([
      ['Sales', 2],
      ['Costs', 1],
      ['Q&A <notes>', 1],
    ]);
    const book = await readWorkbook('copy.xlsx');
    expect(Object.keys(book)).toEqual(['Sales', 'Costs', 'Q&A <notes>']);
    expect(book.Sales?.[1]).toEqual(['north', 10, new Date(Date.UTC(2025, 0, 2))]);
  });

  it('writes all sheets as one CSV per sheet', async () => {
    const out = await processed(
      'book.xlsx',
      'out/book.csv',
      { input: { format: 'xlsx', sheet: '*' }, output: { format: 'csv' } },
      { createDirectories: true },
    );
    expect(out.outputPaths).toEqual(['out/book.Sales.csv', 'out/book.Costs.csv', 'out/book.Q_A_notes_.csv']);
    expect(await text(box.root, 'out/book.Sales.csv')).toBe(
      'region,amount,day\nnorth,10,2025-01-02T00:00:00.000Z\nsouth,25.5,2025-01-03T00:00:00.000Z\n',
    );
    expect(await text(box.root, 'out/book.Costs.csv')).toBe('region,amount\nnorth,4\n');
  });

  it('reads one sheet by name or by 0-based index', async () => {
    const byName = await processed('book.xlsx', 'costs.csv', {
      input: { format: 'xlsx', sheet: 'Costs' },
      output: { format: 'csv' },
    });
    expect(byName).toMatchObject({ rowsRead: 1, outputPaths: ['costs.csv'] });
    expect(await text(box.root, 'costs.csv')).toBe('region,amount\nnorth,4\n');
    await processed('book.xlsx', 'third.csv', {
      input: { format: 'xlsx', sheet: 2 },
      output: { format: 'csv' },
    });
    expect(await text(box.root, 'third.csv')).toBe('note\na & b\n');
    await processed('book.xlsx', 'first.xlsx', {
      input: { format: 'xlsx', sheet: 0 },
      output: { format: 'xlsx', sheetName: 'Renamed' },
    });
    expect(Object.keys(await readWorkbook('first.xlsx'))).toEqual(['Renamed']);
  });

  it('fails with SHEET_NOT_FOUND listing the sheets, writing nothing', async () => {
    const err = await refused(
      box,
      processPayload('book.xlsx', 'x.csv', {
        input: { format: 'xlsx', sheet: 'Nope' },
        output: { format: 'csv' },
      }),
    );
    expect(err.code).toBe('SHEET_NOT_FOUND');
    expect(err.message).toContain('0 = "Sales", 1 = "Costs"');
    const idx = await refused(
      box,
      processPayload('book.xlsx', 'x.csv', {
        input: { format: 'xlsx', sheet: 3 },
        output: { format: 'csv' },
      }),
    );
    expect(idx.code).toBe('SHEET_NOT_FOUND');
  });

  it('refuses a file that is no workbook', async () => {
    await put(box.root, 'fake.xlsx', 'not a zip');
    const err = await refused(
      box,
      processPayload('fake.xlsx', 'x.csv', { input: { format: 'xlsx' }, output: { format: 'csv' } }),
    );
    expect(err.code).toBe('PARSE_ERROR');
  });
});

describe('PROCESS: transforms', () => {
  const orders = [
    'Order ID,Customer,Total,Paid,Placed',
    '1,ada,10.50,yes,2025-01-01',
    '2,alan,,no,2025-02-01',
    '3,grace,99,y,2025-03-01',
    '4,bob,abc,n,2025-04-01',
    '5,eve,7,1,2025-05-01',
  ].join('\n');

  it('maps columns, converts types and filters, counting what each dropped', async () => {
    await put(box.root, 'orders.csv', orders);
    const out = await processed('orders.csv', 'clean.csv', {
      input: { format: 'csv' },
      transforms: [
        {
          type: 'mapColumns',
          mapping: { 'Order ID': 'id', Total: 'total', Paid: 'paid' },
          keepUnmapped: false,
        },
        { type: 'convert', column: 'id', to: 'integer' },
        { type: 'convert', column: 'total', to: 'number', onError: 'skipRow' },
        { type: 'convert', column: 'paid', to: 'boolean' },
        { type: 'filter', column: 'total', op: 'gte', value: 8 },
      ],
      output: { format: 'csv' },
    });
    expect(out).toMatchObject({ rowsRead: 5, rowsWritten: 2, rowsFiltered: 2, rowsSkipped: 1 });
    expect(await text(box.root, 'clean.csv')).toBe('id,total,paid\n1,10.5,true\n3,99,true\n');
  });

  it('filters with eq, ne, contains, empty, notEmpty, lt and dates', async () => {
    await put(box.root, 'orders.csv', orders);
    const ids = async (filter: Record<string, unknown>, convert?: Record<string, unknown>) => {
      await processed(
        'orders.csv',
        'f.csv',
        {
          input: { format: 'csv' },
          transforms: [
            ...(convert ? [convert] : []),
            { type: 'filter', ...filter },
          ] as Processing['transforms'],
          output: { format: 'csv', header: false },
        },
        { overwrite: true },
      );
      return (await text(box.root, 'f.csv'))
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(',')[0]);
    };
    expect(await ids({ column: 'Customer', op: 'eq', value: 'ada' })).toEqual(['1']);
    expect(await ids({ column: 'Total', op: 'eq', value: 99 })).toEqual(['3']);
    expect(await ids({ column: 'Customer', op: 'ne', value: 'ada' })).toEqual(['2', '3', '4', '5']);
    expect(await ids({ column: 'Customer', op: 'contains', value: 'a' })).toEqual(['1', '2', '3']);
    expect(await ids({ column: 'Total', op: 'empty' })).toEqual(['2']);
    expect(await ids({ column: 'Total', op: 'notEmpty' })).toEqual(['1', '3', '4', '5']);
    expect(await ids({ column: 'Total', op: 'lt', value: 10 })).toEqual(['5']);
    expect(
      await ids(
        { column: 'Placed', op: 'gt', value: '2025-03-01' },
        { type: 'convert', column: 'Placed', to: 'date' },
      ),
    ).toEqual(['4', '5']);
  });

  it('fails with CONVERSION_FAILED naming the row and value, writing nothing', async () => {
    await put(box.root, 'orders.csv', orders);
    const err = await refused(
      box,
      processPayload('orders.csv', 'x.csv', {
        input: { format: 'csv' },
        transforms: [{ type: 'convert', column: 'Total', to: 'number' }],
        output: { format: 'csv' },
      }),
    );
    expect(err.code).toBe('CONVERSION_FAILED');
    expect(err.message).toContain('row 5: column "Total" value "abc" is not a valid number');
  });

  it('fails with COLUMN_NOT_FOUND naming the columns there are', async () => {
    await put(box.root, 'orders.csv', orders);
    const err = await refused(
      box,
      processPayload('orders.csv', 'x.csv', {
        input: { format: 'csv' },
        transforms: [
          { type: 'mapColumns', mapping: { Total: 'total' } },
          { type: 'filter', column: 'Total', op: 'notEmpty' },
        ],
        output: { format: 'csv' },
      }),
    );
    expect(err.code).toBe('COLUMN_NOT_FOUND');
    expect(err.message).toContain('"Total", which is not there');
    expect(err.message).toContain('"total"');
  });

  it('names columns 1, 2, … without a header', async () => {
    await put(box.root, 'raw.csv', 'a,1\nb,2\nc,3\n');
    await processed('raw.csv', 'out.csv', {
      input: { format: 'csv', header: false },
      transforms: [
        { type: 'convert', column: '2', to: 'number' },
        { type: 'filter', column: '2', op: 'gte', value: 2 },
        { type: 'mapColumns', mapping: { '1': 'letter', '2': 'n' } },
      ],
      output: { format: 'csv', header: true },
    });
    expect(await text(box.root, 'out.csv')).toBe('letter,n\nb,2\nc,3\n');
  });
});

describe('PROCESS: large files', () => {
  const ROWS = 200_000;

  async function bigCsv(rel: string): Promise<number> {
    const file = path.join(box.root, rel);
    const out = createWriteStream(file);
    out.write('id,name,amount,flag\n');
    for (let i = 1; i <= ROWS; i++) {
      const line = `${i},customer-${i}-${'x'.repeat(40)},${(i % 1000) / 10},${i % 2 === 0 ? 'yes' : 'no'}\n`;
      if (!out.write(line)) await once(out, 'drain');
    }
    out.end();
    await once(out, 'finish');
    return (await stat(file)).size;
  }

  it(
    'streams a 200k-row CSV through transforms with the right counts and bounded memory',
    { timeout: 300_000 },
    async () => {
      const size = await bigCsv('big.csv');
      expect(size).toBeGreaterThan(12 * 1024 * 1024);
      // Live heap (after a full GC) sampled while the file streams through.
      const gc = forceGc();
      gc();
      const before = process.memoryUsage().heapUsed;
      let peak = before;
      const sampler = setInterval(() => {
        gc();
        peak = Math.max(peak, process.memoryUsage().heapUsed);
        // A full GC per sample is costly: sample twice a second.
      }, 500);
      let out: ProcessOutput;
      try {
        out = await processed('big.csv', 'big-out.csv', {
          input: { format: 'csv' },
          transforms: [
            { type: 'convert', column: 'amount', to: 'number' },
            { type: 'convert', column: 'flag', to: 'boolean' },
            { type: 'filter', column: 'flag', op: 'eq', value: true },
          ],
          output: { format: 'csv' },
        });
      } finally {
        clearInterval(sampler);
      }
      expect(out).toMatchObject({ rowsRead: ROWS, rowsWritten: ROWS / 2, rowsFiltered: ROWS / 2 });
      const written = await text(box.root, 'big-out.csv');
      expect(written.split('\n').length).toBe(ROWS / 2 + 2);
      // Nothing close to the whole file was held at once.
      expect(peak - before).toBeLessThan(size / 3);
    },
  );

  it('stops on abort, rejecting with the reason and leaving no output', { timeout: 300_000 }, async () => {
    await bigCsv('big.csv');
    const ac = new AbortController();
    const ctx = makeCtx({ signal: ac.signal });
    setTimeout(() => ac.abort(new Error('cancelled by test')), 50);
    const err = await rejection(() =>
      executor(box.root)(
        processPayload('big.csv', 'big-out.xlsx', { input: { format: 'csv' }, output: { format: 'xlsx' } }),
        ctx,
      ),
    );
    expect(err.message).toBe('cancelled by test');
    expect(await readdir(box.root)).toEqual(['big.csv']);
  });
});

describe('PROCESS: empty input', () => {
  it('writes an empty output for an empty CSV', async () => {
    await writeFile(path.join(box.root, 'empty.csv'), '');
    const out = await processed('empty.csv', 'e.csv', {
      input: { format: 'csv' },
      output: { format: 'csv' },
    });
    expect(out).toMatchObject({ rowsRead: 0, rowsWritten: 0 });
    expect(await text(box.root, 'e.csv')).toBe('');
  });
});
